"""A short soak (scripts/soak.py) for the suite: ~10 s of live market with random faults, fixed seed.

The soak runs on the real clock over loopback, like the rest of tests/e2e; every wait in it is bounded.
"""

from __future__ import annotations

import importlib.util
import sys
from decimal import Decimal
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import trio

from hip3.core import MarketKey
from hip3.trading.messages import PortfolioView, PositionView

SOAK_PATH = Path(__file__).resolve().parents[2] / "scripts" / "soak.py"
SEED = 7
SECONDS = 10.0


def load_soak() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hip3_soak_script", SOAK_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # attrs resolves the module's annotations through sys.modules
    spec.loader.exec_module(module)
    return module


soak = load_soak()


async def test_short_soak_keeps_every_invariant() -> None:
    with trio.fail_after(40):  # 10 s of soak plus startup and an orderly stop, with room to spare
        result = await soak.run_soak(SECONDS, SEED, quiet_tail=2.5, stop_timeout=15)
    report = result.report()
    assert result.exit_code == 0, report
    for invariant in result.invariants:
        assert invariant.ok, report
    # The run must have exercised something, or the invariants above say nothing.
    assert result.summary["faults injected"] >= 3, report
    assert result.summary["orders posted"] >= 1, report
    # foreign account activity was tried (a liquidation or manual close needs a position to act on)
    foreign = result.summary["foreign activity"]
    skipped = result.summary["foreign ops skipped (nothing to act on)"]
    assert sum(foreign.values()) + (sum(skipped.values()) if isinstance(skipped, dict) else 0) >= 1, report
    assert all(inv.checks > 0 for inv in result.invariants if "ERROR" not in inv.name), report


def fill(side: str, sz: str, start: str) -> dict[str, str]:
    return {"side": side, "sz": sz, "startPosition": start, "closedPnl": "0", "fee": "0"}


def test_round_trips_count_returns_to_flat() -> None:
    fills = [
        fill("B", "1", "0"),  # open long
        fill("B", "1", "1"),  # add
        fill("A", "1.5", "2"),  # partial close
        fill("A", "0.5", "0.5"),  # flat: one round trip
        fill("A", "2", "0"),  # open short
        fill("B", "2", "-2"),  # flat: two
        fill("B", "1", "0"),  # open again, never closed
    ]
    assert soak.round_trips(fills) == 2


def test_invariant_fails_and_keeps_the_first_details() -> None:
    inv = soak.Invariant("x")
    assert inv.ok
    for i in range(25):
        inv.fail(f"failure {i}")
    assert not inv.ok
    assert inv.failures[0] == "failure 0"
    assert len(inv.failures) == 20 and "failure 24" in inv.failures[-1]


def test_nonzero_drops_flat_markets() -> None:
    assert soak._nonzero({"xyz:A": Decimal(0), "xyz:B": Decimal("-0.5")}) == {"xyz:B": Decimal("-0.5")}


# ---------------------------------------------------------------------------------------------
# The monitor's checks must be able to fail: fakes stand in for the bot's tracker and the simulator


class FakeTracker:
    def __init__(self, view: PortfolioView) -> None:
        self.current = view

    def view(self) -> PortfolioView:
        return self.current


class FakeEngine:
    def __init__(self, positions: dict[str, Decimal], entry: Decimal) -> None:
        self.held = positions
        self.entry = entry

    def positions(self, user: str) -> dict[str, Decimal]:
        return dict(self.held)

    def account(self, user: str) -> SimpleNamespace:
        return SimpleNamespace(
            positions={c: SimpleNamespace(szi=s, entry_px=self.entry) for c, s in self.held.items()}
        )


TSLA = MarketKey(dex="xyz", coin="TSLA", asset=110000)


def make_monitor(ours: Decimal, theirs: Decimal, entry: Decimal, *, pending: bool = False) -> Any:
    view = PortfolioView(
        positions={TSLA: PositionView(market=TSLA, size=ours, entry_px=entry, opened_at=0.0)} if ours else {},
        pending_markets=frozenset({TSLA}) if pending else frozenset(),
    )
    bot = SimpleNamespace(tracker=FakeTracker(view))
    sim = SimpleNamespace(engine=FakeEngine({"xyz:TSLA": theirs} if theirs else {}, entry))
    return soak.Monitor(sim, bot, "0xuser", Decimal(100), soak.Capture(), 2.0)


async def test_checkpoint_passes_when_positions_agree() -> None:
    monitor = make_monitor(Decimal("0.2"), Decimal("0.2"), Decimal(400))
    monitor.checkpoint()
    monitor.check_caps()
    assert monitor.positions.ok and monitor.positions.checks == 1
    assert monitor.notional.ok


async def test_checkpoint_fails_when_tracker_and_simulator_differ() -> None:
    monitor = make_monitor(Decimal("0.2"), Decimal("0.1"), Decimal(400))
    monitor.checkpoint()
    assert not monitor.positions.ok
    assert "xyz:TSLA" in monitor.positions.failures[0]


async def test_checkpoint_is_skipped_while_an_order_is_pending() -> None:
    monitor = make_monitor(Decimal("0.2"), Decimal("0.1"), Decimal(400), pending=True)
    monitor.checkpoint()
    assert monitor.positions.ok and monitor.checkpoints_skipped == 1


async def test_cap_check_fails_above_the_cap() -> None:
    monitor = make_monitor(Decimal("0.3"), Decimal("0.3"), Decimal(400))  # 120 > 100
    monitor.check_caps()
    assert not monitor.notional.ok
    assert len(monitor.notional.failures) == 2  # the tracker's and the simulator's view


def test_only_listed_errors_are_expected() -> None:
    abandoned = (
        "ERROR   hip3.trading.executor.task: order 0x" + "ab" * 16 + " abandoned: unresolved after 3 s; ..."
    )
    assert soak.expected_reason(abandoned) is not None
    assert (
        soak.expected_reason(
            "ERROR   hip3.trading.tracker: fill 12 for cloid 0x01 is buy but the order is sell"
        )
        is None
    )
    assert soak.expected_reason("CRITICAL hip3.service.app: crashed") is None
