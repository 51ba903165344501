"""The moral graph, interactive: values as nodes, wiser-than edges, filtered by question, context and group.

Thin: workbench.analyses builds the graph, workbench.graphview turns it into a view, the offline
component draws it; clicking a value shows its card, member cards, answers and rank per group.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from workbench import analyses, config, web
from workbench.components.moral_graph import moral_graph
from workbench.graphview import graph_view
from workbench.markdown import literal

web.require_staff(__file__)
st.title("The moral graph")
store = web.store()
did = web.deliberation_picker()
if did is None:
    st.stop()


@st.cache_data(ttl=30, show_spinner="Building the moral graph…")
def graph_data(db: str, did: str, mode: str, question: str | None, by: str | None, group: str | None,
               answers: int):
    """Cached per data version (`answers` = how many wiser-than answers there are)."""
    s = web.store()
    participants = None
    if by and group:
        participants = analyses.groups_by_attribute(s, did, by)[group]
    published = analyses.moral_graph(s, did, mode=mode, question_id=question, participants=participants).published
    ranks = analyses.group_page_ranks(s, did, by, mode=mode, question_id=question) if by else None
    return published, ranks, analyses.member_cards(s, did)


@st.cache_data(ttl=30, show_spinner=False)
def view_of(published: dict, context: str | None, ranks, members) -> dict:
    return graph_view(published, context=context, group_ranks=ranks, members=members).to_dict()


attributes = [c for c in store.attributes(did).columns if c != "participant_id"]
left, middle, right = st.columns(3)
with left:
    mode = st.radio("Statistic", ["default", "mge"], horizontal=True,
                    format_func={"default": "Workbench (credible bound)", "mge": "MGE study (exact)"}.get,
                    help="The workbench's Bayesian statistic, or the MGE study's published algorithm.")
    question = web.question_picker(did)
with middle:
    by = st.selectbox("Rank per group of", [None, *attributes], format_func=lambda a: "no grouping" if a is None else a)
    groups = sorted(analyses.groups_by_attribute(store, did, by)) if by else []
    group = st.selectbox("Only the answers of", [None, *groups], format_func=lambda g: "everyone" if g is None else g,
                         disabled=not groups)
n_answers = len(store.wiser_answers(did))
published, ranks, members = graph_data(str(config.db_path()), did, mode, question, by, group, n_answers)
contexts = sorted({c for e in published["edges"] for c in e["contexts"]})
with right:
    context = st.selectbox("Context", [None, *contexts], format_func=lambda c: "all contexts" if c is None else c)
    st.metric("Values on the graph", len(published["values"]))
    st.metric("Wiser-than edges", len(published["edges"]))

if not published["edges"]:
    st.info("No edge passes the thresholds yet: the graph fills in as participants answer wiser-than questions.")
    st.stop()

view = view_of(published, context, ranks, members)
selected = moral_graph(view, height=620, key=f"graph_{did}_{mode}_{question}_{context}_{by}_{group}")

if selected is not None:
    node = next(n for n in view["nodes"] if str(n["id"]) == str(selected))
    st.subheader(literal(node["label"]))  # a value's title as typed, never rendered
    vid = store.id_map(did, "value").to_store.get(str(selected))
    if vid is not None:
        answers = store.wiser_answers(did)
        involved = answers[(answers["from_id"] == vid) | (answers["to_id"] == vid)].copy()
        involved["direction"] = ["from this value" if f == vid else "to this value" for f in involved["from_id"]]
        st.caption(f"{len(involved)} wiser-than answers involve this value")
        if not involved.empty:
            st.dataframe(pd.crosstab(involved["direction"], involved["answer"]), width="content")
    if node.get("group_ranks"):
        st.caption("Rank (PageRank) within each group's own graph")
        st.bar_chart(pd.Series(node["group_ranks"], name="PageRank").dropna())
