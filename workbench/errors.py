"""The workbench's errors: one base class, a few kinds, and what to do with everything else.

Every error the workbench raises on purpose is a `WorkbenchError`, and its message is written for
the person who caused it or can fix it: it names the field, the file and row, or the thing that was
not found. The CLI and the pages catch `WorkbenchError` and show the message; they never catch a
bare `ValueError` or `Exception`, because those are bugs, and a bug must not reach a user dressed up
as an input message. An unexpected exception goes through `unexpected()`: its trace is logged on the
server with an error id, and the user sees only a short message with that id to quote.
This module must never import Streamlit, the store or any analysis.
"""

from __future__ import annotations

import logging
import secrets

log = logging.getLogger("workbench")


class WorkbenchError(Exception):
    """Something the workbench refuses or cannot do; the message says what, where and why."""


class InputError(WorkbenchError):
    """Bad input at the boundary (a form, a command-line option, a definition); names the field."""


class FormatError(InputError):
    """A file that is not what it claims to be; names the file, and the row and column where known."""


class NotFound(WorkbenchError):
    """The thing asked for (a deliberation, a value, a run, ...) is not there."""


class NotEnoughData(WorkbenchError):
    """An analysis cannot run on what has been collected so far; says what is missing."""


class Conflict(WorkbenchError):
    """The request clashes with what is already there (a taken name, an existing deliberation, ...)."""


class Unavailable(WorkbenchError):
    """A resource the request needs cannot be used right now (the database is served by another
    process, the LLM endpoint does not answer); says which and what to do."""


def new_error_id() -> str:
    """A short id a user can quote and an operator can find in the log."""
    return secrets.token_hex(4)


def unexpected(exc: BaseException, *, where: str = "") -> str:
    """Log an unexpected exception with its trace and return the message to show the user instead."""
    error_id = new_error_id()
    log.error("unexpected error %s%s", error_id, f" in {where}" if where else "", exc_info=exc)
    return (f"Something went wrong on our side (error id {error_id}). Nothing you entered was lost; "
            "please try again, and quote this id if you contact the organisers.")
