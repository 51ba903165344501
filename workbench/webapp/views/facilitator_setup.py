"""Set up a deliberation: load or edit its definition (YAML), and create or revoke invite links.

Loading a YAML file replaces the editor's text (checked like `workbench` reads a file: size, UTF-8, then
the definition, errors naming the file). Saving text nobody edited, or over another deliberation, asks
first. Saving is one store call, audited; a refused definition changes nothing.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from workbench import config, ids, web
from workbench.deliberation import (
    definition_doubts,
    definition_text,
    deliberation_document,
    parse_deliberation,
)
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
    editor, loaded, pending = f"definition_{chosen}", f"loaded_{chosen}", f"pending_save_{chosen}"
    st.session_state.setdefault(editor, text)
    uploaded = st.file_uploader("Load a definition from a YAML file (it replaces the text below)",
                                type=["yaml", "yml"], key=f"upload_{chosen}")
    if uploaded is not None and st.session_state.get(loaded, (None,))[0] != uploaded.file_id:
        # A new file: its text replaces the editor's (the widget's state, set before the widget is drawn).
        try:
            st.session_state[editor] = definition_text(uploaded.getvalue(), where=uploaded.name)
        except WorkbenchError as exc:
            st.error(str(exc))
        else:
            st.session_state[loaded] = (uploaded.file_id, uploaded.name)
            st.session_state.pop(pending, None)
    st.caption("Questions, contexts, consent text, the demographics questionnaire, how many judging questions "
               "of each kind (`rounds`) and how many people may join by the open sign-up link (`signup_limits`). "
               "Contexts are never deleted; questions are matched by `slug`.")
    edited = st.text_area("Definition (YAML)", height=420, key=editor)
    source = st.session_state.get(loaded, (None, "definition"))[1]  # errors name the uploaded file

    def save(spec) -> None:
        store.save_deliberation(spec, source="app", actor_id=user.id)
        st.session_state.pop(pending, None)
        st.success(f"Saved “{literal(spec.title)}” ({spec.id}) with {len(spec.questions)} question(s).")

    if st.button("Save the deliberation", type="primary"):
        try:
            spec = parse_deliberation(edited, where=source)
        except WorkbenchError as exc:
            st.error(str(exc))
        else:
            unchanged = edited == text and loaded not in st.session_state
            doubts = definition_doubts(spec, unchanged=unchanged, chosen=chosen, existing=set(known["id"]))
            if doubts:  # ask first; the answer is below, for exactly this text
                st.session_state[pending] = (edited, doubts)
            else:
                save(spec)
    waiting = st.session_state.get(pending, (None,))[0] == edited
    if waiting and st.session_state.get("confirm_save"):  # "Save it anyway" was clicked for this text
        save(parse_deliberation(edited, where=source))
    elif waiting:
        for doubt in st.session_state[pending][1]:
            st.warning(doubt)
        yes, no = st.columns([1, 4])
        yes.button("Save it anyway", key="confirm_save")
        if no.button("Cancel", key="cancel_save"):
            st.session_state.pop(pending, None)
            st.rerun()

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
