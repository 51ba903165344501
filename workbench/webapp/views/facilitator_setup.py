"""Set up a deliberation: load or edit its definition (YAML), and create or revoke invite links."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from workbench import config, ids, web
from workbench.deliberation import deliberation_document, parse_deliberation
from workbench.errors import WorkbenchError
from workbench.markdown import literal

user = web.require_staff(__file__)
st.title("Set up a deliberation")
store = web.store()

definition, invites = st.tabs(["Definition", "Invite links"])

with definition:
    known = store.deliberations()
    options = [None, *known["id"]]
    chosen = st.selectbox("Deliberation", options, format_func=lambda d: "a new deliberation" if d is None else d)
    if chosen is None:
        text = config.DEMO_DELIBERATION.read_text(encoding="utf-8").replace("id: demo", "id: my-deliberation", 1)
    else:
        contexts = {q: list(store.contexts(chosen, question_id=q)["name"]) for q in store.questions(chosen)["id"]}
        text = deliberation_document(store.deliberation(chosen), store.questions(chosen), contexts)
    uploaded = st.file_uploader("Load a definition from a YAML file", type=["yaml", "yml"])
    if uploaded is not None:
        text = uploaded.getvalue().decode("utf-8", errors="replace")
    st.caption("Questions, contexts, consent text, the demographics questionnaire and how many judging "
               "questions of each kind (`rounds`). Contexts are never deleted; questions are matched by `slug`.")
    edited = st.text_area("Definition (YAML)", value=text, height=420, key=f"definition_{chosen}")
    if st.button("Save the deliberation", type="primary"):
        try:
            spec = parse_deliberation(edited, where="definition")
        except WorkbenchError as exc:
            st.error(str(exc))
        else:
            store.save_deliberation(spec, source="app", actor_id=user.id)
            st.success(f"Saved “{literal(spec.title)}” ({spec.id}) with {len(spec.questions)} question(s).")

with invites:
    did = web.deliberation_picker()
    if did is not None:
        n = st.number_input("How many invite links", min_value=1, max_value=5000, value=10)
        if st.button("Create invite links"):
            pairs = store.create_invites(did, int(n), actor_id=user.id)
            links = pd.DataFrame([{"participant_id": ids.public_id("participant", p), "link": config.invite_link(t)}
                                  for p, t in pairs])
            st.session_state["new_links"] = links
        links = st.session_state.get("new_links")
        if links is not None:
            st.warning("These links are shown once: the database keeps only a hash of each. Download them now.")
            st.dataframe(links, hide_index=True, width="stretch")
            st.download_button("Download as CSV", links.to_csv(index=False), file_name=f"{did}-invites.csv",
                               mime="text/csv")
        existing = store.invites(did)
        people = store.id_map(did, "participant")
        st.subheader(f"{len(existing)} invited participants")
        st.dataframe(existing.assign(participant_id=people.publics(existing["participant_id"])), hide_index=True,
                     width="stretch")
        active = existing[existing["revoked_at"].isna()]
        revoke = st.multiselect("Revoke the links of", list(active["participant_id"]), format_func=people.public)
        if st.button("Revoke", disabled=not revoke):
            store.revoke_invites([int(p) for p in revoke], actor_id=user.id)
            st.success(f"Revoked {len(revoke)} link(s): they now show only a plain message.")
