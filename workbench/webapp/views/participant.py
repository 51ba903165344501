"""The participant's page: consent, about you, a question, the interview, then the judging rounds.

Thin: `workbench.participation` says where the participant is and what to ask; this page renders
that step and calls exactly one store method per submission, which saves the answer and the step
it completes in one transaction (and changes nothing when repeated). So a refresh resumes exactly
here, and a double click or a crash mid-submission leaves no duplicate.

A submission is a button's callback (`submit`), which Streamlit runs before the page's next run: one
run per click, showing the next step, rather than a run that writes and a second one (`st.rerun`)
that shows what follows. Each run reads only what it shows (the participant's state in one unit of
work; in a judging round the item's values, not the value table).
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


def submit(write, *args, **kwargs) -> dict:
    """A button's `on_click` and arguments that make the click one submission: `write(*args)` runs before
    the next page run (an `InputError` it raises is shown on that run, nothing written)."""
    return {"on_click": web.guarded("saving your answer", write), "args": args, "kwargs": kwargs}


def header() -> None:
    st.title(delib["title"])
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
    """Escape Markdown so card text is shown as typed."""
    for ch in "\\`*_{}[]<>()#+-.!|~":
        text = text.replace(ch, "\\" + ch)
    return text


# -- consent, about you, question ---------------------------------------------------------------


def consent_step() -> None:
    st.text(delib["consent_text"])
    agreed = st.checkbox("I have read this and agree to take part", key="consent_box")
    st.button("Continue", type="primary", disabled=not agreed, **submit(store.give_consent, pid))


def demographics_step() -> None:
    questions = delib["settings"].get("demographics", [])
    st.write("A few questions about you. They help us see where different groups agree and differ.")
    with st.form("demographics"):
        for q in questions:
            label = q["label"] + ("" if q["required"] else " (optional)")
            st.selectbox(label, q["options"], index=None, placeholder="Choose…", key=f"demo_{q['key']}")
        st.form_submit_button("Continue", type="primary", **submit(save_about_you, questions))


def save_about_you(questions: list[dict]) -> None:
    answers = {q["key"]: st.session_state.get(f"demo_{q['key']}") for q in questions}
    missing = [q["label"] for q in questions if q["required"] and answers[q["key"]] is None]
    if missing:
        raise InputError("Please answer: " + ", ".join(missing) + " (\"Prefer not to say\" is fine).")
    store.record_about_you(pid, {k: v for k, v in answers.items() if v is not None})


def question_step() -> None:
    questions = store.questions(did)
    st.write("Which of these questions would you like to think about?")
    labels = {row.id: row.title for row in questions.itertuples()}
    choice = st.radio("Question", list(labels), format_func=labels.get, index=None, key="question_choice")
    if choice:
        st.info(questions.set_index("id").loc[choice, "prompt"])
    st.button("Continue", type="primary", disabled=choice is None,
              **submit(lambda: store.choose_question(pid, st.session_state["question_choice"],
                                                     mode="llm" if llm_config() else "guided")))


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
    interview = flow.interview
    if interview is None:  # a question chosen before choosing started its interview in the same step
        store.choose_question(pid, flow.question_id, mode="llm" if llm_config() else "guided")
        return rerun()
    iid = int(interview["id"])
    question = flow.question
    st.info(question["prompt"])
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

    def buttons(read) -> None:
        """Back and Continue side by side; Continue saves the stage as `read()` gives it from its widgets."""
        back, forward, _ = st.columns([1, 1, 4])
        if index > 0:
            back.button("Back", key=f"back_{current}", width="stretch", on_click=go_to_stage,
                        args=(iid, STAGE_KEYS[index - 1]))
        forward.button("Continue", type="primary", key=f"next_{current}", width="stretch",
                       **submit(save_stage, iid, current, read))

    if current in ("response", "story"):
        key = f"{current}_{iid}"
        st.text_area(f"Your words (up to {FREE_TEXT_MAX} characters)", value=getattr(answers, current),
                     max_chars=FREE_TEXT_MAX, key=key, placeholder=stage.placeholder, height=160,
                     on_change=web.guarded("saving a draft", save_draft), args=(iid, answers, current, key))
        buttons(lambda: {current: required(key, "Please write a few words before you continue.")})
    elif current == "attention":
        proposed = answers.policies or tuple(candidate_policies(answers.response, answers.story))
        key = f"policies_{iid}"
        text = st.text_area(f"One thing you pay attention to per line (each up to {POLICY_MAX} characters)",
                            value="\n".join(proposed), key=key, placeholder=stage.placeholder, height=200,
                            on_change=web.guarded("saving a draft", save_draft), args=(iid, answers, "policies", key))
        for i, line in enumerate(lines_of(text)):
            for issue in check_policy(line, f"policies[{i}]"):
                (st.error if issue.severity == "error" else st.warning)(f"Line {i + 1}: {issue.message}")

        def policies() -> dict:
            lines = lines_of(st.session_state.get(key) or "")
            if len(lines) < 2:
                raise InputError("Please write at least two lines: what you paid attention to.")
            return {"policies": tuple(lines)}
        buttons(policies)
    elif current == "title":
        st.text_input(f"Name (up to {TITLE_MAX} characters)",
                      value=answers.title or draft_title(answers.policies, answers.response),
                      max_chars=TITLE_MAX, key=f"title_{iid}")
        st.text_area(f"What it is about, in a sentence or two (up to {DESCRIPTION_MAX} characters)",
                     value=answers.description or draft_description(answers.policies, answers.response),
                     max_chars=DESCRIPTION_MAX, key=f"description_{iid}")
        missing = "Please give both a name and a short description."
        buttons(lambda: {"title": required(f"title_{iid}", missing),
                         "description": required(f"description_{iid}", missing)})
    elif current == "contexts":
        options = list(store.contexts(did, question_id=flow.question_id)["name"])
        st.multiselect("Situations", options, default=[c for c in answers.contexts if c in options],
                       key=f"contexts_{iid}")
        st.text_input("Or suggest another situation (a facilitator will review it)", max_chars=120,
                      value=next((c for c in answers.contexts if c not in options), ""), key=f"extra_{iid}")

        def contexts() -> dict:
            extra = (st.session_state.get(f"extra_{iid}") or "").strip()
            picked = list(st.session_state.get(f"contexts_{iid}") or []) + ([extra] if extra else [])
            if not picked:
                raise InputError("Please pick at least one situation, or suggest one.")
            return {"contexts": tuple(picked)}
        buttons(contexts)
    else:
        review(iid, answers)


def lines_of(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def required(key: str, message: str) -> str:
    """The stripped text of the widget `key`; an InputError saying `message` when it is empty."""
    text = (st.session_state.get(key) or "").strip()
    if not text:
        raise InputError(message)
    return text


def go_to_stage(iid: int, stage: str) -> None:
    st.session_state[f"stage_{iid}"] = stage


def save_stage(iid: int, stage: str, read) -> None:
    """Continue in the guided interview: the stage's answer (`read()`, from its widgets) joins what is
    stored so far (read now: a draft saved in this same run counts) and is saved with the stage."""
    changes = read()
    answers, _ = interview_state(iid)
    store.save_interview_stage(pid, iid, stage, answers.with_changes(**changes).to_dict())
    st.session_state.pop(f"stage_{iid}", None)


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
    st.text_area(f"What you pay attention to, one per line (each up to {POLICY_MAX} characters)",
                 value="\n".join(answers.policies), key=f"rev_policies_{iid}", height=200)
    st.caption("Where it applies: " + "; ".join(answers.contexts))
    check = check_card(reviewed(iid, title, description))
    for issue in check.errors:
        st.error(f"{field_label(issue.field)}: {issue.message}")
    for i, issue in enumerate(check.warnings):
        st.warning(f"{field_label(issue.field)}: {issue.message}")
        st.checkbox("Keep it as it is", key=f"override_{iid}_{i}_{issue.code}")
    st.button("Back", key="back_review", on_click=go_to_stage, args=(iid, "contexts"))
    st.button("Confirm my card", type="primary", disabled=not check.ok(overrides(iid, check)),
              **submit(confirm, iid, answers))


def reviewed(iid: int, title: str | None = None, description: str | None = None) -> dict:
    """The card as the review's widgets hold it."""
    return {"title": st.session_state.get(f"rev_title_{iid}", "") if title is None else title,
            "description": st.session_state.get(f"rev_description_{iid}", "") if description is None else description,
            "policies": lines_of(st.session_state.get(f"rev_policies_{iid}") or "")}


def overrides(iid: int, check) -> list[str]:
    """The warnings the participant chose to keep ("Keep it as it is")."""
    return [issue.code for i, issue in enumerate(check.warnings)
            if st.session_state.get(f"override_{iid}_{i}_{issue.code}")]


def confirm(iid: int, answers: GuidedAnswers) -> None:
    card = reviewed(iid)
    check = check_card(card)
    overridden = overrides(iid, check)
    if not check.ok(overridden):
        raise InputError("Please fix the card first: " + "; ".join(
            f"{field_label(i.field)}: {i.message}" for i in check.errors))
    card = validated(ValuesCardIn, {**card, "question_id": flow.question_id, "contexts": list(answers.contexts),
                                    "overrides": sorted(set(overridden))})
    store.confirm_card(pid, iid, card, answers.with_changes(
        title=card.title, description=card.description, policies=tuple(card.policies)).to_dict())


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
    item = P.next_item(store, flow, "wiser")
    if item is None:
        return finish("wiser")
    entry = item.entry
    a, b = item.values
    st.write(f"Question {item.number} of {item.total}")
    situation = entry["context"][:1].lower() + entry["context"][1:]
    st.markdown(f"**In this situation — {_plain(situation)} — someone moved from the first value to the second.**")
    st.text(story_of(item.index, a, b, entry["context"]))
    left, right = st.columns(2)
    with left:
        show_value(a, heading="Before")
    with right:
        show_value(b, heading="After")
    with st.form(f"wiser_{item.index}"):
        st.radio("Did they become wiser?", ["upgrade", "no_upgrade", "not_sure"], index=None,
                 format_func={"upgrade": "Yes, wiser", "no_upgrade": "No", "not_sure": "Not sure"}.get,
                 key=f"wiser_answer_{item.index}")
        st.text_area(f"Why? (optional, up to {COMMENT_MAX} characters)", max_chars=COMMENT_MAX,
                     key=f"wiser_comment_{item.index}")
        st.form_submit_button("Submit", type="primary", **submit(answer_wiser, item.index))


def answer_wiser(index: int) -> None:
    answer = st.session_state.get(f"wiser_answer_{index}")
    if answer is None:
        raise InputError("Please choose Yes, No or Not sure.")
    store.answer_wiser(pid, index, answer, st.session_state.get(f"wiser_comment_{index}") or None)


def endorse_step() -> None:
    item = P.next_item(store, flow, "endorse")
    if item is None:
        return finish("endorse")
    value, = item.values
    st.write(f"Value {item.number} of {item.total}: should this guide how an assistant answers?")
    show_value(value)
    cols = st.columns(3)
    for col, (vote, label) in zip(cols, [("agree", "Agree"), ("disagree", "Disagree"), ("pass", "Pass / unsure")],
                                  strict=True):
        col.button(label, key=f"endorse_{item.index}_{vote}", width="stretch",
                   **submit(store.endorse, pid, item.index, vote))


def compare_step() -> None:
    item = P.next_item(store, flow, "compare")
    if item is None:
        return finish("compare")
    st.write(f"Pair {item.number} of {item.total}: which of these two should guide the answer to this question?")
    st.info(flow.question["prompt"])
    for column, value, winner in zip(st.columns(2), item.values, ("a", "b"), strict=True):
        with column:
            show_value(value)
            st.button("This one", key=f"cmp_{item.index}_{winner}", width="stretch",
                      **submit(store.compare, pid, item.index, winner))
    st.button("I can't choose", key=f"cmp_{item.index}_tie", **submit(store.compare, pid, item.index, "tie"))


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
