"""The participant's page: consent, about you, a question, the interview, then the judging rounds.

Thin: `workbench.participation` says where the participant is and what to ask; this page renders
that step and calls exactly one store method per submission, which saves the answer and the step
it completes in one transaction (and changes nothing when repeated). So a refresh resumes exactly
here, and a double click or a crash mid-submission leaves no duplicate.
"""

from __future__ import annotations

import streamlit as st

from workbench import participation as P
from workbench import web
from workbench.cardcheck import check_card, check_policy
from workbench.interview import (
    STAGE_KEYS,
    STAGES,
    GuidedAnswers,
    answers_from_transcript,
    candidate_policies,
    draft_description,
    draft_title,
    transition_story,
)
from workbench.llm import LlmConfig, LlmConfigError, LlmInterviewer, LlmUnavailable
from workbench.markdown import literal
from workbench.models import (
    COMMENT_MAX,
    DESCRIPTION_MAX,
    FREE_TEXT_MAX,
    POLICY_MAX,
    TITLE_MAX,
    InputError,
    ValuesCardIn,
    validated,
)

store = web.store()
if "participant_id" not in st.session_state:  # opened without an invite link (e.g. by its file URL)
    st.error("Please open the invite link you were sent.")
    st.stop()
pid = st.session_state["participant_id"]
flow = P.flow(store, pid)
delib = flow.deliberation
did = delib["id"]


def rerun() -> None:
    st.rerun()


def header() -> None:
    st.title(_plain(delib["title"]))
    number, total = flow.step_number()
    st.progress(number / total, text=f"Step {number} of {total}: {P.STEP_TITLES[flow.step]}")


def show_value(value, *, heading: str | None = None) -> None:
    """A values card in full: its title, description and attentional policies (as text, never HTML)."""
    with st.container(border=True):
        if heading:
            st.caption(heading)
        st.markdown(f"**{_plain(value['title'])}**  \n{_plain(value['description'])}")
        if len(value["policies"]):
            st.caption("What they pay attention to:")
            st.markdown("\n".join(f"- {_plain(p)}" for p in value["policies"]))


def _plain(text: str) -> str:
    """Escape Markdown so card text, and what facilitators and imports wrote, is shown as typed."""
    return literal(text)


# -- consent, about you, question ---------------------------------------------------------------


def consent_step() -> None:
    st.text(delib["consent_text"])
    agreed = st.checkbox("I have read this and agree to take part", key="consent_box")
    if st.button("Continue", type="primary", disabled=not agreed):
        store.give_consent(pid)
        rerun()


def demographics_step() -> None:
    questions = delib["settings"].get("demographics", [])
    st.write("A few questions about you. They help us see where different groups agree and differ.")
    with st.form("demographics"):
        answers = {}
        for q in questions:
            label = _plain(q["label"]) + ("" if q["required"] else " (optional)")
            answers[q["key"]] = st.selectbox(label, q["options"], index=None, placeholder="Choose…",
                                             key=f"demo_{q['key']}")
        submitted = st.form_submit_button("Continue", type="primary")
    if submitted:
        missing = [q["label"] for q in questions if q["required"] and answers[q["key"]] is None]
        if missing:
            st.error("Please answer: " + ", ".join(missing) + " (\"Prefer not to say\" is fine).")
            return
        store.record_about_you(pid, {k: v for k, v in answers.items() if v is not None})
        rerun()


def question_step() -> None:
    questions = store.questions(did)
    st.write("Which of these questions would you like to think about?")
    labels = {row.id: row.title for row in questions.itertuples()}
    choice = st.radio("Question", list(labels), format_func=lambda q: _plain(labels[q]), index=None,
                      key="question_choice")
    if choice:
        st.info(_plain(questions.set_index("id").loc[choice, "prompt"]))
    if st.button("Continue", type="primary", disabled=choice is None):
        store.choose_question(pid, choice, mode="llm" if llm_config() else "guided")
        rerun()


# -- the interview --------------------------------------------------------------------------------


def interview_state(interview_id: int) -> tuple[GuidedAnswers, set[str]]:
    answers, submitted = GuidedAnswers(), set()
    for stage, payload in store.interview_log(interview_id):
        answers = GuidedAnswers.from_dict(payload)
        if stage in STAGE_KEYS:
            submitted.add(stage)
    return answers, submitted


def save_draft(interview_id: int, answers: GuidedAnswers, field: str, key: str) -> None:
    """on_change: keep what was typed even before the stage is submitted (nothing lost on refresh)."""
    value = st.session_state.get(key)
    if field in ("policies", "contexts"):
        value = tuple(line.strip() for line in (value or "").splitlines() if line.strip()) \
            if isinstance(value, str) else tuple(value or ())
    store.save_interview_stage(pid, interview_id, "draft", answers.with_changes(**{field: value}).to_dict())


def interview_step() -> None:
    interview = store.current_interview(pid)
    if interview is None:  # a question chosen before choosing started its interview in the same step
        store.choose_question(pid, flow.question_id, mode="llm" if llm_config() else "guided")
        return rerun()
    iid = int(interview["id"])
    question = store.questions(did).set_index("id").loc[flow.question_id]
    st.info(_plain(question["prompt"]))
    if interview["mode"] == "llm":
        return llm_interview(iid, question["prompt"])
    answers, submitted = interview_state(iid)
    current = st.session_state.get(f"stage_{iid}") or next((s for s in STAGE_KEYS if s not in submitted), "review")
    index = STAGE_KEYS.index(current)
    st.caption(" → ".join(f"**{s.title}**" if s.key == current else s.title for s in STAGES))
    stage = STAGES[index]
    st.subheader(stage.title)
    st.write(stage.prompt)
    st.caption(stage.hint)

    def submit(changes: dict) -> None:
        new = answers.with_changes(**changes)
        store.save_interview_stage(pid, iid, current, new.to_dict())
        st.session_state.pop(f"stage_{iid}", None)
        rerun()

    def buttons() -> bool:
        """Back and Continue side by side; True when Continue was clicked."""
        back, forward, _ = st.columns([1, 1, 4])
        if index > 0 and back.button("Back", key=f"back_{current}", width="stretch"):
            st.session_state[f"stage_{iid}"] = STAGE_KEYS[index - 1]
            rerun()
        return forward.button("Continue", type="primary", key=f"next_{current}", width="stretch")

    if current in ("response", "story"):
        key = f"{current}_{iid}"
        text = st.text_area(f"Your words (up to {FREE_TEXT_MAX} characters)", value=getattr(answers, current),
                            max_chars=FREE_TEXT_MAX, key=key, placeholder=stage.placeholder, height=160,
                            on_change=web.guarded("saving a draft", save_draft), args=(iid, answers, current, key))
        if buttons():
            if not text.strip():
                st.error("Please write a few words before you continue.")
            else:
                submit({current: text.strip()})
    elif current == "attention":
        proposed = answers.policies or tuple(candidate_policies(answers.response, answers.story))
        key = f"policies_{iid}"
        text = st.text_area(f"One thing you pay attention to per line (each up to {POLICY_MAX} characters)",
                            value="\n".join(proposed), key=key, placeholder=stage.placeholder, height=200,
                            on_change=web.guarded("saving a draft", save_draft), args=(iid, answers, "policies", key))
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        for i, line in enumerate(lines):
            for issue in check_policy(line, f"policies[{i}]"):
                (st.error if issue.severity == "error" else st.warning)(f"Line {i + 1}: {issue.message}")
        if buttons():
            if len(lines) < 2:
                st.error("Please write at least two lines: what you paid attention to.")
            else:
                submit({"policies": tuple(lines)})
    elif current == "title":
        title = st.text_input(f"Name (up to {TITLE_MAX} characters)",
                              value=answers.title or draft_title(answers.policies, answers.response),
                              max_chars=TITLE_MAX, key=f"title_{iid}")
        description = st.text_area(f"What it is about, in a sentence or two (up to {DESCRIPTION_MAX} characters)",
                                   value=answers.description or draft_description(answers.policies, answers.response),
                                   max_chars=DESCRIPTION_MAX, key=f"description_{iid}")
        if buttons():
            if not title.strip() or not description.strip():
                st.error("Please give both a name and a short description.")
            else:
                submit({"title": title.strip(), "description": description.strip()})
    elif current == "contexts":
        options = list(store.contexts(did, question_id=flow.question_id)["name"])
        chosen = st.multiselect("Situations", options, default=[c for c in answers.contexts if c in options],
                                key=f"contexts_{iid}")
        extra = st.text_input("Or suggest another situation (a facilitator will review it)", max_chars=120,
                              value=next((c for c in answers.contexts if c not in options), ""), key=f"extra_{iid}")
        if buttons():
            picked = chosen + ([extra.strip()] if extra.strip() else [])
            if not picked:
                st.error("Please pick at least one situation, or suggest one.")
            else:
                submit({"contexts": tuple(picked)})
    else:
        review(iid, answers)


def field_label(field: str) -> str:
    """'policies[2]' → 'Line 3', as the participant counts lines; other fields by their label."""
    if field.startswith("policies["):
        return f"Line {int(field[9:-1]) + 1}"
    return {"title": "Name", "description": "Description", "policies": "Lines"}.get(field, field)


def review(iid: int, answers: GuidedAnswers) -> None:
    title = st.text_input(f"Name (up to {TITLE_MAX} characters)", value=answers.title, max_chars=TITLE_MAX,
                          key=f"rev_title_{iid}")
    description = st.text_area(f"Description (up to {DESCRIPTION_MAX} characters)", value=answers.description,
                               max_chars=DESCRIPTION_MAX, key=f"rev_description_{iid}")
    policies_text = st.text_area(f"What you pay attention to, one per line (each up to {POLICY_MAX} characters)",
                                 value="\n".join(answers.policies), key=f"rev_policies_{iid}", height=200)
    st.caption("Where it applies: " + "; ".join(map(_plain, answers.contexts)))
    policies = [line.strip() for line in policies_text.splitlines() if line.strip()]
    check = check_card({"title": title, "description": description, "policies": policies})
    for issue in check.errors:
        st.error(f"{field_label(issue.field)}: {issue.message}")
    overridden = []
    for i, issue in enumerate(check.warnings):
        st.warning(f"{field_label(issue.field)}: {issue.message}")
        if st.checkbox("Keep it as it is", key=f"override_{iid}_{i}_{issue.code}"):
            overridden.append(issue.code)
    if st.button("Back", key="back_review"):
        st.session_state[f"stage_{iid}"] = "contexts"
        rerun()
    if st.button("Confirm my card", type="primary", disabled=not check.ok(overridden)):
        try:
            card = validated(ValuesCardIn, {
                "title": title, "description": description, "policies": policies, "question_id": flow.question_id,
                "contexts": list(answers.contexts), "overrides": sorted(set(overridden))})
        except InputError as exc:
            st.error(str(exc))
            return
        store.confirm_card(pid, iid, card, answers.with_changes(
            title=card.title, description=card.description, policies=tuple(card.policies)).to_dict())
        rerun()


def llm_config() -> LlmConfig | None:
    """The LLM interviewer's settings, or None (offline, or misconfigured: then the guided flow)."""
    try:
        return LlmConfig.from_env()
    except LlmConfigError:
        return None


def llm_interview(iid: int, question: str) -> None:
    config = llm_config()
    if config is None:
        store.continue_guided(pid, iid)
        return rerun()
    interviewer = LlmInterviewer(config, question=question)
    chat = [m for m in store.transcript(iid) if m["role"] in ("user", "assistant")]

    def fall_back(exc: LlmUnavailable, said: str | None = None) -> None:
        """Everything written so far (and what was just said) becomes the guided form's draft."""
        said_chat = [*chat, {"role": "user", "content": said}] if said else chat
        store.continue_guided(pid, iid, draft=answers_from_transcript(said_chat).to_dict(), error=str(exc), said=said)
        st.session_state["llm_fallback"] = True
        rerun()

    try:
        if not chat:
            store.chat_turn(pid, iid, None, interviewer.reply([]).message)
            return rerun()
    except LlmUnavailable as exc:
        return fall_back(exc)
    for message in chat:
        with st.chat_message(message["role"]):
            st.text(message["content"])
    if sum(m["role"] == "user" for m in chat) >= 2 and st.button("Draft my card from this conversation"):
        try:
            card = interviewer.propose_card(chat)
        except LlmUnavailable as exc:
            return fall_back(exc)
        seeded = answers_from_transcript(chat).with_changes(title=card.title, description=card.description,
                                                            policies=tuple(card.policies))
        store.continue_guided(pid, iid, draft=seeded.to_dict(), stages=("response", "story", "attention", "title"))
        return rerun()
    said = st.chat_input("Your answer", max_chars=FREE_TEXT_MAX)
    if said:
        try:
            turn = interviewer.reply([*chat, {"role": "user", "content": said}])
        except LlmUnavailable as exc:
            return fall_back(exc, said)
        store.chat_turn(pid, iid, said, turn.message)
        rerun()


# -- the judging rounds ---------------------------------------------------------------------------


def story_of(index: int, a: dict, b: dict, context: str) -> str:
    """The transition story: written by the LLM when one is configured, else from the offline template.
    Kept in the session so a rerun does not ask the model again."""
    key = f"story_{pid}_{index}"
    if key not in st.session_state:
        story = None
        config = llm_config()
        if config is not None:
            try:
                story = LlmInterviewer(config).transition_story(a, b, context)
            except LlmUnavailable:
                story = None  # the template below is a fine story too
        st.session_state[key] = story or transition_story(a, b, context)
    return st.session_state[key]


def finish(round_name: str) -> None:
    """Nothing (more) to ask in this round: close it and go on."""
    store.finish_round(pid, round_name)
    rerun()


def wiser_step() -> None:
    values = P.round_values(store, flow)
    item = P.next_item(store, flow, "wiser", values)
    if item is None:
        return finish("wiser")
    entry = item.entry
    by_id = values.set_index("id")
    a, b = by_id.loc[entry["from_id"]], by_id.loc[entry["to_id"]]
    st.write(f"Question {item.number} of {item.total}")
    situation = entry["context"][:1].lower() + entry["context"][1:]
    st.markdown(f"**In this situation — {_plain(situation)} — someone moved from the first value to the second.**")
    st.text(story_of(item.index, a.to_dict(), b.to_dict(), entry["context"]))
    left, right = st.columns(2)
    with left:
        show_value(a, heading="Before")
    with right:
        show_value(b, heading="After")
    with st.form(f"wiser_{item.index}"):
        answer = st.radio("Did they become wiser?", ["upgrade", "no_upgrade", "not_sure"], index=None,
                          format_func={"upgrade": "Yes, wiser", "no_upgrade": "No", "not_sure": "Not sure"}.get)
        comment = st.text_area(f"Why? (optional, up to {COMMENT_MAX} characters)", max_chars=COMMENT_MAX)
        if st.form_submit_button("Submit", type="primary"):
            if answer is None:
                st.error("Please choose Yes, No or Not sure.")
                return
            try:
                store.answer_wiser(pid, item.index, answer, comment or None)
            except InputError as exc:
                st.error(str(exc))
                return
            rerun()


def endorse_step() -> None:
    values = P.round_values(store, flow)
    item = P.next_item(store, flow, "endorse", values)
    if item is None:
        return finish("endorse")
    value = values.set_index("id").loc[int(item.entry)]
    st.write(f"Value {item.number} of {item.total}: should this guide how an assistant answers?")
    show_value(value)
    cols = st.columns(3)
    for col, (vote, label) in zip(cols, [("agree", "Agree"), ("disagree", "Disagree"), ("pass", "Pass / unsure")],
                                  strict=True):
        if col.button(label, key=f"endorse_{item.index}_{vote}", width="stretch"):
            store.endorse(pid, item.index, vote)
            rerun()


def compare_step() -> None:
    values = P.round_values(store, flow)
    item = P.next_item(store, flow, "compare", values)
    if item is None:
        return finish("compare")
    by_item = values.set_index("item")
    question = store.questions(did).set_index("id").loc[flow.question_id]
    st.write(f"Pair {item.number} of {item.total}: which of these two should guide the answer to this question?")
    st.info(_plain(question["prompt"]))

    def choose(winner: str) -> None:
        store.compare(pid, item.index, winner)
        rerun()

    left, right = st.columns(2)
    with left:
        show_value(by_item.loc[item.entry["item_a"]])
        if st.button("This one", key=f"cmp_{item.index}_a", width="stretch"):
            choose("a")
    with right:
        show_value(by_item.loc[item.entry["item_b"]])
        if st.button("This one", key=f"cmp_{item.index}_b", width="stretch"):
            choose("b")
    if st.button("I can't choose", key=f"cmp_{item.index}_tie"):
        choose("tie")


def done_step() -> None:
    st.success("Thank you! Your answers are saved.")
    if flow.card_id:
        show_value(store.card(flow.card_id), heading="Your values card")


header()
if st.session_state.pop("llm_fallback", False):
    st.warning("The chat interviewer is not available right now, so we switched to the step-by-step form. "
               "Everything you wrote is kept.")
{
    "consent": consent_step, "demographics": demographics_step, "question": question_step,
    "interview": interview_step, "wiser": wiser_step, "endorse": endorse_step, "compare": compare_step,
    "done": done_step,
}[flow.step]()
