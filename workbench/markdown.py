"""Text that is shown through Markdown exactly as it was typed.

Streamlit renders most of what a page shows as Markdown (titles, info boxes, captions, widget labels and
radio options), and so does whatever shows a datasheet (README.md). Fields that facilitators or imported
files fill in (a deliberation's title and licence, a question's title and prompt, context names) and
what participants write must not become links, images (a browser fetches an image's URL as soon as it
is shown), emphasis, math or colour there. `literal` escapes every ASCII punctuation character, which
CommonMark and Streamlit's extensions (`:red[...]`, `:material/...:`, `$...$`) all treat as plain text
once escaped. This module must never render anything itself.
"""

from __future__ import annotations

import re
import string

_PUNCTUATION = re.compile("([" + re.escape(string.punctuation) + "])")


def literal(text: object) -> str:
    """`text` as Markdown that shows it literally: no link, image, emphasis, heading, list, HTML or math."""
    return _PUNCTUATION.sub(r"\\\1", str(text))
