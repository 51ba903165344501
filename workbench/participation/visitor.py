"""Who the visitor is: an invite link's participant, or someone joining by an open sign-up link.

`resolve_visitor` looks the link up (refused links are slowed down by `InviteGuessPolicy`, so
guessing tokens gets slower the more it is tried) and never shows why a link was refused. It decides
nothing about the flow and renders nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..errors import NotFound
from ..store import Store, utcnow

log = logging.getLogger("workbench.participation")

INVALID_LINK = ("This link is not valid. It may have been mistyped or withdrawn. "
                "Please use the link you were sent, or ask the organisers for a new one.")


@dataclass(frozen=True)
class Visitor:
    """Who is looking: a `participant`; someone `joining` by the open sign-up link (nothing is stored
    until they agree to take part: `store.sign_up`); `denied` with a message; or `anonymous`."""

    kind: str  # participant | joining | denied | anonymous
    participant_id: int | None = None
    deliberation_id: str | None = None
    message: str = ""


@dataclass(frozen=True)
class InviteGuessPolicy:
    """How refused invite links are slowed down, so guessing tokens gets slower the more it is tried.

    Every refused link pauses `failure_pause` seconds before the answer. Past `free_per_client`
    refusals for one browser session, or `free_overall` refusals across all sessions, within `window`,
    the pause doubles with each further refusal, up to `max_pause`. A valid link is never paused, so a
    guesser slows down the guesser and people who mistype, not those whose link works. (Tokens have
    128 bits: the slow-down and its log warnings are for noticing, the token length is the defence.)
    """

    window: timedelta = timedelta(minutes=1)
    failure_pause: float = 0.5
    free_per_client: int = 3
    free_overall: int = 30
    max_pause: float = 10.0

    def pause_for(self, by_client: int, overall: int) -> float:
        """Seconds to pause after a refusal, given the refusals in the window (this one included)."""
        excess = max(by_client - self.free_per_client, overall - self.free_overall, 0)
        return min(self.failure_pause * 2.0 ** min(excess, 32), self.max_pause)


INVITE_POLICY = InviteGuessPolicy()


def resolve_visitor(store: Store, query: Mapping[str, str], *, client: str | None = None,
                    policy: InviteGuessPolicy = INVITE_POLICY, clock: Callable[[], datetime] = utcnow,
                    sleep: Callable[[float], None] = time.sleep) -> Visitor:
    """Who is looking, from the page's query parameters (`invite=TOKEN` or `join=DELIBERATION`).

    `client` names the browser session (e.g. Streamlit's session id) so refusals can be counted per
    session as well as overall; `clock` and `sleep` are there for tests.
    """
    token = query.get("invite")
    if token:
        found = store.participant_by_token(str(token))
        if found is None:
            now = clock()
            store.record_invite_refusal(client, at=now)
            overall, by_client = store.invite_refusals(now - policy.window, client=client)
            pause = policy.pause_for(by_client, overall)
            # Never log the token (nor its hash): a log reader could use it.
            log.warning("invite link refused (unknown or revoked token); %d refusals in the last %d s overall, "
                        "%d from this browser session; pausing %.1f s", overall, policy.window.total_seconds(),
                        by_client, pause)
            sleep(pause)
            return Visitor("denied", message=INVALID_LINK)
        return Visitor("participant", participant_id=found["id"])
    join = query.get("join")
    if join:
        # Opening the link stores nothing: a participant is made only when the visitor agrees to take
        # part (store.sign_up), so a script opening the link over and over leaves no one behind.
        try:
            refusal = store.signup_refusal(str(join))
        except NotFound:
            return Visitor("denied", message=INVALID_LINK)
        if refusal is not None:
            return Visitor("denied", message=refusal)
        return Visitor("joining", deliberation_id=str(join))
    return Visitor("anonymous")
