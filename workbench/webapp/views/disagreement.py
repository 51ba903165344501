"""Where communities disagree: the opinion map, group × value heat map, strengths per group with
intervals, latent classes and their make-up, and the divisive and bridging values.

Thin: `workbench.analyses.disagreement_report` computes everything (with a progress bar) and stores
it as an analysis run; this page draws the fields of a `DisagreementReport`, new or reopened.
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from workbench import analyses, web
from workbench.markdown import literal

web.require_staff(__file__)
st.title("Where communities disagree")
store = web.store()
did = web.deliberation_picker()
if did is None:
    st.stop()

attributes = [c for c in store.attributes(did).columns if c != "participant_id"]
left, middle, right = st.columns([2, 2, 1])
with left:
    question = web.question_picker(did)
with middle:
    by = st.selectbox("Known groups (participant attribute)", [None, *attributes],
                      format_func=lambda a: "none" if a is None else a,
                      index=1 + attributes.index("political_leaning") if "political_leaning" in attributes else 0)
with right:
    bootstrap = st.number_input("Bootstrap replicates", min_value=0, max_value=2000, value=200, step=50,
                                help="Intervals for everyone and each known group from refitting on participants"
                                     " resampled with replacement. 0 = Laplace intervals only (faster).")

runs = store.runs(deliberation_id=did, kind="disagreement")
runs = runs[runs["status"] == "done"]
run_id = st.session_state.get(f"disagreement_run_{did}")
a, b = st.columns([1, 2])
if a.button("Run the analyses", type="primary"):
    bar = st.progress(0.0, text="Finding opinion groups…")
    labels = ["Finding opinion groups…", "Fitting preference models and bootstrap intervals…",
              "Ranking divisive and bridging values…", "Saving…", "Done"]
    report = analyses.disagreement_report(
        store, did, question_id=question, by=by, bootstrap=0 if bootstrap == 1 else int(bootstrap),
        progress=lambda done, total: bar.progress(done / total, text=labels[min(4 * done // total, 4)]))
    run_id = st.session_state[f"disagreement_run_{did}"] = report.run_id
    st.rerun()
if not runs.empty:
    options = list(runs["id"])
    chosen = b.selectbox("…or reopen an earlier run", options, index=options.index(run_id) if run_id in options else 0,
                         format_func=lambda r: f"run {r}, {runs.set_index('id').loc[r, 'finished_at']:%Y-%m-%d %H:%M}"
                         f" ({runs.set_index('id').loc[r, 'params']})")
    run_id = chosen
if run_id is None:
    st.info("Run the analyses to see where the groups part ways.")
    st.stop()

report = analyses.stored_disagreement(store, int(run_id))
title = report.title

st.header("Opinion groups (from agree / disagree votes)")
if report.opinion_groups_error or report.opinion_map is None or report.opinion_map.empty:
    st.info(report.opinion_groups_error or "No participant is in an opinion group yet.")
else:
    opinion = report.opinion_map.assign(group="group " + report.opinion_map["group"].astype(str))
    st.caption(f"{report.k} groups found by Polis's pipeline; each dot is a participant.")
    st.altair_chart(alt.Chart(opinion).mark_circle(size=60, opacity=0.7).encode(
        x=alt.X("x", title="opinion axis 1"), y=alt.Y("y", title="opinion axis 2"),
        color=alt.Color("group", title="group"), tooltip=["participant_id", "group"]).properties(height=360),
        width="stretch")
    heat = report.heat.assign(value=report.heat["statement_id"].map(title),
                              group="group " + report.heat["group"].astype(str))
    st.subheader("How each group votes on each value")
    st.altair_chart(alt.Chart(heat).mark_rect().encode(
        x=alt.X("group", title=None), y=alt.Y("value", title=None, sort="-color", axis=alt.Axis(labelLimit=320)),
        color=alt.Color("agree", title="share agreeing", scale=alt.Scale(domain=[0, 1], scheme="blueorange")),
        tooltip=["value", "group", alt.Tooltip("agree", format=".0%"), "votes"]).properties(
        height=max(200, 26 * heat["value"].nunique())), width="stretch")

if report.polis_report:
    # Polis's report for these groups, computed by workbench.polis (analyses.disagreement_report); drawn only.
    from workbench.polis.repness import in_plain_words

    polis = report.polis_report
    st.subheader("What sets each group apart (Polis's report)")
    how = ("replaying the votes in the order they were cast" if polis["method"] == "replay"
           else "from the latest votes at once (no vote history)")
    st.caption(f"{polis['n_grouped']} of {polis['n_participants']} participants are in a group; groups found {how}."
               " Shares count passes as votes.")
    for group in polis["groups"]:
        with st.expander(f"Group {group['label']} — {group['size']} participants", expanded=True):
            for row in group["statements"]:
                st.markdown(f"**{literal(row['text'] or title(row['statement_id']))}**  \n{in_plain_words(row)}")
    shared = polis["consensus"]["agree"] + polis["consensus"]["disagree"]
    if shared:
        st.markdown("**What most participants share**")
        st.dataframe(pd.DataFrame({"statement": [r["text"] or title(r["statement_id"]) for r in shared],
                                   "side": [r["direction"] for r in shared], "share": [r["share"] for r in shared],
                                   "votes": [r["n_trials"] for r in shared]}),
                     hide_index=True, width="stretch", column_config={"share": st.column_config.NumberColumn(format="percent")})
    if polis["group_informed_consensus"]:
        st.markdown("**Common ground across groups** (group-informed consensus: every group tends to agree)")
        rows = polis["group_informed_consensus"][:5]
        st.dataframe(pd.DataFrame({"statement": [r["text"] or title(r["statement_id"]) for r in rows],
                                   "consensus": [r["gic"] for r in rows],
                                   **{f"group {g} agrees": [r["agree_share_by_group"].get(g) for r in rows]
                                      for g in (rows[0]["agree_share_by_group"] if rows else {})}}),
                     hide_index=True, width="stretch")

st.header("Preferences per group (from comparisons and wiser-than answers)")
if report.fit_error or report.fit is None:
    st.info(report.fit_error or "No preference fit in this run.")
else:
    fit = report.fit
    boot = fit.get("bootstrap")
    forest = report.strengths()
    kinds = list(dict.fromkeys(forest["group"]))  # everyone, the known groups, then the latent classes
    known = [kind for kind in kinds if kind.startswith(f"{fit.get('group_by')} = ")]
    latent = [kind for kind in kinds if kind.startswith("latent class")]
    shown = st.multiselect("Groups to compare", kinds,
                           default=[kind for kind in kinds if kind == "everyone"] + (known or latent))
    forest = forest[forest["group"].isin(shown)]
    base = alt.Chart(forest).encode(y=alt.Y("value", title=None, axis=alt.Axis(labelLimit=320)),
                                    color=alt.Color("group", title=None, legend=alt.Legend(labelLimit=320)),
                                    yOffset="group")
    st.altair_chart((base.mark_rule().encode(x=alt.X("lower", title="strength θ (95% interval)"), x2="upper")
                     + base.mark_point(filled=True).encode(x="theta", tooltip=[
                        "group", "value", alt.Tooltip("theta", format=".2f"), alt.Tooltip("lower", format=".2f"),
                        alt.Tooltip("upper", format=".2f"), "interval"]))
                    .properties(height=max(240, 18 * forest["value"].nunique() * max(1, len(shown)))),
                    width="stretch")
    st.caption(("Intervals for everyone and the known groups: percentile intervals from "
                f"{boot['n_boot']} bootstrap replicates over participants (resampled within each group). "
                if boot else "Intervals: Laplace (normal approximation at the fit). ")
               + "Latent classes: Laplace intervals given the class memberships. Strengths compare values"
               " that were compared with each other: read them within one question.")
    st.caption(f"{fit['k']} latent class(es) chosen by BIC: "
               + ", ".join(f"K={k}: {v:,.0f}" for k, v in fit["bic"].items()))

    for name, ranking in report.rankings.items():
        st.subheader(f"Divisive and bridging values — {name}")
        st.caption(f"Mutual information between group and choice: {ranking.jsd:.3f} bits")
        d, g = st.columns(2)
        with d:
            st.markdown("**Divisive** (groups rank them most differently)")
            table = ranking.divisive
            st.dataframe(pd.DataFrame({"value": table["item"].map(title), "between-group variance": table["score"]}),
                         hide_index=True, width="stretch")
        with g:
            st.markdown("**Bridging** (high in every group)")
            table = ranking.bridging
            st.dataframe(pd.DataFrame({"value": table["item"].map(title),
                                       "lowest group's P(beats another)": table["score"],
                                       "weakest group": table["weakest_group"]}),
                         hide_index=True, width="stretch")

    if report.composition is not None and not report.composition.empty:
        st.subheader("Who is in each latent class")
        composition = report.composition
        attribute = st.selectbox("Attribute", sorted(composition["attribute"].unique()),
                                 index=sorted(composition["attribute"].unique()).index(by)
                                 if by in set(composition["attribute"]) else 0)
        part = composition[composition["attribute"] == attribute]
        st.altair_chart(alt.Chart(part).mark_bar().encode(
            x=alt.X("share", stack="normalize", title="share of the class", axis=alt.Axis(format="%")),
            y=alt.Y("latent_class:N", title="latent class"), color=alt.Color("value", title=attribute),
            tooltip=["latent_class", "value", alt.Tooltip("share", format=".0%")]), width="stretch")
