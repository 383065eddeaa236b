"""Market checks: OI caps seeded at discovery, periodic meta/perpDexs checks publishing halt, parameter
change and OI cap into the conditions cells the gates read."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from decimal import Decimal
from pathlib import Path

import pytest
import trio
import trio.testing

from hip3.core import MarketKey, MarketSpec
from hip3.hyperliquid.events import AssetCtx, Bbo, BookLevel, Meta, MetaAsset, PerpDex
from hip3.hyperliquid.info import InfoError, open_info_client
from hip3.market.cells import MarketCells, MarketConditions
from hip3.market.checks import (
    MarketCheck,
    MarketChecker,
    check_market,
    dex_index_change,
    initial_conditions,
    oi_cap_for,
    run_market_checks,
)
from hip3.strategy.detector import DetectorParams
from hip3.strategy.gates import GateParams
from hip3.strategy.scanner import SignalScanner

# xyz at perpDexs position 2 → asset base 120000; TSLA is meta index 1, GOLD meta index 3.
TSLA = MarketKey("xyz", "TSLA", 120001)
GOLD = MarketKey("xyz", "GOLD", 120003)
SPECS = {
    TSLA: MarketSpec(TSLA, sz_decimals=3, max_leverage=10, only_isolated=True),
    GOLD: MarketSpec(GOLD, sz_decimals=4, max_leverage=20, only_isolated=True),
}


def universe(**overrides: MetaAsset | None) -> Meta:
    """meta(xyz) as discovery saw it; `overrides` replaces (or, with None, removes) an entry by coin."""
    assets = {
        "XYZ100": MetaAsset("xyz:XYZ100", 4, 20, True),
        "TSLA": MetaAsset("xyz:TSLA", 3, 10, True),
        "OLD": MetaAsset("xyz:OLD", 2, 3, True, is_delisted=True),
        "GOLD": MetaAsset("xyz:GOLD", 4, 20, True),
    }
    for coin, asset in overrides.items():
        assets[coin] = asset  # type: ignore[assignment]
    return Meta(tuple(a for a in assets.values() if a is not None))


def xyz(caps: dict[str, str], index: int = 2) -> list[PerpDex]:
    return [
        PerpDex(1, "abc", oi_caps={"abc:TSLA": Decimal(1)}),
        PerpDex(index, "xyz", oi_caps={k: Decimal(v) for k, v in caps.items()}),
    ]


# ---------------------------------------------------------------------------------------------
# pure comparisons


def test_oi_cap_accepts_prefixed_and_bare_coin_names() -> None:
    assert oi_cap_for(PerpDex(2, "xyz", oi_caps={"xyz:TSLA": Decimal("5e5")}), TSLA) == Decimal(500000)
    assert oi_cap_for(PerpDex(2, "xyz", oi_caps={"TSLA": Decimal("7")}), TSLA) == Decimal(7)
    assert oi_cap_for(PerpDex(2, "xyz", oi_caps={"xyz:GOLD": Decimal(1)}), TSLA) is None
    assert oi_cap_for(None, TSLA) is None


def test_initial_conditions_seed_every_market_and_name_the_uncapped(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        conditions = initial_conditions(xyz({"xyz:TSLA": "100000.0"})[1], SPECS)
    assert conditions == {
        TSLA: MarketConditions(oi_cap=Decimal(100000)),
        GOLD: MarketConditions(oi_cap=None),
    }
    assert "xyz:GOLD" in caplog.text and "xyz:TSLA" not in caplog.text


def test_an_unchanged_market_passes() -> None:
    assert check_market(SPECS[TSLA], universe()) == MarketCheck()
    assert check_market(SPECS[GOLD], universe()) == MarketCheck()


@pytest.mark.parametrize(
    ("asset", "expected"),
    [
        (MetaAsset("xyz:TSLA", 2, 10, True), "szDecimals 3 → 2"),
        (MetaAsset("xyz:TSLA", 3, 5, True), "maxLeverage 10 → 5"),
        (MetaAsset("xyz:TSLA", 3, 10, False), "onlyIsolated True → False"),
    ],
)
def test_a_changed_parameter_is_reported(asset: MetaAsset, expected: str) -> None:
    check = check_market(SPECS[TSLA], universe(TSLA=asset))
    assert check.changes == (expected,) and check.halt_reason is None


def test_a_moved_meta_index_is_a_parameter_change() -> None:
    # XYZ100 removed: TSLA is now at index 0, so asset 120001 would name another market.
    check = check_market(SPECS[TSLA], universe(XYZ100=None))
    assert len(check.changes) == 1 and "index in meta 1 → 0" in check.changes[0]


def test_delisted_or_missing_market_is_halted() -> None:
    delisted = check_market(SPECS[TSLA], universe(TSLA=MetaAsset("xyz:TSLA", 3, 10, True, is_delisted=True)))
    assert delisted == MarketCheck(halt_reason="delisted")
    missing = check_market(SPECS[GOLD], universe(GOLD=None))
    assert missing.halt_reason is not None and "not listed" in missing.halt_reason


def test_a_moved_dex_is_a_parameter_change() -> None:
    assert dex_index_change(TSLA, PerpDex(2, "xyz")) is None
    change = dex_index_change(TSLA, PerpDex(3, "xyz"))
    assert change is not None and "perp dex index 2 → 3" in change
    assert dex_index_change(MarketKey("", "BTC", 0), PerpDex(3, "")) is None


# ---------------------------------------------------------------------------------------------
# the checker and the task


class FakeInfo:
    """Answers from per-query scripts; records the trio time of every call."""

    def __init__(
        self,
        meta: Callable[[int], Meta | Exception],
        perp_dexs: Callable[[int], list[PerpDex] | Exception],
    ) -> None:
        self._meta, self._perp_dexs = meta, perp_dexs
        self.meta_calls: list[float] = []
        self.perp_dex_calls: list[float] = []

    async def meta(self, dex: str) -> Meta:
        assert dex == "xyz"
        self.meta_calls.append(trio.current_time())
        answer = self._meta(len(self.meta_calls))
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def perp_dexs(self) -> list[PerpDex]:
        self.perp_dex_calls.append(trio.current_time())
        answer = self._perp_dexs(len(self.perp_dex_calls))
        if isinstance(answer, Exception):
            raise answer
        return answer


def fresh_conditions() -> dict[MarketKey, MarketConditions]:
    return initial_conditions(xyz({"xyz:TSLA": "1000", "xyz:GOLD": "2000"})[1], SPECS)


def fresh_cells() -> MarketCells:
    """Market cells holding the conditions discovery found (what the app builds)."""
    return MarketCells(SPECS, fresh_conditions())


def conditions_in(
    cells: MarketCells, markets: Iterable[MarketKey] = SPECS
) -> dict[MarketKey, MarketConditions]:
    return {m: cells.conditions(m) for m in markets}


async def test_off_when_interval_is_zero(autojump_clock: trio.testing.MockClock) -> None:
    info = FakeInfo(lambda n: universe(), lambda n: xyz({}))
    with trio.move_on_after(3600):
        async with trio.open_nursery() as nursery:
            await nursery.start(run_market_checks, info, "xyz", SPECS, fresh_cells(), 0)
    assert info.meta_calls == [] and info.perp_dex_calls == []
    assert trio.current_time() < 1  # returned at once, not cancelled by the hour's timeout


async def test_checks_run_every_interval_and_update_the_conditions(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    delisted = MetaAsset("xyz:TSLA", 3, 10, True, is_delisted=True)
    metas = {
        1: universe(),
        2: universe(TSLA=delisted, GOLD=MetaAsset("xyz:GOLD", 5, 20, True)),  # halt + szDecimals change
        3: universe(TSLA=delisted, GOLD=MetaAsset("xyz:GOLD", 5, 20, True)),
        4: universe(),  # back to discovery's values: halt clears, the change stays latched
    }
    caps = {1: {"xyz:TSLA": "1000", "xyz:GOLD": "2000"}, 2: {"TSLA": "1500", "xyz:GOLD": "2000"}}
    info = FakeInfo(lambda n: metas[n], lambda n: xyz(caps.get(n, {})))  # n ≥ 3: caps unlisted
    cells = fresh_cells()
    seen: list[dict[MarketKey, MarketConditions]] = []
    start = trio.current_time()
    with caplog.at_level(logging.INFO, logger="hip3.market.checks"):
        async with trio.open_nursery() as nursery:
            checker: MarketChecker = await nursery.start(run_market_checks, info, "xyz", SPECS, cells, 300.0)
            for _ in range(4):
                await trio.sleep(300.0)  # wakes after the check of the same instant (scheduled earlier)
                await trio.testing.wait_all_tasks_blocked()
                seen.append(conditions_in(cells))
            nursery.cancel_scope.cancel()

    assert [t - start for t in info.meta_calls] == [300.0, 600.0, 900.0, 1200.0]
    assert [t - start for t in info.perp_dex_calls] == [300.0, 600.0, 900.0, 1200.0]
    assert seen[0] == {TSLA: MarketConditions(Decimal(1000)), GOLD: MarketConditions(Decimal(2000))}
    assert seen[1] == {
        TSLA: MarketConditions(Decimal(1500), halted=True),  # bare coin name accepted
        GOLD: MarketConditions(Decimal(2000), params_changed=True),
    }
    assert seen[2] == seen[1]  # unlisted caps keep their last value
    assert seen[3] == {
        TSLA: MarketConditions(Decimal(1500)),
        GOLD: MarketConditions(Decimal(2000), params_changed=True),
    }
    assert checker.stats.checks == 4 and checker.stats.failures == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert (
        sum("parameters changed" in w and "xyz:GOLD" in w and "szDecimals 4 → 5" in w for w in warnings) == 1
    )
    assert sum("halted (delisted)" in w and "xyz:TSLA" in w for w in warnings) == 1
    assert sum("halt cleared" in w for w in warnings) == 1


async def test_a_failed_query_changes_nothing(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    info = FakeInfo(lambda n: InfoError("info meta: HTTP 500"), lambda n: InfoError("info perpDexs: timeout"))
    cells = fresh_cells()
    checker = MarketChecker("xyz", SPECS, cells)
    with caplog.at_level(logging.WARNING):
        await checker.check_once(info)
    assert conditions_in(cells) == fresh_conditions() and checker.stats.failures == 2
    assert "HTTP 500" in caplog.text and "timeout" in caplog.text


async def test_perp_dexs_failure_still_checks_meta(autojump_clock: trio.testing.MockClock) -> None:
    gone = universe(GOLD=None)
    info = FakeInfo(lambda n: gone, lambda n: InfoError("info perpDexs: timeout"))
    cells = fresh_cells()
    await MarketChecker("xyz", SPECS, cells).check_once(info)
    assert cells.conditions(GOLD) == MarketConditions(Decimal(2000), halted=True)
    assert cells.conditions(TSLA) == MarketConditions(Decimal(1000))


def test_a_dex_that_moved_in_perp_dexs_latches_param_change() -> None:
    cells = fresh_cells()
    MarketChecker("xyz", SPECS, cells).apply_perp_dexs(xyz({"xyz:TSLA": "1000"}, index=3))
    assert cells.conditions(TSLA).params_changed and cells.conditions(GOLD).params_changed


def test_a_dex_missing_from_perp_dexs_keeps_the_caps(caplog: pytest.LogCaptureFixture) -> None:
    cells = fresh_cells()
    checker = MarketChecker("xyz", SPECS, cells)
    with caplog.at_level(logging.WARNING):
        checker.apply_perp_dexs([PerpDex(1, "abc")])
        checker.apply_perp_dexs([PerpDex(1, "abc")])
    assert conditions_in(cells) == fresh_conditions()
    assert caplog.text.count("not in perpDexs") == 1


async def test_the_scanner_sees_what_the_checker_publishes() -> None:
    # The checker publishes into the conditions cells; the detector task reads them from there.
    scanner = SignalScanner(
        SPECS, DetectorParams(baseline_warmup_secs=0), GateParams(), max_notional=Decimal(50)
    )
    cells = fresh_cells()
    checker = MarketChecker("xyz", SPECS, cells)
    now = 100.0
    for market in SPECS:
        cells.update_bbo(
            market,
            Bbo(
                market.name,
                1,
                BookLevel(Decimal(100), Decimal(5), 1),
                BookLevel(Decimal("100.02"), Decimal(5), 1),
            ),
            now,
        )
        # OI 5 × mark 100 = $500: below 0.95 × either cap ($1000, $2000) until GOLD's drops to $500.
        cells.update_ctx(
            market,
            AssetCtx(market.name, Decimal(100), Decimal(100), Decimal("100.01"), Decimal(5), Decimal(0)),
            now,
        )
    scanner.scan(cells, await cells.wait_changed(), now)
    assert scanner.gate_log.blocked_markets() == {}

    checker.apply_meta(universe(TSLA=MetaAsset("xyz:TSLA", 3, 10, True, is_delisted=True)))
    checker.apply_perp_dexs(xyz({"xyz:TSLA": "1000", "xyz:GOLD": "500"}))
    # a new condition wakes the detector for that market, without new market data
    changed = await cells.wait_changed()
    assert changed == set(SPECS)
    scanner.scan(cells, changed, now + 0.1)
    assert scanner.gate_log.blocked_markets() == {TSLA: "halt", GOLD: "oi_cap"}


# ---------------------------------------------------------------------------------------------
# against the simulator (real clock, 127.0.0.1, bounded)


async def test_a_halt_in_the_simulator_reaches_the_conditions(tmp_path: Path) -> None:
    from hip3.sim import load_sim_config, open_sim

    with trio.fail_after(5):
        async with open_sim(load_sim_config(None)) as sim, open_info_client(sim.info_url) as info:
            discovery = await info.discover("xyz", ["*"])
            specs = {s.key: s for s in discovery.specs.values()}
            conditions = initial_conditions(discovery.perp_dex, specs)
            # The simulator lists a cap for every market (prefixed names).
            assert specs and all(c.oi_cap is not None for c in conditions.values())
            cells = MarketCells(specs, conditions)
            tsla = next(m for m in specs if m.coin == "TSLA")
            async with trio.open_nursery() as nursery:
                await nursery.start(run_market_checks, info, "xyz", specs, cells, 0.05)
                sim.engine.halt("TSLA")
                while not cells.conditions(tsla).halted:
                    await trio.sleep(0.02)
                nursery.cancel_scope.cancel()
    assert not any(c.halted for m, c in conditions_in(cells, specs).items() if m != tsla)
    assert not any(c.params_changed for c in conditions_in(cells, specs).values())
