"""The optional LLM interviewer: our own prompts, sent to any OpenAI-compatible chat-completions endpoint.

It walks a participant through the study's interview (a story → one source of meaning → what they
attend to → a draft card checked item by item → submit), drafts the card through structured output
(a JSON schema response format, or a `submit_values_card` tool call, whichever the server returns),
writes wiser-than stories, and judges whether two cards are the same value (`same_value`, structured
output again: a verdict and a reason; the dedup asks it about the merges it is least sure of). Every failure — timeout, connection error, HTTP error, malformed or
off-schema JSON, a refusal — raises LlmUnavailable so the page can drop the participant into the
guided flow (workbench.interview) with everything they wrote, and so the dedup can fall back to its
own decision. This module must never log or put into
an error message the API key, never import Streamlit or touch the store, and never talk to anything
but the configured endpoint.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import jsonschema

from workbench.cardcheck import (
    DESCRIPTION_MAX_CHARS,
    MAX_POLICIES,
    MIN_POLICIES,
    POLICY_MAX_CHARS,
    TITLE_MAX_CHARS,
    ValuesCard,
    lenient_values_card,
)
from workbench.errors import InputError, Unavailable

log = logging.getLogger(__name__)

ENV_BASE_URL = "WORKBENCH_LLM_BASE_URL"
ENV_MODEL = "WORKBENCH_LLM_MODEL"
ENV_API_KEY = "WORKBENCH_LLM_API_KEY"
ENV_TIMEOUT = "WORKBENCH_LLM_TIMEOUT"
DEFAULT_TIMEOUT = 30.0

CARD_TOOL_NAME = "submit_values_card"
CARD_READY_MARKER = "[CARD READY]"
ROLES = ("user", "assistant")
# Roles a stored transcript may hold that are ours, not the conversation's (see interview_messages.role).
IGNORED_ROLES = ("system", "error")


class LlmConfigError(InputError):
    """The WORKBENCH_LLM_* environment variables are set but do not make a usable configuration."""


class TranscriptError(InputError):
    """A transcript entry is not a {"role": "user"|"assistant", "content": str} message."""


class LlmUnavailable(Unavailable):
    """The LLM could not give a usable answer; the page should fall back to the guided interview.

    `kind` is one of: timeout, connection, http_status, malformed, schema, refusal, empty.
    """

    def __init__(self, reason: str, kind: str = "error") -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


@dataclass(frozen=True)
class LlmConfig:
    base_url: str
    model: str
    # repr=False: the key must never appear in logs, tracebacks or page debug output.
    api_key: str | None = field(default=None, repr=False)
    timeout: float = DEFAULT_TIMEOUT

    def __post_init__(self) -> None:
        if not re.match(r"^https?://", self.base_url):
            raise LlmConfigError(
                f"{ENV_BASE_URL} must start with http:// or https:// (e.g. http://localhost:11434/v1), "
                f"got {self.base_url!r}"
            )
        if not self.model.strip():
            raise LlmConfigError(f"{ENV_MODEL} must name the model to use when {ENV_BASE_URL} is set")
        if not self.timeout > 0:
            raise LlmConfigError(f"{ENV_TIMEOUT} must be a positive number of seconds, got {self.timeout!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LlmConfig | None:
        """The configuration from WORKBENCH_LLM_* variables, or None when no base URL is set."""
        env = os.environ if environ is None else environ
        base_url = env.get(ENV_BASE_URL, "").strip()
        if not base_url:
            return None
        raw_timeout = env.get(ENV_TIMEOUT, "").strip()
        try:
            timeout = float(raw_timeout) if raw_timeout else DEFAULT_TIMEOUT
        except ValueError:
            raise LlmConfigError(f"{ENV_TIMEOUT} must be a number of seconds, got {raw_timeout!r}") from None
        return cls(
            base_url=base_url.rstrip("/"),
            model=env.get(ENV_MODEL, "").strip(),
            api_key=env.get(ENV_API_KEY, "").strip() or None,
            timeout=timeout,
        )

    @property
    def completions_url(self) -> str:
        return f"{self.base_url.rstrip('/')}/chat/completions"


@dataclass(frozen=True)
class InterviewTurn:
    """The interviewer's next message; `card_ready` when it thinks there is enough for a draft card."""

    message: str
    card_ready: bool


# --- the card schema ------------------------------------------------------------------------------

# What we validate against locally: the workbench's hard limits (workbench.cardcheck).
CARD_JSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["title", "description", "policies"],
    "properties": {
        "title": {"type": "string", "minLength": 1, "maxLength": TITLE_MAX_CHARS, "pattern": r"\S"},
        "description": {
            "type": "string",
            "minLength": 1,
            "maxLength": DESCRIPTION_MAX_CHARS,
            "pattern": r"\S",
        },
        "policies": {
            "type": "array",
            "minItems": MIN_POLICIES,
            "maxItems": MAX_POLICIES,
            "items": {"type": "string", "minLength": 1, "maxLength": POLICY_MAX_CHARS, "pattern": r"\S"},
        },
    },
}
# What we send: strict structured output on several servers rejects length keywords, so the limits
# travel as descriptions and are enforced by CARD_JSON_SCHEMA on the way back.
CARD_WIRE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["title", "description", "policies"],
    "properties": {
        "title": {"type": "string", "description": f"3-6 words, at most {TITLE_MAX_CHARS} characters"},
        "description": {
            "type": "string",
            "description": f"1-3 sentences on what this value is about, at most {DESCRIPTION_MAX_CHARS} characters",
        },
        "policies": {
            "type": "array",
            "description": f"3-7 lines (at least {MIN_POLICIES}, at most {MAX_POLICIES}), each at most "
            f"{POLICY_MAX_CHARS} characters, each starting with a plural noun in capitals",
            "items": {"type": "string"},
        },
    },
}
_CARD_VALIDATOR = jsonschema.Draft202012Validator(CARD_JSON_SCHEMA)


# --- prompts --------------------------------------------------------------------------------------

INTERVIEW_SYSTEM_PROMPT = """\
You are a warm, curious interviewer. You are helping one person put into words something they value, \
for a study about how an AI assistant should respond to a hard question.

The question they were shown:
{question}

How the conversation goes, one step at a time:
1. Ask how they think an assistant should respond, and why. Then invite a concrete story or a hard \
choice from their own life that this question touches.
2. Zoom in on one source of meaning in that story: one thing that made a choice feel right or wise to them.
3. Gather what they paid attention to in that moment: the particular things they noticed or looked for \
when they were choosing well. Ask for small, concrete examples.
4. When you know three or more such things, tell them you could draft a short card for them to check.

Rules:
- Ask exactly one question per message. Keep each message to at most three short sentences.
- Be warm and plain. No jargon: never say "attentional policy", "values card", "moral graph" or "MGE".
- Do not lead: never suggest what they value or put words in their mouth. Reflect their own words back.
- Do not give advice or your own opinion on the question.
- If they seem upset, be kind and remind them they can skip anything.
- When you have gathered enough for a draft card, end your message with the line {marker} on its own.
"""

OPENING_NUDGE = "(The participant has just arrived. Greet them in one sentence and ask your first question.)"

CARD_SYSTEM_PROMPT = """\
You turn an interview into a short card that says what the participant pays attention to when choosing \
well. Use the participant's own words wherever you can; add nothing they did not say.

The card has:
- title: 3-6 words, specific enough not to be confused with other values.
- description: 1-3 sentences on what this value is about.
- policies: 3-7 short lines, each naming something the participant pays attention to.

Each policy line:
- begins with a plural noun phrase in capitals for the thing attended to, e.g. "MOMENTS where ...", \
"OPPORTUNITIES for ...", "FEELINGS of ...";
- is concrete and general: names no particular person from the story ("my sister", "the girl", names); \
avoids vague words such as "meaningful", "deep", "really", "very";
- says what to attend to, positively: not a goal, an outcome, or a rule about what to avoid;
- is attended to because it matters in itself, not as a means to something else, and not because \
others expect it or approve of it;
- is not already covered by another line.

Submit the card with the {tool} tool, or reply with only the JSON object matching the schema.
The question the participant was shown: {question}
"""

DRAFT_REQUEST = "Please draft my card from our conversation now."

STORY_SYSTEM_PROMPT = """\
You write short, true-to-life stories for a study about wisdom. Given two values and a situation, write \
3 to 5 plain sentences, in the first person, about someone who used to choose by the first value and \
came to choose by the second in that situation, and why it felt wiser to them. Keep what was good about \
the first value. No jargon, no real people's names, no advice to the reader. Reply with the story only.
"""


SAME_VALUE_SYSTEM_PROMPT = """\
You compare two values cards written by different people in a study about how an AI assistant should \
respond to hard questions. Each card names a value and lists what a person pays attention to when \
choosing well (its policies).

Decide whether the two cards are the same value: a person guided by one would attend to essentially \
the same things as a person guided by the other, at the same level of detail. Titles, wording, \
pronouns and examples may differ; that does not make them different. They are different when they \
attend to different things, or when one is a much broader or much narrower value than the other \
(for example one card covers only one of several things the other attends to).

Answer "same", "different", or "not_sure" (only when the cards are too vague to tell), with one short \
sentence saying why. Submit your verdict with the {tool} tool, or reply with only the JSON object \
matching the schema.
"""

VERDICT_TOOL_NAME = "submit_same_value_verdict"
VERDICT_JSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["verdict", "reason"],
    "properties": {
        "verdict": {"type": "string", "enum": ["same", "different", "not_sure"]},
        "reason": {"type": "string", "description": "one short sentence"},
    },
}
_VERDICT_VALIDATOR = jsonschema.Draft202012Validator(VERDICT_JSON_SCHEMA)


@dataclass(frozen=True)
class SameValueVerdict:
    """Whether two cards are the same value ("same" / "different" / "not_sure") and why."""

    answer: str
    reason: str


# --- the client -----------------------------------------------------------------------------------


class LlmInterviewer:
    """Talks to one OpenAI-compatible endpoint with the prompts above; one HTTP request per method call."""

    def __init__(self, config: LlmConfig, question: str = "") -> None:
        self.config = config
        self.question = question.strip()

    def __repr__(self) -> str:
        return f"LlmInterviewer(base_url={self.config.base_url!r}, model={self.config.model!r})"

    # public API

    def reply(self, transcript: Sequence[Mapping[str, Any]]) -> InterviewTurn:
        """The interviewer's next message for this transcript (user/assistant messages, oldest first)."""
        messages = _checked_transcript(transcript)
        system = INTERVIEW_SYSTEM_PROMPT.format(
            question=self.question or "(not given)", marker=CARD_READY_MARKER
        )
        if not messages:
            messages = [{"role": "user", "content": OPENING_NUDGE}]
        choice = self._complete([{"role": "system", "content": system}, *messages], purpose="reply")
        content = choice["message"].get("content")
        if not isinstance(content, str) or not content.strip():
            raise self._fail("empty", "The language model sent an empty reply.")
        ready = CARD_READY_MARKER.lower() in content.lower()
        message = re.sub(re.escape(CARD_READY_MARKER), "", content, flags=re.IGNORECASE).strip()
        if not message:
            raise self._fail("empty", "The language model said a card is ready but sent no message.")
        return InterviewTurn(message=message, card_ready=ready)

    def propose_card(self, transcript: Sequence[Mapping[str, Any]]) -> ValuesCard:
        """A draft card from the conversation, via a JSON-schema reply or a submit_values_card tool call."""
        messages = _checked_transcript(transcript)
        system = CARD_SYSTEM_PROMPT.format(tool=CARD_TOOL_NAME, question=self.question or "(not given)")
        payload_extra = {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "values_card", "strict": True, "schema": CARD_WIRE_SCHEMA},
            },
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": CARD_TOOL_NAME,
                        "description": "Submit the drafted card for the participant to check.",
                        "parameters": CARD_WIRE_SCHEMA,
                    },
                }
            ],
        }
        choice = self._complete(
            [{"role": "system", "content": system}, *messages, {"role": "user", "content": DRAFT_REQUEST}],
            purpose="propose_card",
            extra=payload_extra,
        )
        return self._card_from_message(choice["message"])

    def transition_story(
        self, from_card: Any, to_card: Any, context: str, *, focus: Sequence[str] = ()
    ) -> str:
        """A short story of someone moving from value A to value B in this context.

        `focus`: what the second value attends to that the first does not (workbench.stories), so the
        story turns on that difference.
        """
        a, b = lenient_values_card(from_card), lenient_values_card(to_card)
        prompt = (
            f"Situation: {context.strip() or '(any)'}\n\n"
            f"First value: {_card_text(a)}\n\nSecond value: {_card_text(b)}"
        )
        if focus:
            prompt += "\n\nWhat the second value notices that the first does not:\n" + "\n".join(
                f"- {line}" for line in focus
            )
        choice = self._complete(
            [{"role": "system", "content": STORY_SYSTEM_PROMPT}, {"role": "user", "content": prompt}],
            purpose="transition_story",
        )
        content = choice["message"].get("content")
        if not isinstance(content, str) or not content.strip():
            raise self._fail("empty", "The language model sent an empty story.")
        return content.strip()

    def same_value(self, card_a: Any, card_b: Any) -> SameValueVerdict:
        """The model's verdict on whether two cards are the same value (structured output)."""
        a, b = lenient_values_card(card_a), lenient_values_card(card_b)
        schema = {"type": "json_schema",
                  "json_schema": {"name": "same_value_verdict", "strict": True, "schema": VERDICT_JSON_SCHEMA}}
        tool = {"type": "function", "function": {"name": VERDICT_TOOL_NAME, "parameters": VERDICT_JSON_SCHEMA,
                                                 "description": "Submit whether the two cards are the same value."}}
        choice = self._complete(
            [{"role": "system", "content": SAME_VALUE_SYSTEM_PROMPT.format(tool=VERDICT_TOOL_NAME)},
             {"role": "user", "content": f"Card A: {_card_text(a)}\n\nCard B: {_card_text(b)}"}],
            purpose="same_value", extra={"response_format": schema, "tools": [tool]})
        raw = self._structured(choice["message"], VERDICT_TOOL_NAME, "verdict")
        problems = sorted(_VERDICT_VALIDATOR.iter_errors(raw), key=lambda e: list(e.path))
        if problems:
            where = "/".join(str(p) for p in problems[0].path) or "verdict"
            raise self._fail("schema", f"The language model's verdict does not fit at {where}: {problems[0].message}")
        return SameValueVerdict(raw["verdict"], raw["reason"].strip())

    # internals

    def _complete(
        self, messages: list[dict[str, str]], purpose: str, extra: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """POST one chat completion; the first choice, or LlmUnavailable."""
        cfg = self.config
        payload: dict[str, Any] = {"model": cfg.model, "messages": messages, **(extra or {})}
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if cfg.api_key:
            headers["Authorization"] = f"Bearer {cfg.api_key}"
        try:
            with httpx.Client(timeout=cfg.timeout, follow_redirects=False) as client:
                response = client.post(cfg.completions_url, json=payload, headers=headers)
        except httpx.TimeoutException as exc:
            raise self._fail(
                "timeout", f"The language model at {cfg.base_url} did not answer within {cfg.timeout:g} s."
            ) from exc
        except httpx.HTTPError as exc:
            raise self._fail(
                "connection", f"Could not reach the language model at {cfg.base_url} ({type(exc).__name__})."
            ) from exc
        if response.status_code >= 400:
            raise self._fail(
                "http_status",
                f"The language model at {cfg.base_url} answered HTTP {response.status_code}"
                f"{_error_detail(response)}.",
            )
        try:
            data = response.json()
        except ValueError:
            raise self._fail(
                "malformed", f"The language model at {cfg.base_url} sent a reply that is not JSON."
            ) from None
        choices = data.get("choices") if isinstance(data, dict) else None
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise self._fail("malformed", "The language model's reply has no choices.")
        choice = choices[0]
        message = choice.get("message")
        if not isinstance(message, dict):
            raise self._fail("malformed", "The language model's reply has no message.")
        if message.get("refusal"):
            raise self._fail("refusal", f"The language model declined: {str(message['refusal'])[:200]}")
        if choice.get("finish_reason") == "content_filter":
            raise self._fail("refusal", "The language model's content filter stopped the reply.")
        log.debug("LLM %s: finish_reason=%s", purpose, choice.get("finish_reason"))
        return choice

    def _structured(self, message: dict[str, Any], tool_name: str, what: str) -> Any:
        """The JSON a reply carries: the named tool call's arguments, else the message content."""
        for call in message.get("tool_calls") or []:
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict) and function.get("name") == tool_name:
                arguments = function.get("arguments")
                return arguments if isinstance(arguments, dict) else self._parse_json(arguments, "tool call")
        content = message.get("content")
        if not isinstance(content, str) or not content.strip():
            raise self._fail("malformed", f"The language model sent neither a {what} nor a {what} tool call.")
        return self._parse_json(content, "reply")

    def _card_from_message(self, message: dict[str, Any]) -> ValuesCard:
        raw = self._structured(message, CARD_TOOL_NAME, "card")
        errors = sorted(_CARD_VALIDATOR.iter_errors(raw), key=lambda e: list(e.path))
        if errors:
            where = "/".join(str(p) for p in errors[0].path) or "card"
            raise self._fail(
                "schema",
                f"The language model's card does not fit the card shape at {where}: {errors[0].message}",
            )
        return ValuesCard(
            raw["title"].strip(), raw["description"].strip(), tuple(p.strip() for p in raw["policies"])
        )

    def _parse_json(self, text: Any, where: str) -> Any:
        if not isinstance(text, str):
            raise self._fail("malformed", f"The language model's {where} carries no JSON text.")
        # Some servers wrap structured output in a Markdown code fence.
        fenced = re.fullmatch(r"\s*```(?:json)?\s*(.*?)\s*```\s*", text, flags=re.DOTALL)
        try:
            return json.loads(fenced.group(1) if fenced else text)
        except json.JSONDecodeError as exc:
            raise self._fail(
                "malformed",
                f"The language model's {where} is not valid JSON ({exc.msg} at position {exc.pos}).",
            ) from None

    def _fail(self, kind: str, reason: str) -> LlmUnavailable:
        reason = _redact(reason, self.config.api_key)
        log.warning("LLM interviewer unavailable (%s, model %s): %s", kind, self.config.model, reason)
        return LlmUnavailable(reason, kind=kind)


def _redact(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


def _error_detail(response: httpx.Response) -> str:
    """A short reason from an error body (OpenAI shape {"error": {"message": ...}}), if there is one."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return f": {text[:200]}" if text else ""
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else error
    return f": {str(message)[:200]}" if message else ""


def _checked_transcript(transcript: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    if isinstance(transcript, (str, bytes)) or not isinstance(transcript, Sequence):
        raise TranscriptError(f"transcript must be a list of messages, got {type(transcript).__name__}")
    out = []
    for i, message in enumerate(transcript):
        if not isinstance(message, Mapping) or "role" not in message or "content" not in message:
            raise TranscriptError(f"transcript[{i}] must have 'role' and 'content', got {message!r:.80}")
        role, content = message["role"], message["content"]
        if role in IGNORED_ROLES:
            continue  # our own system prompt replaces any stored one; error notes are not conversation
        if role not in ROLES:
            raise TranscriptError(
                f"transcript[{i}] has role {role!r}; expected one of {ROLES + IGNORED_ROLES}"
            )
        if not isinstance(content, str):
            raise TranscriptError(f"transcript[{i}] content must be text, got {type(content).__name__}")
        out.append({"role": role, "content": content})
    return out


def _card_text(card: ValuesCard) -> str:
    lines = [f"“{card.title}”"]
    if card.description:
        lines.append(card.description)
    lines.extend(f"- {p}" for p in card.policies)
    return "\n".join(lines)
