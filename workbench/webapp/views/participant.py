"""The participant's page: consent, about you, a question, the interview, then the judging rounds (the
last, "Are these two the same value?", optional).

Thin: `workbench.participation` says where the participant is and what to ask; this page renders
that step and calls exactly one store method per submission, which saves the answer and the step
it completes in one transaction (and changes nothing when repeated). So a refresh resumes exactly
here, and a double click or a crash mid-submission leaves no duplicate.
"""

from __future__ import annotations

import zlib
from functools import partial

import streamlit as st

from workbench import drafting, web
from workbench import participation as P
from workbench.cardcheck import check_card, check_policy
from workbench.components import draft_keeper
from workbench.interview import (
    STAGE_KEYS,
    STAGES,
    AttentionChoices,
    GuidedAnswers,
    answers_from_transcript,
    draft_description,
    draft_title,
    policies_from_text,
    question_text,
    wiser_story,
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


#: A submission refused for what the participant entered, until `refusal` shows it beside the button.
REFUSED = "participant_submission_refused"


def submit_on_click(write, *args, **kwargs) -> dict:
    """A button's `on_click` and arguments that make the click one submission: `write(*args)` runs before
    the next page run, which shows the next step (one run per click, not a writing run and a showing
    run). An `InputError` it raises (nothing written) is shown on that run by `refusal`, where the
    participant clicked, not at the top of a long page they may have scrolled past; a bug is shown
    as any callback's (web.guarded)."""

    def submit(*a, **k) -> None:
        try:
            write(*a, **k)
        except InputError as exc:
            st.session_state[REFUSED] = str(exc)

    return {"on_click": web.guarded("saving your answer", submit), "args": args, "kwargs": kwargs}


def refusal() -> None:
    """Why the last submission was refused, if it was: called just above a step's submit button (and once
    more at the end of the page, for a step that has no place for it)."""
    message = st.session_state.pop(REFUSED, None)
    if message:
        st.error(message)


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


# A step whose inputs are in a form costs one page run, when Continue is clicked, not one more for each
# tick or choice (a refusal says what is missing beside the button).


def consent_step() -> None:
    st.text(delib["consent_text"])
    with st.form("consent", border=False):
        st.checkbox("I have read this and agree to take part", key="consent_box")
        refusal()
        st.form_submit_button("Continue", type="primary", **submit_on_click(give_consent))


def give_consent() -> None:
    if not st.session_state.get("consent_box"):
        raise InputError("Please tick the box to agree before you go on.")
    store.give_consent(pid)


def demographics_step() -> None:
    questions = delib["settings"].get("demographics", [])
    st.write("A few questions about you. They help us see where different groups agree and differ.")
    with st.form("demographics"):
        for q in questions:
            label = _plain(q["label"]) + ("" if q["required"] else " (optional)")
            st.selectbox(label, q["options"], index=None, placeholder="Choose…", key=f"demo_{q['key']}")
        refusal()
        st.form_submit_button("Continue", type="primary", **submit_on_click(record_about_you, questions))


def record_about_you(questions: list[dict]) -> None:
    answers = {q["key"]: st.session_state.get(f"demo_{q['key']}") for q in questions}
    missing = [q["label"] for q in questions if q["required"] and answers[q["key"]] is None]
    if missing:
        raise InputError("Please answer: " + ", ".join(missing) + " (\"Prefer not to say\" is fine).")
    store.record_about_you(pid, {k: v for k, v in answers.items() if v is not None})


def question_step() -> None:
    questions = store.questions(did)
    st.write("Which of these questions would you like to think about?")
    labels = {row.id: row.title for row in questions.itertuples()}
    with st.form("question", border=False):
        st.radio("Question", list(labels), format_func=lambda q: _plain(labels[q]), index=None,
                 captions=[_plain(prompt) for prompt in questions["prompt"]], key="question_choice")
        refusal()
        st.form_submit_button("Continue", type="primary", **submit_on_click(choose_question))


def choose_question() -> None:
    choice = st.session_state.get("question_choice")
    if choice is None:
        raise InputError("Please choose a question.")
    store.choose_question(pid, choice, mode="llm" if llm_config() else "guided")


# -- the interview --------------------------------------------------------------------------------


def interview_state(interview_id: int) -> tuple[GuidedAnswers, set[str]]:
    """The latest answers (every submission and draft holds all of them) and the stages submitted."""
    answers, submitted = GuidedAnswers(), set()
    for stage, payload in store.interview_log(interview_id):
        answers = GuidedAnswers.from_dict(payload)
        if stage in STAGE_KEYS:
            submitted.add(stage)
    return answers, submitted


# Widget keys of the interview's text fields, per stage: what the draft keeper watches.
TEXT_FIELDS = {
    "response": ("response",), "story": ("story",), "attention": ("own_lines",), "title": ("title", "description"),
    "contexts": ("extra",), "review": ("rev_title", "rev_description", "rev_policies"),
}


def widget_key(name: str, iid: int) -> str:
    return f"{name}_{iid}"


def typed_changes(iid: int, values: dict[str, str], choices: AttentionChoices | None,
                  context_options: list[str]) -> dict:
    """What the participant typed ({widget key: text}) as changes to their answers."""
    changes: dict = {}
    for key, text in values.items():
        name = key.rsplit("_", 1)[0]
        if name in ("response", "story", "title", "description"):
            changes[name] = text.strip()
        elif name in ("rev_title", "rev_description"):
            changes[name[4:]] = text.strip()
        elif name == "rev_policies":
            changes["policies"] = tuple(policies_from_text(text))
        elif name == "own_lines" and choices is not None:
            ticked = [s.text for s in choices.suggestions if st.session_state.get(pick_key(iid, s.text), False)]
            changes["policies"] = choices.policies(ticked, text)
        elif name == "extra":
            chosen = [c for c in st.session_state.get(widget_key("contexts", iid)) or [] if c in context_options]
            changes["contexts"] = tuple(chosen + ([text.strip()] if text.strip() else []))
    return changes


def typed_now(keys: tuple[str, ...]) -> dict[str, str]:
    """The text widgets `keys` hold now ({widget key: text})."""
    return {k: str(st.session_state.get(k) or "") for k in keys}


def save_typed(iid: int, keys: tuple[str, ...], choices: AttentionChoices | None = None,
               context_options: list[str] | None = None, values: dict[str, str] | None = None,
               restore: bool = False) -> None:
    """A widget callback: store what was typed (or ticked) as a draft, merged into the latest answers in
    the store's transaction (so it never undoes another field saved a moment before). On a restore (the
    draft keeper sending text a reload cut off), the widgets show it again."""
    values = values if values is not None else typed_now(keys)
    changes = typed_changes(iid, values, choices, context_options or [])
    if changes:
        store.save_interview_stage(pid, iid, "draft", changes)
    if restore:
        for key, text in values.items():
            st.session_state[key] = text


def keep_typed(iid: int, stage_key: str, stored: dict[str, str], choices: AttentionChoices | None = None,
               context_options: list[str] | None = None) -> None:
    """The draft keeper for this stage's text fields ({widget key: what the store holds})."""
    draft_keeper.keep_typed(
        f"interview-{iid}", stored,
        web.guarded("saving what you typed", lambda values, restore: save_typed(
            iid, tuple(values), choices, context_options, values=values, restore=restore)),
        key=f"keeper_{iid}_{stage_key}")


def pick_key(iid: int, text: str) -> str:
    return f"pick_{iid}_{zlib.crc32(text.encode())}"


def suggestions_for(question_id: str, question: str, answers: GuidedAnswers) -> AttentionChoices:
    """The attention stage's suggestions: the library, the participant's own words, and the confirmed,
    unhidden cards others wrote for the same question (never the participant's own)."""
    cards = store.cards(did, question_id=question_id)
    others = tuple((int(c.id), c.title, tuple(c.policies)) for c in cards.itertuples() if c.author_id != pid)
    with st.spinner("Finding suggestions that fit what you wrote…"):
        found = web.suggestions(question, answers.response, answers.story, others)
    texts = {s.text for s in found.suggestions}
    if not answers.policies:
        return found
    return AttentionChoices(found.suggestions, frozenset(p for p in answers.policies if p in texts),
                            tuple(p for p in answers.policies if p not in texts), found.unavailable)


def interview_step() -> None:
    interview = flow.interview
    if interview is None:  # a question chosen before choosing started its interview in the same step
        store.choose_question(pid, flow.question_id, mode="llm" if llm_config() else "guided")
        return rerun()
    iid = int(interview["id"])
    question = flow.question
    st.info(_plain(question["prompt"]))
    if interview["mode"] == "llm":
        return llm_interview(iid, question["prompt"])
    answers, submitted = interview_state(iid)
    current = st.session_state.get(f"stage_{iid}") or next((s for s in STAGE_KEYS if s not in submitted), "review")
    if current in ("response", "story"):
        # `workbench serve` loads the suggestion model at start; a server started otherwise loads it
        # now, in the background, while the participant writes (once per process).
        drafting.warm_up()
    index = STAGE_KEYS.index(current)
    st.caption(" → ".join(f"**{s.title}**" if s.key == current else s.title for s in STAGES))
    stage = STAGES[index]
    st.subheader(stage.title)
    st.write(stage.prompt)
    st.caption(stage.hint)
    key = partial(widget_key, iid=iid)

    def buttons(choices: AttentionChoices | None = None, options: list[str] | None = None) -> None:
        """Back and Continue side by side. Continue stores the stage's answers in its callback (one page
        run per click), or says what is missing."""
        refusal()
        back, forward, _ = st.columns([1, 1, 4])
        if index > 0:
            back.button("Back", key=f"back_{current}", width="stretch",
                        on_click=st.session_state.__setitem__, args=(f"stage_{iid}", STAGE_KEYS[index - 1]))
        forward.button("Continue", type="primary", key=f"next_{current}", width="stretch",
                       **submit_on_click(submit_stage, iid, current, choices, options))

    saving = web.guarded("saving what you typed", save_typed)
    if current in ("response", "story"):
        st.text_area(f"Your words (up to {FREE_TEXT_MAX} characters)", value=getattr(answers, current),
                     max_chars=FREE_TEXT_MAX, key=key(current), placeholder=stage.placeholder, height=160,
                     on_change=saving, args=(iid, (key(current),)))
        keep_typed(iid, current, {key(current): getattr(answers, current)})
        buttons()
    elif current == "attention":
        attention_stage(iid, question, answers, buttons)
    elif current == "title":
        # Drafted from the lines the participant chose (the library's names and gists for their themes).
        st.text_input(f"Name (up to {TITLE_MAX} characters)",
                      value=answers.title or draft_title(answers.policies, answers.response),
                      max_chars=TITLE_MAX, key=key("title"), on_change=saving, args=(iid, (key("title"),)))
        st.text_area(f"What it is about, in a sentence or two (up to {DESCRIPTION_MAX} characters)",
                     value=answers.description or draft_description(answers.policies, answers.response),
                     max_chars=DESCRIPTION_MAX, key=key("description"), on_change=saving,
                     args=(iid, (key("description"),)))
        keep_typed(iid, current, {key("title"): answers.title, key("description"): answers.description})
        buttons()
    elif current == "contexts":
        options = list(store.contexts(did, question_id=flow.question_id)["name"])
        st.multiselect("Situations", options, default=[c for c in answers.contexts if c in options],
                       key=key("contexts"))
        extra_now = next((c for c in answers.contexts if c not in options), "")
        st.text_input("Or suggest another situation (a facilitator will review it)", max_chars=120,
                      value=extra_now, key=key("extra"), on_change=saving,
                      args=(iid, (key("extra"),), None, options))
        keep_typed(iid, current, {key("extra"): extra_now}, context_options=options)
        buttons(options=options)
    else:
        review(iid, question, answers)


def submit_stage(iid: int, stage: str, choices: AttentionChoices | None, options: list[str] | None) -> None:
    """Continue's callback: the stage's answers as its fields hold them now (read as a draft is,
    `typed_changes`) and the stage done, in one store call (a repeat changes nothing); the next run shows
    the next stage. Refused with what is missing, nothing written."""
    changes = typed_changes(iid, typed_now(tuple(widget_key(n, iid) for n in TEXT_FIELDS[stage])), choices,
                            options or [])
    missing = stage_missing(stage, changes)
    if missing:
        raise InputError(missing)
    store.save_interview_stage(pid, iid, stage, changes)
    st.session_state.pop(f"stage_{iid}", None)


def stage_missing(stage: str, changes: dict) -> str | None:
    """What a stage still needs before Continue, or None."""
    if stage in ("response", "story") and not changes.get(stage):
        return "Please write a few words before you continue."
    if stage == "title" and not (changes.get("title") and changes.get("description")):
        return "Please give both a name and a short description."
    if stage == "attention" and len(changes.get("policies", ())) < 2:
        return "Please tick or write at least two lines: what you paid attention to."
    if stage == "contexts" and not changes.get("contexts"):
        return "Please pick at least one situation, or suggest one."
    return None


def attention_stage(iid: int, question, answers: GuidedAnswers, buttons) -> None:
    """Suggested lines to tick (each saying where it comes from and why), and the participant's own."""
    asked = question_text(question["title"], question["prompt"])
    choices = suggestions_for(flow.question_id, asked, answers)
    own_key = widget_key("own_lines", iid)
    saving = web.guarded("saving your choice", save_typed)
    if choices.unavailable:
        st.info(choices.unavailable)
    if choices.note:
        st.info(choices.note)
    if choices.suggestions:
        st.markdown("**Suggestions** — tick each line that is true for you.")

    def rewrite(text: str) -> None:
        """Untick a suggestion and put it among the participant's own lines, to edit in their words."""
        st.session_state[pick_key(iid, text)] = False
        own = st.session_state.get(own_key) or ""
        st.session_state[own_key] = f"{own.rstrip()}\n{text}".strip()
        save_typed(iid, (own_key,), choices)

    for i, suggestion in enumerate(choices.suggestions):
        line, edit = st.columns([8, 1], vertical_alignment="center")
        line.checkbox(_plain(suggestion.text), value=suggestion.text in choices.ticked,
                      key=pick_key(iid, suggestion.text), on_change=saving, args=(iid, (own_key,), choices))
        line.caption(suggestion.reason)
        edit.button("Edit", key=f"edit_{iid}_{i}", help="Rewrite this line in your own words",
                    on_click=web.guarded("moving a line to edit", rewrite), args=(suggestion.text,))
    own_text = st.text_area(
        f"Your own lines, one per line (each up to {POLICY_MAX} characters)", value="\n".join(choices.own_lines),
        key=own_key, placeholder=STAGES[STAGE_KEYS.index("attention")].placeholder, height=140,
        on_change=saving, args=(iid, (own_key,), choices))
    keep_typed(iid, "attention", {own_key: "\n".join(choices.own_lines)}, choices)
    story = f"{answers.response}\n{answers.story}"
    for i, line in enumerate(policies_from_text(own_text)):
        for issue in check_policy(line, f"policies[{i}]", story=story, question=asked):
            (st.error if issue.severity == "error" else st.warning)(f"Your line {i + 1}: {issue.message}")
    buttons(choices)


def field_label(field: str) -> str:
    """'policies[2]' → 'Line 3', as the participant counts lines; other fields by their label."""
    if field.startswith("policies["):
        return f"Line {int(field[9:-1]) + 1}"
    return {"title": "Name", "description": "Description", "policies": "Lines"}.get(field, field)


def review(iid: int, question, answers: GuidedAnswers) -> None:
    key = partial(widget_key, iid=iid)
    saving = web.guarded("saving what you typed", save_typed)
    title = st.text_input(f"Name (up to {TITLE_MAX} characters)", value=answers.title, max_chars=TITLE_MAX,
                          key=key("rev_title"), on_change=saving, args=(iid, (key("rev_title"),)))
    description = st.text_area(f"Description (up to {DESCRIPTION_MAX} characters)", value=answers.description,
                               max_chars=DESCRIPTION_MAX, key=key("rev_description"), on_change=saving,
                               args=(iid, (key("rev_description"),)))
    policies_text = st.text_area(f"What you pay attention to, one per line (each up to {POLICY_MAX} characters)",
                                 value="\n".join(answers.policies), key=key("rev_policies"), height=200,
                                 on_change=saving, args=(iid, (key("rev_policies"),)))
    keep_typed(iid, "review", {key("rev_title"): answers.title, key("rev_description"): answers.description,
                               key("rev_policies"): "\n".join(answers.policies)})
    st.caption("Where it applies: " + "; ".join(map(_plain, answers.contexts)))
    policies = policies_from_text(policies_text)
    # The story-aware checks too: a line that copies the participant's story word for word is flagged.
    check = check_card({"title": title, "description": description, "policies": policies},
                       story=f"{answers.response}\n{answers.story}",
                       question=question_text(question["title"], question["prompt"]))
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
    """The transition story, from what differs between the two cards (workbench.stories): the LLM's when
    one is configured and answers, else one of the offline forms. Kept in the session so a rerun does
    not ask the model again."""
    key = f"story_{pid}_{index}"
    if key not in st.session_state:
        st.session_state[key] = wiser_story(a, b, context, llm=llm_config()).text
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
    story = story_of(item.index, a, b, entry["context"])
    st.text(story)
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
        refusal()
        st.form_submit_button("Submit", type="primary",
                              **submit_on_click(answer_wiser, item.index, story[:FREE_TEXT_MAX]))


def answer_wiser(index: int, story: str) -> None:
    answer = st.session_state.get(f"wiser_answer_{index}")
    if answer is None:
        raise InputError("Please choose Yes, No or Not sure.")
    store.answer_wiser(pid, index, answer, st.session_state.get(f"wiser_comment_{index}") or None, story=story)


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
                   **submit_on_click(store.endorse, pid, item.index, vote))


def compare_step() -> None:
    item = P.next_item(store, flow, "compare")
    if item is None:
        return finish("compare")
    st.write(f"Pair {item.number} of {item.total}: which of these two should guide the answer to this question?")
    st.info(_plain(flow.question["prompt"]))
    for column, value, winner in zip(st.columns(2), item.values, ("a", "b"), strict=True):
        with column:
            show_value(value)
            st.button("This one", key=f"cmp_{item.index}_{winner}", width="stretch",
                      **submit_on_click(store.compare, pid, item.index, winner))
    st.button("I can't choose", key=f"cmp_{item.index}_tie", **submit_on_click(store.compare, pid, item.index, "tie"))


# -- where you sit, and the closing survey ----------------------------------------------------------

SURVEY_LABELS = {"yes": "Yes", "not_sure": "Not sure", "no": "No"}


def survey_step() -> None:
    closing = delib["settings"].get("closing") or {}
    if not closing.get("open", True):
        st.info("Thank you: your answers are saved. The organisers will open the results soon; come back with"
                " the same link to see where your value sits and to answer a few last questions.")
        return
    st.subheader("Where your value sits")
    from workbench import analyses  # here: only this step draws the graph

    place = analyses.participant_position(store, pid, flow.card_id, flow.question_id)
    if place is None:
        st.write("Your card has not been grouped with other people's cards yet, so it has no place in the graph"
                 " yet. You can still answer the questions below.")
    else:
        for sentence in place.sentences():
            st.markdown(_plain(sentence))
    questions = closing.get("survey", [])
    if not questions:
        return finish_survey({})
    st.subheader("A few last questions")
    with st.form("closing_survey"):
        answers = {q["key"]: st.radio(q["text"], list(SURVEY_LABELS), index=None, horizontal=True,
                                      format_func=SURVEY_LABELS.get, key=f"survey_{q['key']}") for q in questions}
        st.caption("Answer any you like; leave the rest.")
        if st.form_submit_button("Send my answers", type="primary"):
            finish_survey({k: v for k, v in answers.items() if v is not None})


def finish_survey(answers: dict) -> None:
    store.answer_survey(pid, answers)
    rerun()


SAME_ANSWERS = (("same", "Same value"), ("different", "Different values"), ("not_sure", "Not sure"))


def same_value_step() -> None:
    """Optional: "Are these two the same value?" about two cards the clustering is least sure of."""
    item = P.next_item(store, flow, "same_value")
    if item is None:
        return finish("same_value")
    st.write(f"Pair {item.number} of {item.total} (optional): two participants wrote these values cards. "
             "Are they the same value?")
    st.caption("The same value means they pay attention to the same things, at the same level of detail, even if "
               "the words differ. Your answers help group everyone's cards into shared values. You can skip this.")
    for column, card, heading in zip(st.columns(2), item.values, ("First card", "Second card"), strict=True):
        with column:
            show_value(card, heading=heading)
    for col, (answer, label) in zip(st.columns(3), SAME_ANSWERS, strict=True):
        col.button(label, key=f"same_{item.index}_{answer}", width="stretch",
                   **submit_on_click(store.answer_same_value, pid, item.index, answer))
    if st.button("Skip these questions", key=f"same_skip_{item.index}"):
        finish("same_value")


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
    "same_value": same_value_step, "survey": survey_step, "done": done_step,
}[flow.step]()
refusal()  # a refusal the step had no place for (e.g. it moved on meanwhile in another tab)
