"""The deliberation report: make it (with a progress bar) or reopen a stored one, and download the one HTML file.

Thin: `workbench.report.deliberation_report` runs the analyses and stores the report as an analysis
run; `render_html` makes the file. This page only asks for the options, shows the headline numbers
and offers the download.
"""

from __future__ import annotations

import streamlit as st

from workbench import report as reports
from workbench import web
from workbench.errors import WorkbenchError

web.require_staff(__file__)
st.title("Report")
st.caption("One HTML file to send to whoever commissioned or took part in the deliberation: who took part, the "
           "moral graph, opinion groups, where groups disagree and which values bridge them, the closing survey, "
           "and how it was all made. It opens in any browser, offline, and prints well.")
store = web.store()
did = web.deliberation_picker()
if did is None:
    st.stop()

attributes = [c for c in store.attributes(did).columns if c != "participant_id"]
left, middle, right = st.columns([2, 2, 1])
until = left.text_input("As of (optional: only data collected before, e.g. 2023-10-18)", max_chars=40,
                        key=f"report_until_{did}") or None
by = middle.selectbox("Also compare groups by (participant attribute)", [None, *attributes],
                      format_func=lambda a: "latent classes only" if a is None else a, key=f"report_by_{did}")
bootstrap = right.number_input("Bootstrap replicates", min_value=0, max_value=2000, value=100, step=50,
                               help="For the intervals of the strengths per group. 0 = Laplace intervals (faster).")

chosen_key = f"report_run_{did}"
if st.button("Make the report", type="primary"):
    bar = st.progress(0.0, text="Counting who took part…")
    steps = [(50, "Drawing the moral graph…"), (150, "Finding opinion groups and fitting preferences…"),
             (870, "Counting the closing survey…"), (950, "Saving…")]

    def progress(done: int, total: int) -> None:
        text = next((label for at, label in reversed(steps) if done >= at), "Counting who took part…")
        bar.progress(min(done / total, 1.0), text=text)

    try:
        made = reports.deliberation_report(store, did, until=until, by=by, bootstrap=0 if bootstrap == 1 else int(bootstrap),
                                           progress=progress)
    except WorkbenchError as exc:
        st.error(str(exc))
        st.stop()
    st.session_state[chosen_key] = made.run_id
    bar.progress(1.0, text="Done")

runs = store.runs(deliberation_id=did, kind="report")
runs = runs[runs["status"] == "done"]
if runs.empty:
    st.info("No report yet: make one above.")
    st.stop()
options = list(runs["id"])
current = st.session_state.get(chosen_key)
by_id = runs.set_index("id")
run_id = st.selectbox("Report", options, index=options.index(current) if current in options else 0,
                      format_func=lambda r: f"run {r}, made {by_id.loc[r, 'finished_at']:%Y-%m-%d %H:%M} UTC")
made = reports.stored_report(store, int(run_id))
html = reports.render_html(made)

fair = next((q.overall for q in made.survey.questions if q.key == "position_fair"), None)
cols = st.columns(4)
cols[0].metric("People who took part", made.participation.participants)
cols[1].metric("Values in the moral graph", made.graph.n_values)
cols[2].metric("Opinion groups", made.groups.k)
cols[3].metric("Found their value's place fair", fair.in_words() if fair and fair.answered else "no answers")
st.download_button("Download the report (HTML)", html.encode("utf-8"), file_name=f"{did}-report-run{run_id}.html",
                   mime="text/html", type="primary")
st.caption(f"{len(html.encode('utf-8')):,} bytes, self-contained. Make it again from the command line with "
           f"`workbench report --out report.html --run {run_id}`.")
