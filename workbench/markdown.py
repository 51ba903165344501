"""Text that is shown through Markdown exactly as it was typed.

Streamlit renders most of what a page shows as Markdown (titles, info boxes, captions, widget labels and
radio options), and so does whatever shows a datasheet (README.md). Fields that facilitators or imported
files fill in (a deliberation's title and licence, a question's title and prompt, context names) and
what participants write must not become links, images (a browser fetches an image's URL as soon as it
is shown), emphasis, math, emoji or colour there. `literal` escapes every ASCII punctuation character,
which CommonMark and Streamlit's Markdown extensions (`:red[...]`, `$...$`) then read as plain text. That
is not enough for the rules that work on the text after escapes are resolved: GitHub's bare-URL and
e-mail autolinks (`http://...`, `www.`, `name@host.org`) and emoji shortcodes (`:smile:`). So an
invisible WORD JOINER (U+2060) follows every `:` and `@` and splits `www.`: the text reads the same and
none of those rules match it. This module must never render anything itself.
"""

from __future__ import annotations

import re
import string

#: Invisible, no line break: it keeps the rules above from seeing "http://", "www.", "a@b.c" or ":smile:".
WORD_JOINER = "\u2060"
_PUNCTUATION = re.compile("([" + re.escape(string.punctuation) + "])")
_AUTOLINK_STARTS = re.compile(r"([:@])|(?i:(www)(\.))")


def literal(text: object) -> str:
    """`text` as Markdown that shows it literally: no link, image, emphasis, heading, list, HTML, math,
    emoji or colour (see the module's docstring for the invisible word joiners it adds)."""
    defused = _AUTOLINK_STARTS.sub(lambda m: m.group(1) + WORD_JOINER if m.group(1)
                                   else m.group(2) + WORD_JOINER + m.group(3), str(text))
    return _PUNCTUATION.sub(r"\\\1", defused)
