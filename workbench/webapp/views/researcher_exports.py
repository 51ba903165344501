"""Researcher exports: documented, group-conditioned datasets as a zip with a datasheet."""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

import streamlit as st

from workbench import exports, web
from workbench.errors import WorkbenchError

web.require_staff(__file__)
st.title("Exports")
store = web.store()
did = web.deliberation_picker()
if did is None:
    st.stop()

left, middle, right = st.columns(3)
what = left.selectbox("What", exports.WHATS, index=exports.WHATS.index("all"))
fmt = middle.selectbox("Format", exports.FORMATS)
question = right.selectbox("Question", [None, *store.questions(did)["id"]],
                           format_func=lambda q: "all questions" if q is None else q)
until = st.text_input("Only data created before (optional, e.g. 2023-10-18)", max_chars=40) or None
st.caption("Exports hold pseudonymous ids only: never invite tokens, token hashes or passwords. Hidden cards are "
           "left out. Each export holds the tables its ids point to, comes with a README.md datasheet, and is "
           "checked against the JSON Schemas.")

if st.button("Prepare the export", type="primary"):
    with tempfile.TemporaryDirectory() as tmp, st.spinner("Exporting…"):
        out = Path(tmp) / "export"
        try:
            files = exports.export(store, did, what, fmt, out, question_id=question, until=until)
        except WorkbenchError as exc:
            st.error(str(exc))
            st.stop()
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for f in files:
                archive.write(f.path, f.path.relative_to(out))
        datasheet = next(f for f in files if f.table == "datasheet").path.read_text()
    st.session_state["export_zip"] = (f"{did}-{what}-{fmt}.zip", buffer.getvalue(), datasheet)

if "export_zip" in st.session_state:
    name, data, datasheet = st.session_state["export_zip"]
    st.download_button(f"Download {name}", data, file_name=name, mime="application/zip")
    with st.expander("Datasheet (README.md)", expanded=True):
        st.markdown(datasheet)
