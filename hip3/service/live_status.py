"""A compact live status for `hip3 run` on a terminal, refreshed in place (rich).

One table: per market the book, the oracle, the edge of the better side, the gate that blocks it (if
any) and the position; above it READY, the connection, PnL and the hard stop. Log lines keep
printing above the table. Off a terminal (journald, files) the bot logs a status line instead.
Reading the bot's state is a pure function (`snapshot`), so it is tested without a terminal.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TextIO

import attrs
import trio
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from hip3.core import Side
from hip3.strategy.entry import edge_above_baseline

if TYPE_CHECKING:
    from hip3.service.app import Bot

BPS = Decimal(10_000)
REFRESH_SECS = 0.5


@attrs.frozen
class MarketRow:
    market: str
    bid: Decimal | None
    ask: Decimal | None
    oracle: Decimal | None
    edge_bps: Decimal | None  # the better side, from where the book settles (oracle + structural gap)
    blocked_by: str | None
    position: Decimal | None
    entry_px: Decimal | None


@attrs.frozen
class StatusSnapshot:
    ready: bool
    why_not_ready: str
    connected: bool
    trading: bool
    signals: int
    realized: Decimal
    fees: Decimal
    hard_stop: str | None
    markets: tuple[MarketRow, ...]

    @property
    def net(self) -> Decimal:
        return self.realized - self.fees


def edge_bps(
    bid: Decimal | None, ask: Decimal | None, oracle: Decimal | None, gap_bps: Decimal | None = None
) -> Decimal | None:
    """The better side's edge, measured as the bot's entry rule does: against the oracle, less the
    part of the market's structural gap `gap_bps` that works against that side (None: unknown)."""
    if oracle is None or oracle <= 0:
        return None
    sides = []
    if ask is not None:
        sides.append(edge_above_baseline(Side.BUY, (oracle - ask) / oracle * BPS, gap_bps))
    if bid is not None:
        sides.append(edge_above_baseline(Side.SELL, (bid - oracle) / oracle * BPS, gap_bps))
    return max(sides).quantize(Decimal("0.1")) if sides else None


def snapshot(bot: Bot, now: float | None = None) -> StatusSnapshot:
    """What the status shows, read from the bot's published state (never written); `now` (trio
    time) reads each market's structural gap, so the edge shown is the one the bot measures."""
    view = bot.tracker.view() if bot.tracker is not None and bot.trading else None
    blocked = bot.scanner.gate_log.blocked_markets()
    gap_of = getattr(bot.scanner, "structural_gap_bps", None) if now is not None else None
    rows = []
    for market in sorted(bot.specs):
        state = bot.cells.get(market)
        bid = state.bbo.bid.px if state.bbo is not None and state.bbo.bid is not None else None
        ask = state.bbo.ask.px if state.bbo is not None and state.bbo.ask is not None else None
        oracle = state.ctx.oracle_px if state.ctx is not None else None
        held = view.positions.get(market) if view is not None else None
        rows.append(
            MarketRow(
                market=str(market),
                bid=bid,
                ask=ask,
                oracle=oracle,
                edge_bps=edge_bps(bid, ask, oracle, gap_of(market, now) if gap_of is not None else None),
                blocked_by=blocked.get(market),
                position=held.size if held is not None else None,
                entry_px=held.entry_px if held is not None else None,
            )
        )
    ws: Any = getattr(bot, "ws", None)
    return StatusSnapshot(
        ready=bot.ready.is_ready,
        why_not_ready="" if bot.ready.is_ready else bot.ready.why_not(),
        connected=bool(ws is not None and ws.is_connected),
        trading=bot.trading,
        signals=bot.signals_seen,
        realized=view.realized_pnl if view is not None else Decimal(0),
        fees=view.fees if view is not None else Decimal(0),
        hard_stop=bot.hard_stop.describe() if bot.hard_stop.latched else None,
        markets=tuple(rows),
    )


def _num(value: Decimal | None) -> str:
    return "-" if value is None else f"{value.normalize():f}"


def render(snap: StatusSnapshot) -> Group:
    head = Text()
    head.append(
        "READY" if snap.ready else f"not ready: {snap.why_not_ready}",
        style="bold green" if snap.ready else "yellow",
    )
    head.append(
        "   link " + ("up" if snap.connected else "DOWN"), style=None if snap.connected else "bold red"
    )
    head.append(f"   signals {snap.signals}")
    if snap.trading:
        head.append(f"   PnL net {snap.net:.4f} (realized {snap.realized:.4f}, fees {snap.fees:.4f})")
    else:
        head.append("   observation mode")
    if snap.hard_stop:
        head.append(f"\nHARD STOP: {snap.hard_stop}", style="bold red")
    table = Table(box=None, pad_edge=False, header_style="bold")
    for name in ("market", "bid", "ask", "oracle", "edge bps", "gate", "position"):
        table.add_column(name, justify="left" if name in ("market", "gate") else "right")
    for row in snap.markets:
        edge = _num(row.edge_bps)
        edge_style = "bold" if row.edge_bps is not None and row.edge_bps > 0 else None
        position = "-" if row.position is None else f"{_num(row.position)} @ {_num(row.entry_px)}"
        table.add_row(
            row.market,
            _num(row.bid),
            _num(row.ask),
            _num(row.oracle),
            Text(edge, style=edge_style or ""),
            Text(row.blocked_by or "ok", style="yellow" if row.blocked_by else "green"),
            position,
        )
    return Group(head, table)


@contextmanager
def _logs_above(original: TextIO) -> Iterator[None]:
    """While Live owns the terminal, send log handlers that wrote to `original` through its proxy
    (sys.stderr now), so log lines print above the table instead of tearing it."""
    moved = []
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is original:
            handler.setStream(sys.stderr)
            moved.append(handler)
    try:
        yield
    finally:
        for handler in moved:
            handler.setStream(original)


async def run_live_status(bot: Bot, console: Console | None = None, period: float = REFRESH_SECS) -> None:
    """Redraw the status every `period` until cancelled."""
    console = console or Console(file=sys.stderr)
    original = sys.stderr
    with Live(
        render(snapshot(bot, trio.current_time())), console=console, auto_refresh=False, redirect_stderr=True
    ) as live:
        with _logs_above(original):
            while True:
                live.update(render(snapshot(bot, trio.current_time())), refresh=True)
                await trio.sleep(period)


async def run_with_live_status(run: Callable[..., Awaitable[int]]) -> int:
    """Run `run(task_status=...)` (the bot) with the live status beside it; the bot's exit code."""
    codes: list[int] = []
    async with trio.open_nursery() as nursery:

        async def bot(task_status: trio.TaskStatus[Bot] = trio.TASK_STATUS_IGNORED) -> None:
            codes.append(await run(task_status=task_status))
            nursery.cancel_scope.cancel()

        try:
            started: Bot = await nursery.start(bot)
        except RuntimeError:
            if codes:  # the bot refused to start (the log said why): no status to show
                return codes[0]
            raise
        nursery.start_soon(run_live_status, started)
    return codes[0] if codes else 1


__all__ = [
    "MarketRow",
    "StatusSnapshot",
    "edge_bps",
    "render",
    "run_live_status",
    "run_with_live_status",
    "snapshot",
]
