"""Second review: an orderStatus `unknownOid` taken the instant a post was lost is not an outcome."""

from __future__ import annotations

from typing import Any

import pytest

from hip3.core import Side
from hip3.hyperliquid.events import OrderStatusResult
from hip3.hyperliquid.ws import ConnectionLost, PostTimeout
from hip3.trading.reports import PostUnknown
from tests.fakes.trading import TSLA, D, signal
from tests.trading.test_executor import running


@pytest.mark.parametrize("exc", [PostTimeout("no reply"), ConnectionLost("dropped")])
async def test_an_unknown_oid_right_after_a_lost_post_keeps_the_reservation(
    autojump_clock: Any, exc: Exception
) -> None:
    """R10: `_resolve_inner` polls orderStatus at once (executor/task.py:498-501) and the first
    `unknownOid` marks the order final with nothing filled (book.py:321-329). Right after a timeout or
    a dropped link the order may still be queued (a slow exchange, the frame in flight); it fills a
    moment later, after its reservation was already freed for another entry (rule 6)."""
    async with running() as h:
        h.ws.raise_exc = exc
        h.info.status_answers = [
            OrderStatusResult(known=False),  # not in a block yet
            OrderStatusResult(known=True, status="filled", sz=D(0), orig_sz=D(1)),
        ]
        await h.signal(signal(TSLA, Side.BUY, "250", "1"))
        ((cloid, result),) = h.tracker.results
        assert isinstance(result, PostUnknown)
        assert cloid in h.tracker.reservations
