"""At startup: the account's fills while the bot was down count towards today's loss.

The hard stop learns PnL from the fills the running bot sees. A liquidation or a manual close
between a crash and the restart is only visible afterwards as a smaller position, which the
restart adopts: without this its loss would never reach the daily-loss limit.

The window runs from the later of today's UTC midnight and the dex's last running mark (kept in
the hard-stop state file beside the daily PnL it belongs to; that file is always written in
trading mode, the journal can be turned off) to now. With a journal the window reaches
`OVERLAP_MS` further back (exchange vs local clock, fills in flight at the mark) and every fill
the journal holds is skipped by (coin, tid): the previous run saw it, so its PnL is already in the
daily total. Without one there is nothing to tell those apart, so the window starts at the mark.

Counted fills are written to the hard stop (at once, with the new mark) before they are
journaled: a crash between the two counts them twice next time rather than never.

A fill between this query and the userFills subscription comes only in the subscription's
snapshot (history, which the tracker ignores): `count_history_after_the_query` counts those.

A window that cannot be read in full is unknown, never "no fill": `DowntimeFillsUnknown`, and
the app does not start (exit 1, systemd retries).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Protocol

import trio
from attrs import frozen

from hip3.clock import wall_clock_ms
from hip3.hyperliquid.events import Fill
from hip3.hyperliquid.fills_window import fetch_fills_window
from hip3.service.journal import Journal
from hip3.service.recovery import count_then_journal
from hip3.trading.hardstop import HardStop

log = logging.getLogger(__name__)

#: With a journal, the window starts this long before the last running mark; the journal drops
#: what the previous run saw.
OVERLAP_MS = 60_000
DAY_MS = 86_400_000


class FillsLookup(Protocol):
    async def user_fills_by_time(self, user: str, start_ms: int, end_ms: int | None = None) -> list[Fill]: ...


class DowntimeFillsUnknown(Exception):
    """The fills while down could not all be read; the message says why."""


@frozen
class DowntimeFills:
    """What was counted: the new fills of the bot's markets in [start_ms, end_ms]."""

    fills: tuple[Fill, ...]
    realized: Decimal
    fees: Decimal
    start_ms: int
    end_ms: int
    #: (coin, tid) of every fill of the bot's markets the query answered, counted or journaled.
    answered: frozenset[tuple[str, int]] = frozenset()


def window_start(now_ms: int, last_running_ms: int | None, overlap_ms: int) -> int:
    """Today's UTC midnight, or the last running mark less the overlap when that is later."""
    midnight = now_ms - now_ms % DAY_MS
    if last_running_ms is None:
        return midnight
    return min(now_ms, max(midnight, last_running_ms - overlap_ms))


async def count_fills_while_down(
    info: FillsLookup,
    user: str,
    *,
    coins: Collection[str],
    dex: str,
    hard_stop: HardStop,
    journal: Journal | None,
    now_ms: Callable[[], int] = wall_clock_ms,
    page_timeout_secs: float | None = None,
) -> DowntimeFills:
    """Count the unseen fills of `coins` since the bot last ran (today only) into `hard_stop`.

    Raises `DowntimeFillsUnknown` (counting nothing, the mark unmoved) when the window cannot be
    read in full.
    """
    end = now_ms()
    start = window_start(end, hard_stop.last_running_ms(dex), OVERLAP_MS if journal is not None else 0)

    async def page(since: int) -> list[Fill]:
        return await info.user_fills_by_time(user, since, end)

    window = await fetch_fills_window(page, start, end, page_timeout_secs=page_timeout_secs)
    if not window.complete:
        raise DowntimeFillsUnknown(
            f"the account's fills since {_iso(start)} (while the bot was down) could not be read in "
            f"full: {window.why_incomplete}"
        )
    ours = [f for f in window.fills if f.coin in coins and start <= f.time <= end]
    new = journal.fills_not_journaled(ours) if journal is not None else ours
    realized = sum((f.closed_pnl for f in new), Decimal(0))
    fees = sum((f.fee for f in new), Decimal(0))
    hard_stop.mark_running(dex, end)
    count_then_journal(new, hard_stop, journal, trio.current_time())
    log.log(
        logging.WARNING if new else logging.INFO,
        "while down: %d fills, realized %s, fees %s, counted to today's loss (fills of %s since %s; "
        "today's net now %s, limit -%s)",
        len(new),
        realized,
        fees,
        dex or "the validator perps",
        _iso(start),
        hard_stop.daily_net_pnl,
        hard_stop.params.max_daily_loss_usd,
    )
    return DowntimeFills(tuple(new), realized, fees, start, end, frozenset((f.coin, f.tid) for f in ours))


def count_history_after_the_query(
    history: Sequence[Fill],
    down: DowntimeFills,
    *,
    coins: Collection[str],
    hard_stop: HardStop,
    journal: Journal | None,
) -> list[Fill]:
    """The first userFills snapshot after the startup: fills of the bot's markets from the
    window's start on that the startup query did not answer happened between the query and the
    subscription. The tracker never sees them (a snapshot is history, the stream only brings
    later fills): count them here. Matched by (coin, tid), not by time, so the local clock's
    offset from the exchange's does not matter. Returns what was counted."""
    later = [
        f
        for f in history
        if f.coin in coins and f.time >= down.start_ms and (f.coin, f.tid) not in down.answered
    ]
    new = journal.fills_not_journaled(later) if journal is not None else later
    if new:
        realized = sum((f.closed_pnl for f in new), Decimal(0))
        fees = sum((f.fee for f in new), Decimal(0))
        day = datetime.fromtimestamp(max(f.time for f in new) / 1000, UTC).date()
        hard_stop.record_pnl(realized, fees, day, trio.current_time())
        log.warning(
            "between the startup count and the userFills subscription: %d fills, realized %s, fees %s, "
            "counted to today's loss (today's net now %s)",
            len(new),
            realized,
            fees,
            hard_stop.daily_net_pnl,
        )
    return new


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")
