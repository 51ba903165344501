"""Moderation: hide cards, approve or merge proposed contexts, merge/split/rename canonical values.

Every action is one store method that writes the change and its audit row (who did it) in one
transaction. Hidden cards leave the graph, the rounds and the exports; their authors are not told
others' judgements. Cards and values are shown by their public ids (workbench.ids).
"""

from __future__ import annotations

import streamlit as st

from workbench import analyses, ids, web
from workbench.errors import WorkbenchError

actor = web.require_staff(__file__).id
st.title("Moderation")
store = web.store()
did = web.deliberation_picker()
if did is None:
    st.stop()


card_ids = store.id_map(did, "card")
value_ids = store.id_map(did, "value")
people = store.id_map(did, "participant")


def card_label(card_id: int, titles) -> str:
    return f"{card_ids.public(card_id)} {titles[card_id]}"


def value_label(value_id: int) -> str:
    return f"{value_ids.public(value_id)} {label[value_id]}"


cards_tab, contexts_tab, values_tab, log_tab = st.tabs(["Cards", "Proposed contexts", "Canonical values", "Audit log"])

with cards_tab:
    cards = store.cards(did, include_hidden=True)
    search = st.text_input("Find cards containing", key="card_search")
    if search:
        hay = cards["title"] + " " + cards["description"] + " " + cards["policies"].map(" ".join)
        cards = cards[hay.str.contains(search, case=False, regex=False)]
    shown = cards.assign(card_id=ids.public_ids("card", cards["id"], cards["source_id"]))
    st.dataframe(shown[["card_id", "title", "description", "status", "hidden_reason", "created_at"]],
                 hide_index=True, width="stretch")
    active = cards[cards["status"] == "active"]
    active_titles = active.set_index("id")["title"]
    with st.form("hide_card"):
        card_id = st.selectbox("Card to hide", list(active["id"]), index=None, placeholder="Choose a card…",
                               format_func=lambda c: card_label(c, active_titles))
        reason = st.text_input("Reason (kept in the audit log)", max_chars=300)
        if st.form_submit_button("Hide card"):
            if card_id is None or not reason.strip():
                st.error("Choose a card and give a reason.")
            else:
                store.hide_card(int(card_id), reason.strip(), actor_id=actor)
                st.success(f"Card {card_ids.public(card_id)} is hidden: it has left the graph, the rounds and the"
                           " exports, and a value named after it now carries another member card's text (or, with"
                           " no member left, has its text withheld).")

with contexts_tab:
    proposed = store.proposed_contexts(did)
    approved = store.contexts(did)
    if proposed.empty:
        st.info("No context is waiting for review.")
    for row in proposed.itertuples():
        with st.container(border=True):
            st.text(row.name)
            author = "?" if row.proposed_by != row.proposed_by else people.public(row.proposed_by)
            st.caption(f"proposed by participant {author}; used by {row.cards} card(s)")
            a, b = st.columns(2)
            if a.button("Approve", key=f"approve_{row.id}"):
                store.approve_context(int(row.id), actor_id=actor)
                st.rerun()
            into = b.selectbox("…or merge into", list(approved["id"]), index=None, key=f"into_{row.id}",
                               format_func=lambda c: approved.set_index("id").loc[c, "name"])
            if into is not None and b.button("Merge", key=f"merge_{row.id}"):
                store.merge_context(int(row.id), int(into), actor_id=actor)
                st.rerun()

with values_tab:
    st.caption("Cluster the cards into canonical values. Only new or edited cards are embedded; values keep "
               "their ids where their members did not change, and your merges, splits and renames stay.")
    if st.button("Cluster cards into canonical values"):
        bar = st.progress(0.0, text="Embedding cards…")
        try:
            run = analyses.deduplicate(
                store, did, actor_id=actor,
                progress=lambda done, total: bar.progress(done / max(total, 1), text=f"Embedding cards… {done}/{total}"))
        except WorkbenchError as exc:
            st.error(str(exc))
        else:
            bar.progress(1.0, text="Done")
            st.success(f"{len(run.result.assignment)} cards → {len(run.result.values)} canonical values "
                       f"({run.embedded} embedded, the rest from the cache).")
            if run.llm_asked:
                note = f"The LLM judged {run.llm_answered} of the {run.llm_asked} merges the workbench was least sure of."
                if run.llm_error:
                    st.warning(f"{note} Then it failed ({run.llm_error}); the rest were decided without it.")
                else:
                    st.info(note)
    values = store.canonical_values(did)
    value_ids = store.id_map(did, "value")  # dedup may just have made new values
    st.dataframe(values.assign(value_id=value_ids.publics(values["id"]))[["value_id", "title", "members", "origin"]],
                 hide_index=True, width="stretch")
    questions = analyses.merge_questions(store, did, limit=15)
    if not questions.empty:
        st.subheader("Merges the workbench is least sure of")
        st.caption("Pairs of values (each shown by one of its cards) near the merge decision, with what "
                   "participants answered to “Are these two the same value?” and the LLM's verdict. Answers "
                   "decide on the next clustering: participants' majority first, then the LLM.")
        shown = questions.assign(card_a=card_ids.publics(questions["card_a"]), card_b=card_ids.publics(questions["card_b"]))
        st.dataframe(shown.rename(columns={"probability": "p(same)"}).drop(columns=["value_a", "value_b"]),
                     hide_index=True, width="stretch")
        llm_note = analyses.dedup_llm_note(store, did)
        if llm_note:
            st.caption(llm_note)
    label = dict(zip(values["id"], values["title"], strict=True))
    with st.form("merge_values"):
        chosen = st.multiselect("Merge these values…", list(values["id"]), format_func=value_label)
        into = st.selectbox("…into", list(values["id"]), index=None, format_func=value_label)
        if st.form_submit_button("Merge"):
            if into is None or not chosen:
                st.error("Choose the values to merge and the value they become.")
            else:
                moved = store.merge_canonical_values([int(v) for v in chosen], int(into), actor_id=actor)
                st.success(f"{moved} card(s) now belong to {value_ids.public(into)}. Re-running dedup keeps them"
                           " there.")
    with st.form("split_card"):
        cards = store.cards(did)
        titles = cards.set_index("id")["title"]
        card_id = st.selectbox("Split this card into a value of its own", list(cards["id"]), index=None,
                               format_func=lambda c: card_label(c, titles))
        if st.form_submit_button("Split"):
            if card_id is not None:
                new = store.split_card(int(card_id), actor_id=actor)
                st.success(f"Card {card_ids.public(card_id)} is now value {ids.public_id('value', new)}.")
    with st.form("rename_value"):
        value_id = st.selectbox("Rename value", list(values["id"]), index=None, format_func=value_label)
        title = st.text_input("New title", max_chars=80)
        description = st.text_area("New description (optional)", max_chars=600)
        if st.form_submit_button("Rename"):
            if value_id is None or not title.strip():
                st.error("Choose a value and give it a title.")
            else:
                store.update_canonical_value(int(value_id), title=title.strip(),
                                             description=description.strip() or None, actor_id=actor)
                st.success("Renamed. Re-running dedup keeps the new name.")

with log_tab:
    st.dataframe(store.audit_log(did), hide_index=True, width="stretch")
