"""Text that is shown through Markdown exactly as it was typed.

Streamlit renders most of what a page shows as Markdown (titles, info boxes, captions, widget labels and
radio options), and so does whatever shows a datasheet (README.md). Fields that facilitators or imported
files fill in (a deliberation's title and licence, a question's title and prompt, context names) and
what participants write must not become links, images (a browser fetches an image's URL as soon as it
is shown), emphasis, headings, lists, HTML, math, emoji or colour there. `literal` backslash-escapes the
characters that start those (everywhere, and the list and heading markers where a line starts), which
CommonMark and Streamlit's extensions (`:red[...]`, `$...$`) then read as plain text; ordinary
punctuation such as "4.0" or "questions?" stays as it is, so a README read raw stays readable. Escapes
are not enough for the rules that work on the text after escapes are resolved: GitHub's bare-URL and
e-mail autolinks (`http://...`, `www.`, `name@host.org`) and emoji shortcodes (`:smile:`). So an
invisible WORD JOINER (U+2060) follows every `:` and `@` and splits `www.`: the text reads the same and
none of those rules match it. This module must never render anything itself.
"""

from __future__ import annotations

import re

#: Invisible, no line break: it keeps the rules above from seeing "http://", "www.", "a@b.c" or ":smile:".
WORD_JOINER = "\u2060"
#: Characters that start Markdown anywhere in a line (links, images, emphasis, code, HTML, entities, math).
_ANYWHERE = re.compile(r"([\\`*_{}\[\]()<>!|~$&#])")
#: What starts a list, a quote, a heading underline or a numbered list at the start of a line.
_LINE_START = re.compile(r"^(\s*)([-+=>]|\d+(?=[.)]))", re.M)
_AUTOLINK_STARTS = re.compile(r"([:@])|(?i:(www)(\.))")


def literal(text: object) -> str:
    """`text` as Markdown that shows it literally: no link, image, emphasis, heading, list, HTML, math,
    emoji or colour (see the module's docstring for the invisible word joiners it adds)."""
    defused = _AUTOLINK_STARTS.sub(lambda m: m.group(1) + WORD_JOINER if m.group(1)
                                   else m.group(2) + WORD_JOINER + m.group(3), str(text))
    escaped = _ANYWHERE.sub(r"\\\1", defused)
    # "1. x" → "1\. x"; "- x" → "\- x" (only at a line's start: "4.0" and "well-known" stay as typed).
    return _LINE_START.sub(_escape_line_start, escaped)


def _escape_line_start(match: re.Match) -> str:
    indent, marker = match.groups()
    return indent + (marker + "\\" if marker[0].isdigit() else "\\" + marker)
