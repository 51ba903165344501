"""Moderation: hide cards, approve or merge proposed contexts, merge/split/rename canonical values.

Every action goes through the store and is written to the audit log with who did it. Hidden cards
leave the graph, the rounds and the exports; their authors are not told others' judgements.
"""

from __future__ import annotations

import streamlit as st

from workbench import analyses, web
from workbench.errors import WorkbenchError

actor = web.require_staff(__file__).id
st.title("Moderation")
store = web.store()
did = web.deliberation_picker()
if did is None:
    st.stop()


def audit(action: str, target: str, details: dict | None = None) -> None:
    store.record_audit(did, actor, action, target, details or {})


cards_tab, contexts_tab, values_tab, log_tab = st.tabs(["Cards", "Proposed contexts", "Canonical values", "Audit log"])

with cards_tab:
    cards = store.cards(did, include_hidden=True)
    search = st.text_input("Find cards containing", key="card_search")
    if search:
        hay = cards["title"] + " " + cards["description"] + " " + cards["policies"].map(" ".join)
        cards = cards[hay.str.contains(search, case=False, regex=False)]
    st.dataframe(cards[["id", "title", "description", "status", "hidden_reason", "created_at"]],
                 hide_index=True, width="stretch")
    active = cards[cards["status"] == "active"]
    with st.form("hide_card"):
        card_id = st.selectbox("Card to hide", list(active["id"]), index=None, placeholder="Choose a card…",
                               format_func=lambda c: f"#{c} {active.set_index('id').loc[c, 'title']}")
        reason = st.text_input("Reason (kept in the audit log)", max_chars=300)
        if st.form_submit_button("Hide card"):
            if card_id is None or not reason.strip():
                st.error("Choose a card and give a reason.")
            else:
                store.hide_card(int(card_id), reason.strip())
                audit("hide_card", f"card {card_id}", {"reason": reason.strip()})
                st.success(f"Card #{card_id} is hidden: it has left the graph, the rounds and the exports.")

with contexts_tab:
    proposed = store.proposed_contexts(did)
    approved = store.contexts(did)
    if proposed.empty:
        st.info("No context is waiting for review.")
    for row in proposed.itertuples():
        with st.container(border=True):
            st.text(row.name)
            st.caption(f"proposed by participant {row.proposed_by}; used by {row.cards} card(s)")
            a, b = st.columns(2)
            if a.button("Approve", key=f"approve_{row.id}"):
                store.approve_context(int(row.id))
                audit("approve_context", f"context {row.id}", {"name": row.name})
                st.rerun()
            into = b.selectbox("…or merge into", list(approved["id"]), index=None, key=f"into_{row.id}",
                               format_func=lambda c: approved.set_index("id").loc[c, "name"])
            if into is not None and b.button("Merge", key=f"merge_{row.id}"):
                store.merge_context(int(row.id), int(into))
                audit("merge_context", f"context {row.id}", {"into": int(into)})
                st.rerun()

with values_tab:
    st.caption("Cluster the cards into canonical values. Only new or edited cards are embedded; values keep "
               "their ids where their members did not change, and your merges, splits and renames stay.")
    if st.button("Cluster cards into canonical values"):
        bar = st.progress(0.0, text="Embedding cards…")
        try:
            run = analyses.deduplicate(
                store, did, progress=lambda done, total: bar.progress(done / max(total, 1),
                                                                      text=f"Embedding cards… {done}/{total}"))
        except WorkbenchError as exc:
            st.error(str(exc))
        else:
            bar.progress(1.0, text="Done")
            audit("dedup", f"run {run.run_id}", {"values": len(run.result.values), "embedded": run.embedded})
            st.success(f"{len(run.result.assignment)} cards → {len(run.result.values)} canonical values "
                       f"({run.embedded} embedded, the rest from the cache).")
            if run.llm_asked:
                note = f"The LLM judged {run.llm_answered} of the {run.llm_asked} merges the workbench was least sure of."
                if run.llm_error:
                    st.warning(f"{note} Then it failed ({run.llm_error}); the rest were decided without it.")
                else:
                    st.info(note)
    values = store.canonical_values(did)
    st.dataframe(values[["id", "title", "members", "origin"]], hide_index=True, width="stretch")
    questions = analyses.merge_questions(store, did, limit=15)
    if not questions.empty:
        st.subheader("Merges the workbench is least sure of")
        st.caption("Pairs of values (each shown by one of its cards) near the merge decision, with what "
                   "participants answered to “Are these two the same value?” and the LLM's verdict. Answers "
                   "decide on the next clustering: participants' majority first, then the LLM.")
        st.dataframe(questions.rename(columns={"probability": "p(same)"}).drop(columns=["value_a", "value_b"]),
                     hide_index=True, width="stretch")
        llm_note = analyses.dedup_llm_note(store, did)
        if llm_note:
            st.caption(llm_note)
    label = dict(zip(values["id"], values["title"], strict=True))
    with st.form("merge_values"):
        chosen = st.multiselect("Merge these values…", list(values["id"]), format_func=lambda v: f"#{v} {label[v]}")
        into = st.selectbox("…into", list(values["id"]), index=None, format_func=lambda v: f"#{v} {label[v]}")
        if st.form_submit_button("Merge"):
            if into is None or not chosen:
                st.error("Choose the values to merge and the value they become.")
            else:
                moved = store.merge_canonical_values([int(v) for v in chosen], int(into))
                audit("merge_values", f"value {into}", {"merged": [int(v) for v in chosen], "cards": moved})
                st.success(f"{moved} card(s) now belong to #{into}. Re-running dedup keeps them there.")
    with st.form("split_card"):
        cards = store.cards(did)
        card_id = st.selectbox("Split this card into a value of its own", list(cards["id"]), index=None,
                               format_func=lambda c: f"#{c} {cards.set_index('id').loc[c, 'title']}")
        if st.form_submit_button("Split"):
            if card_id is not None:
                new = store.split_card(int(card_id))
                audit("split_card", f"card {card_id}", {"new_value": new})
                st.success(f"Card #{card_id} is now value #{new}.")
    with st.form("rename_value"):
        value_id = st.selectbox("Rename value", list(values["id"]), index=None,
                                format_func=lambda v: f"#{v} {label[v]}")
        title = st.text_input("New title", max_chars=80)
        description = st.text_area("New description (optional)", max_chars=600)
        if st.form_submit_button("Rename"):
            if value_id is None or not title.strip():
                st.error("Choose a value and give it a title.")
            else:
                store.update_canonical_value(int(value_id), title=title.strip(),
                                             description=description.strip() or None)
                audit("rename_value", f"value {value_id}", {"title": title.strip()})
                st.success("Renamed. Re-running dedup keeps the new name.")

with log_tab:
    st.dataframe(store.audit_log(did), hide_index=True, width="stretch")
