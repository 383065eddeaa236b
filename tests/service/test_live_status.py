"""The live status: what it reads from the bot, what it draws, and that it redraws in place."""

from __future__ import annotations

import io
import types
from decimal import Decimal

import trio
from rich.console import Console

from hip3.core import MarketKey
from hip3.hyperliquid.events import AssetCtx, Bbo, BookLevel
from hip3.market.cells import MarketCells
from hip3.market.ready import ReadyState
from hip3.service.live_status import edge_bps, render, run_live_status, run_with_live_status, snapshot
from hip3.strategy.gates import GateLog, GateVerdict
from hip3.trading.messages import PortfolioView, PositionView

D = Decimal
TSLA = MarketKey("xyz", "TSLA", 110001)
GOLD = MarketKey("xyz", "GOLD", 110003)


def fake_bot(*, realized: str = "0.5", fees: str = "0.1") -> types.SimpleNamespace:
    cells = MarketCells([TSLA, GOLD])
    cells.update_bbo(
        TSLA, Bbo("xyz:TSLA", 1, BookLevel(D("99.9"), D(1), 1), BookLevel(D("100.0"), D(1), 1)), 0.0
    )
    cells.update_ctx(TSLA, AssetCtx("xyz:TSLA", D("100.5"), D("100.4"), None, D(0), D(0)), 0.0)
    gate_log = GateLog()
    gate_log.observe(GOLD, GateVerdict(ok=False, gate="bbo_age", detail="old"), 0.0)
    view = PortfolioView(
        positions={TSLA: PositionView(TSLA, D("0.2"), D("100.0"), opened_at=0.0)},
        realized_pnl=D(realized),
        fees=D(fees),
    )
    return types.SimpleNamespace(
        specs={TSLA: None, GOLD: None},
        cells=cells,
        tracker=types.SimpleNamespace(view=lambda: view),
        trading=True,
        scanner=types.SimpleNamespace(gate_log=gate_log),
        ready=ReadyState([TSLA, GOLD], trading=True),
        ws=types.SimpleNamespace(is_connected=True),
        signals_seen=7,
        hard_stop=types.SimpleNamespace(latched=False, describe=lambda: ""),
    )


def test_edge_is_the_better_side_over_the_oracle() -> None:
    assert edge_bps(D("99.9"), D("100.0"), D("100.5")) == D("49.8")  # the ask 50 cents under
    assert edge_bps(D("101"), D("101.1"), D("100")) == D("100.0")  # the bid a dollar over
    assert edge_bps(None, None, D("100")) is None and edge_bps(D(1), D(2), None) is None


def test_snapshot_reads_markets_gates_positions_and_pnl() -> None:
    snap = snapshot(fake_bot())  # type: ignore[arg-type]
    rows = {r.market: r for r in snap.markets}
    assert rows["xyz:TSLA"].edge_bps == D("49.8") and rows["xyz:TSLA"].position == D("0.2")
    assert rows["xyz:TSLA"].blocked_by is None
    assert rows["xyz:GOLD"].blocked_by == "bbo_age" and rows["xyz:GOLD"].oracle is None
    assert snap.net == D("0.4") and snap.signals == 7 and snap.connected and not snap.ready


def test_render_shows_every_market_and_the_state() -> None:
    console = Console(record=True, width=140, file=io.StringIO())
    console.print(render(snapshot(fake_bot())))  # type: ignore[arg-type]
    text = console.export_text()
    for needle in (
        "xyz:TSLA",
        "xyz:GOLD",
        "49.8",
        "bbo_age",
        "0.2 @ 100",
        "PnL net 0.4000",
        "not ready",
        "link up",
    ):
        assert needle in text, needle


async def test_the_status_redraws_in_place_with_the_newest_state(autojump_clock: object) -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=140)
    bot = fake_bot()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_live_status, bot, console, 0.5)
        await trio.sleep(1.2)
        newer = fake_bot(realized="2.5")
        bot.tracker = newer.tracker
        await trio.sleep(1.0)
        nursery.cancel_scope.cancel()
    drawn = out.getvalue()
    assert "PnL net 0.4000" in drawn and "PnL net 2.4000" in drawn
    assert "\x1b[1A" in drawn or "\x1b[2K" in drawn  # cursor moved back over the last frame: redrawn in place


async def test_a_bot_that_refuses_to_start_gives_its_exit_code_and_no_status() -> None:
    async def refusing(task_status: trio.TaskStatus[object] = trio.TASK_STATUS_IGNORED) -> int:
        return 2

    assert await run_with_live_status(refusing) == 2


def test_live_status_only_for_a_terminal_reading_text(monkeypatch: object) -> None:
    import sys

    from hip3.service import cli

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    mp = monkeypatch
    mp.setattr(sys, "stderr", io.StringIO())  # type: ignore[attr-defined]
    assert not cli.live_status_wanted("auto") and not cli.live_status_wanted("text")
    mp.setattr(sys, "stderr", Tty())  # type: ignore[attr-defined]
    assert cli.live_status_wanted("auto") and cli.live_status_wanted("text")
    assert not cli.live_status_wanted("json")


def test_the_edge_shown_is_measured_from_where_the_book_settles() -> None:
    # A HOOD-like book living 30 bps above its oracle: bid 100.28 is no 28 bps sell edge: the
    # entry rule takes the 30 bps off (28 − 30 = −2); the ask 32 bps over the oracle is −32.
    assert edge_bps(D("100.28"), D("100.32"), D("100"), D(30)) == D("-2.0")
    bot = fake_bot()
    bot.scanner.structural_gap_bps = lambda market, now: D(-50) if market == TSLA else None
    rows = {r.market: r for r in snapshot(bot, now=5.0).markets}  # type: ignore[arg-type]
    # TSLA's book lives 50 bps under its oracle 100.5: the ask 100.0 is 0.5 / 100.5 = 49.75 bps
    # under the oracle, all of it the gap (49.75 − 50 = −0.25, shown −0.2), not a 49.8 bps buy
    # edge; GOLD has no gap known and no oracle.
    assert rows["xyz:TSLA"].edge_bps == D("-0.2")
