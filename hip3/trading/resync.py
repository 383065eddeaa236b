"""Fenced periodic position resync (DESIGN.md rule 4).

Every `position_resync_interval_secs`: ask the tracker for its sequence fence, fetch
clearinghouseState for the dex, hand both back. The tracker corrects a market only if nothing
happened there since the fence and nothing is pending; a failed fetch changes nothing.

Besides the period, a resync can be requested at once (`ResyncTrigger`): the executor does so when
the exchange refuses a flatten because the position is not there. Requests are served at most once
per `MIN_REQUEST_GAP_SECS`.

A resync runs only while the user streams are live and caught up (`may_run`), and its snapshot
is dropped when the link changed during the fetch (`link_epoch`): while disconnected, fills the
snapshot already holds would otherwise be applied a second time by the reconnect's catch-up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

import attrs
import trio

from hip3.core import MarketKey
from hip3.hyperliquid.events import ClearinghouseState
from hip3.trading.edge import account_snapshot
from hip3.trading.messages import Correction
from hip3.trading.reports import AccountSnapshot

log = logging.getLogger(__name__)

MIN_REQUEST_GAP_SECS = 1.0


class ResyncTrigger:
    """Requests for an immediate resync, with the markets that asked (all served by one fetch)."""

    def __init__(self) -> None:
        self._requested = trio.Event()
        self.markets: set[MarketKey] = set()

    def request(self, market: MarketKey) -> None:
        self.markets.add(market)
        self._requested.set()

    async def wait(self) -> None:
        await self._requested.wait()

    def take(self) -> set[MarketKey]:
        markets, self.markets = self.markets, set()
        self._requested = trio.Event()
        return markets


class FencedTracker(Protocol):
    async def begin_fetch(self) -> int: ...

    async def apply_snapshot(
        self, fence: int, snapshot: AccountSnapshot, *, dex: str | None = None
    ) -> list[Correction]: ...


class StateSource(Protocol):
    async def clearinghouse_state(self, user: str, dex: str) -> ClearinghouseState: ...


@attrs.define
class ResyncStats:
    runs: int = 0
    failures: int = 0
    corrections: int = 0
    skipped: int = 0
    last_ok_at: float | None = None


async def resync_once(
    tracker: FencedTracker,
    info: StateSource,
    user: str,
    dex: str,
    *,
    stats: ResyncStats,
    fetch_timeout: float,
    link_epoch: Callable[[], object] | None = None,
) -> list[Correction] | None:
    """One fenced sync; None when the fetch failed or was dropped (and nothing was changed)."""
    epoch = link_epoch() if link_epoch is not None else None
    fence = await tracker.begin_fetch()
    state: ClearinghouseState | None = None
    try:
        with trio.move_on_after(fetch_timeout):
            state = await info.clearinghouse_state(user, dex)
        if state is None:
            raise TimeoutError(f"no answer within {fetch_timeout:g} s")
    except Exception as exc:  # InfoError, timeout, or a malformed answer: change nothing
        stats.failures += 1
        log.warning("position resync (dex %r) failed, positions unchanged: %s", dex, exc)
        return None
    if link_epoch is not None and link_epoch() != epoch:
        stats.skipped += 1
        log.info("position resync dropped: the connection changed while clearinghouseState was fetched")
        return None
    corrections = await tracker.apply_snapshot(
        fence, account_snapshot(state), dex=dex
    )  # compare this dex's markets only
    stats.runs += 1
    stats.corrections += len(corrections)
    stats.last_ok_at = trio.current_time()
    for c in corrections:
        log.warning(
            "position resync corrected %s: %s -> %s (entry %s)", c.market, c.before, c.after, c.entry_px
        )
    return corrections


async def run_resync(
    tracker: FencedTracker,
    info: StateSource,
    user: str,
    dex: str,
    interval_secs: float,
    *,
    stats: ResyncStats | None = None,
    fetch_timeout: float = 30.0,
    may_run: Callable[[], bool] | None = None,
    link_epoch: Callable[[], object] | None = None,
    trigger: ResyncTrigger | None = None,
    task_status: trio.TaskStatus[ResyncStats] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Trading mode only (the app does not start it in observation mode); 0 disables it."""
    stats = stats if stats is not None else ResyncStats()
    task_status.started(stats)
    if interval_secs <= 0:
        log.info("position resync disabled (position_resync_interval_secs = 0)")
        return
    next_at = trio.current_time() + interval_secs
    while True:
        with trio.move_on_at(next_at):
            if trigger is None:
                await trio.sleep_forever()
            await trigger.wait()
            await trio.sleep(MIN_REQUEST_GAP_SECS / 2)  # one fetch for a burst of requests
        requested = trigger.take() if trigger is not None else set()
        if requested:
            log.info("position resync requested for %s", ", ".join(sorted(str(m) for m in requested)))
        next_at = trio.current_time() + interval_secs
        if may_run is not None and not may_run():
            stats.skipped += 1
            log.info("position resync skipped: user streams not live and caught up")
            continue
        try:
            await resync_once(
                tracker,
                info,
                user,
                dex,
                stats=stats,
                fetch_timeout=min(fetch_timeout, interval_secs),
                link_epoch=link_epoch,
            )
        except Exception:  # a tracker-side failure must not end the task; the next run tries again
            stats.failures += 1
            log.exception("position resync failed")
        if requested:
            await trio.sleep(MIN_REQUEST_GAP_SECS)
