"""Send one signed body: WebSocket post first, HTTP /exchange as the fallback.

Never re-sends: whatever happens, the body leaves at most once on one path. An answer that may
or may not have reached the exchange (timeout, lost connection, HTTP failure) is `PostUnknown`;
only a post that certainly never left is `NotSent`.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import trio
from attrs import frozen

from hip3.hyperliquid.events import ActionResult
from hip3.hyperliquid.ws import PostFailed, PostNotSent
from hip3.trading.reports import NotSent, PostUnknown

log = logging.getLogger(__name__)


class ActionPoster(Protocol):
    """The WebSocket session as the executor sees it."""

    @property
    def is_connected(self) -> bool: ...

    async def post_action(self, payload: dict[str, Any]) -> ActionResult: ...


class ExchangePoster(Protocol):
    """The HTTP client as the executor sees it (POST /exchange)."""

    async def post_exchange(self, body: dict[str, Any]) -> ActionResult: ...


SendOutcome = ActionResult | PostUnknown | NotSent


@frozen
class Sent:
    outcome: SendOutcome
    via: str  # "ws", "http" or "none"


async def send_action(
    body: dict[str, Any],
    ws: ActionPoster | None,
    http: ExchangePoster | None,
    *,
    http_fallback: bool,
    timeout: float,
) -> Sent:
    if ws is not None and ws.is_connected:
        try:
            with trio.move_on_after(timeout):
                return Sent(await ws.post_action(body), "ws")
            return Sent(PostUnknown(f"no answer within {timeout:g} s"), "ws")
        except PostNotSent as exc:
            # Not connected after all, or no post slot in time: the body did not leave.
            log.info("websocket post not sent (%s)", exc)
        except PostFailed as exc:
            return Sent(PostUnknown(f"{type(exc).__name__}: {exc}"), "ws")
        except Exception as exc:  # anything else: we can't tell whether it left
            log.warning("websocket post failed unexpectedly: %r", exc)
            return Sent(PostUnknown(f"websocket post failed: {type(exc).__name__}: {exc}"), "ws")
    if not http_fallback or http is None:
        return Sent(NotSent("websocket not connected and no HTTP fallback"), "none")
    try:
        with trio.move_on_after(timeout):
            return Sent(await http.post_exchange(body), "http")
        return Sent(PostUnknown(f"HTTP: no answer within {timeout:g} s"), "http")
    except Exception as exc:  # InfoError or transport: the request may have been processed
        return Sent(PostUnknown(f"HTTP post failed: {type(exc).__name__}: {exc}"), "http")
