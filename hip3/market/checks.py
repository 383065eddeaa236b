"""Market facts from outside the feed: OI caps, halts, parameter changes.

Discovery seeds `MarketConditions` (the OI caps from perpDexs); `run_market_checks` then re-reads
meta(dex) and perpDexs every `gates.param_check_interval_secs` and publishes new values into the
conditions cells beside the market data (`MarketCells.publish_conditions`), so the gates `oi_cap`,
`param_change` and `halt` can fire in the running bot. This task is the cells' only writer:

* `params_changed` is latched (never cleared here) when szDecimals, maxLeverage or onlyIsolated
  differ from discovery, or when the market's asset id would no longer be what we send (its
  position in meta(dex) or the dex's position in perpDexs moved): orders built from the old spec
  would be rejected or, worse, go to another market. Only a restart re-validates.
* `halted` follows the exchange: set while the market is delisted or missing from meta(dex),
  cleared when it is listed again.
* `oi_cap` follows perpDexs `assetToStreamingOiCap`; a cap that is no longer listed keeps its
  last value (an unknown cap would turn the gate off).

A failed query changes nothing; it is logged and retried at the next interval.
The comparisons are pure functions; `MarketChecker` applies them and logs transitions once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Protocol

import attrs
import trio
from attrs import frozen

from hip3.core import MarketKey, MarketSpec
from hip3.hyperliquid.events import Meta, MetaAsset, PerpDex
from hip3.hyperliquid.info import InfoError
from hip3.market.cells import MarketConditions

log = logging.getLogger(__name__)

#: HIP-3 asset ids: 100000 + perp_dex_index × 10000 + index in meta(dex) (hyperliquid.md §4.3).
HIP3_ASSET_BASE = 100000
DEX_STRIDE = 10000


class ConditionsCells(Protocol):
    """Where conditions are published (`MarketCells`)."""

    def conditions(self, market: MarketKey) -> MarketConditions: ...

    def publish_conditions(self, market: MarketKey, conditions: MarketConditions) -> None: ...


class MarketInfoSource(Protocol):
    """The two info queries the checks need (`InfoClient` has them; tests pass a fake)."""

    async def meta(self, dex: str) -> Meta: ...

    async def perp_dexs(self) -> list[PerpDex]: ...


# ---------------------------------------------------------------------------------------------
# Pure comparisons


@frozen
class MarketCheck:
    """What one meta(dex) says about one market, compared with discovery."""

    changes: tuple[str, ...] = ()  # parameter differences, readable ("szDecimals 2 → 3")
    halt_reason: str | None = None  # "delisted", "not listed in meta(xyz)"; None: trading


def meta_index_of(key: MarketKey) -> int:
    """The market's index in meta(dex) at discovery, recovered from its asset id."""
    return key.asset % DEX_STRIDE if key.dex else key.asset


def perp_dex_index_of(key: MarketKey) -> int | None:
    """The dex's position in perpDexs at discovery (None for the validator dex)."""
    return (key.asset - HIP3_ASSET_BASE) // DEX_STRIDE if key.dex else None


def oi_cap_for(perp_dex: PerpDex | None, key: MarketKey) -> Decimal | None:
    """The market's cap from perpDexs, whether the exchange names the coin "xyz:TSLA" or "TSLA"."""
    if perp_dex is None:
        return None
    cap = perp_dex.oi_caps.get(key.name)
    return perp_dex.oi_caps.get(key.coin) if cap is None else cap


def compare_asset(spec: MarketSpec, asset: MetaAsset, index: int) -> tuple[str, ...]:
    """Differences between the spec found at discovery and the market's meta entry now."""
    changes: list[str] = []
    if asset.sz_decimals != spec.sz_decimals:
        changes.append(f"szDecimals {spec.sz_decimals} → {asset.sz_decimals}")
    if asset.max_leverage != spec.max_leverage:
        changes.append(f"maxLeverage {spec.max_leverage} → {asset.max_leverage}")
    if asset.only_isolated != spec.only_isolated:
        changes.append(f"onlyIsolated {spec.only_isolated} → {asset.only_isolated}")
    if index != meta_index_of(spec.key):
        changes.append(
            f"index in meta {meta_index_of(spec.key)} → {index} (asset id {spec.key.asset} is stale)"
        )
    return tuple(changes)


def check_market(spec: MarketSpec, meta: Meta) -> MarketCheck:
    """Compare one market with a fresh meta(dex) of its dex."""
    for index, asset in enumerate(meta.universe):
        if asset.name == spec.key.name:
            changes = compare_asset(spec, asset, index)
            return MarketCheck(changes=changes, halt_reason="delisted" if asset.is_delisted else None)
    return MarketCheck(halt_reason=f"not listed in meta({spec.key.dex!r})")


def check_markets(specs: Mapping[MarketKey, MarketSpec], meta: Meta) -> dict[MarketKey, MarketCheck]:
    return {market: check_market(spec, meta) for market, spec in specs.items()}


def find_perp_dex(dexs: Iterable[PerpDex], name: str) -> PerpDex | None:
    return next((d for d in dexs if d.name == name), None)


def dex_index_change(key: MarketKey, perp_dex: PerpDex) -> str | None:
    """A readable change when the dex no longer sits where the market's asset id says it did."""
    before = perp_dex_index_of(key)
    if before is None or before == perp_dex.index:
        return None
    return f"perp dex index {before} → {perp_dex.index} (asset id {key.asset} is stale)"


def initial_conditions(
    perp_dex: PerpDex | None, specs: Mapping[MarketKey, MarketSpec]
) -> dict[MarketKey, MarketConditions]:
    """Conditions at discovery: every market gets an entry, with its OI cap when perpDexs lists one."""
    conditions: dict[MarketKey, MarketConditions] = {}
    uncapped: list[str] = []
    for market in sorted(specs):
        cap = oi_cap_for(perp_dex, market)
        if cap is None:
            uncapped.append(market.name)
        conditions[market] = MarketConditions(oi_cap=cap)
    if uncapped:
        log.warning("no OI cap listed in perpDexs for %s: the oi_cap gate is off there", ", ".join(uncapped))
    return conditions


# ---------------------------------------------------------------------------------------------
# Publishing new conditions


@attrs.define
class MarketCheckStats:
    checks: int = 0
    failures: int = 0


class MarketChecker:
    """Turns fresh perpDexs / meta answers into new `MarketConditions`, published into `cells`.

    Logs each transition once.
    """

    def __init__(
        self,
        dex: str,
        specs: Mapping[MarketKey, MarketSpec],
        cells: ConditionsCells,
        on_meta: Callable[[Meta], None] | None = None,
    ) -> None:
        self.dex = dex
        self.specs = specs
        self.cells = cells
        self.on_meta = on_meta  # also told about each fresh meta (the fee table re-reads its fee fields)
        self.stats = MarketCheckStats()
        self._dex_missing = False

    def _latch_change(self, market: MarketKey, changes: Iterable[str]) -> None:
        changes = tuple(changes)
        if not changes:
            return
        cond = self.cells.conditions(market)
        if not cond.params_changed:
            self.cells.publish_conditions(market, attrs.evolve(cond, params_changed=True))
            log.warning(
                "market %s: parameters changed since discovery (%s); no new entries until restart",
                market,
                "; ".join(changes),
            )

    def apply_perp_dexs(self, dexs: Iterable[PerpDex]) -> None:
        perp_dex = find_perp_dex(dexs, self.dex)
        if perp_dex is None:
            if not self._dex_missing:
                log.warning("market check: dex %r is not in perpDexs any more; caps unchanged", self.dex)
            self._dex_missing = True
            return
        self._dex_missing = False
        for market in sorted(self.specs):
            self._latch_change(market, filter(None, [dex_index_change(market, perp_dex)]))
            cap = oi_cap_for(perp_dex, market)
            cond = self.cells.conditions(market)
            if cap is not None and cap != cond.oi_cap:
                log.info("market %s: OI cap %s → %s", market, cond.oi_cap, cap)
                self.cells.publish_conditions(market, attrs.evolve(cond, oi_cap=cap))

    def apply_meta(self, meta: Meta) -> None:
        for market, check in sorted(check_markets(self.specs, meta).items()):
            self._latch_change(market, check.changes)
            cond = self.cells.conditions(market)
            halted = check.halt_reason is not None
            if halted and not cond.halted:
                log.warning("market %s: trading halted (%s)", market, check.halt_reason)
            elif cond.halted and not halted:
                log.warning("market %s: listed again, halt cleared", market)
            if halted != cond.halted:
                self.cells.publish_conditions(market, attrs.evolve(cond, halted=halted))

    async def check_once(self, info: MarketInfoSource) -> None:
        """One round: perpDexs (HIP-3 dexs only), then meta(dex). A failed query changes nothing."""
        self.stats.checks += 1
        if self.dex:
            try:
                dexs = await info.perp_dexs()
            except InfoError as exc:
                self.stats.failures += 1
                log.warning("market check: perpDexs failed, caps unchanged: %s", exc)
            else:
                self.apply_perp_dexs(dexs)
        try:
            meta = await info.meta(self.dex)
        except InfoError as exc:
            self.stats.failures += 1
            log.warning("market check: meta(%r) failed, halts and parameters unchanged: %s", self.dex, exc)
        else:
            self.apply_meta(meta)
            if self.on_meta is not None:
                self.on_meta(meta)


async def run_market_checks(
    info: MarketInfoSource,
    dex: str,
    specs: Mapping[MarketKey, MarketSpec],
    cells: ConditionsCells,
    interval_secs: float,
    *,
    on_meta: Callable[[Meta], None] | None = None,
    task_status: trio.TaskStatus[MarketChecker] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Re-check every `interval_secs` (0 = off: returns at once); the first check is one interval
    after start, since discovery has just read the same data."""
    checker = MarketChecker(dex, specs, cells, on_meta)
    task_status.started(checker)
    if interval_secs <= 0:
        log.info("market checks off (gates.param_check_interval_secs = 0)")
        return
    while True:
        await trio.sleep(interval_secs)
        await checker.check_once(info)
