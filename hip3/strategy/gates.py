"""Market-data gates: per market, pure, failing closed (reference/original-system.md §4.1).

`evaluate_gates` runs the gates in a fixed order and stops at the first block. The order matters:
the spread-shock EWMA is fed only books that got past the freshness and sanity gates, so stale
or one-sided data never contaminates it. There is one EWMA per market.

`GateLog` turns verdicts into log lines on transitions only, so a blocked market does not flood
the log.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from attrs import frozen

from hip3.core import MarketKey
from hip3.hyperliquid.events import Bbo
from hip3.market.cells import BPS, MarketState, bbo_problem
from hip3.params import Bps, CountOrOff, Fraction, Ge, SecsOrOff, Warn, param, parameters
from hip3.strategy.sanity import oracle_sanity_problem

GATE_ORDER = (
    "bbo_age",
    "ctx_age",
    "time_regression",
    "session",
    "oracle_stale",
    "oracle_sanity",
    "mark_mid",
    "spread_shock",
    "oi_cap",
    "param_change",
    "halt",
    "baseline",
)


@frozen(field_transformer=parameters("gates"))
class GateParams:
    """`[gates]`: per-market data gates. A limit of 0 turns its gate off where noted."""

    # Off by default: the exchange sends bbo only on change, so a quiet book (the lagging book this
    # strategy trades) is an old one; a dead feed is caught by ctx_age and the socket's silence timeout.
    max_bbo_age_ms: CountOrOff = param(0, "block a market whose best bid/offer is older (ms; 0 = off)")
    max_ctx_age_ms: Annotated[
        int,
        Ge(0),
        Warn(lambda v: v == 0, "the oracle-age gate is off: the detector may trade against a stale oracle"),
    ] = param(8000, "block a market whose oracle/mark context is older (ms; 0 = off)")
    # Off by default: the mark follows the oracle, so a book lagging the oracle is exactly a wide
    # mark-mid gap; broken books (one-sided, crossed) are refused by the book checks anyway.
    max_mark_mid_divergence_bps: Bps = param(
        Decimal(0), "block when mark and mid are further apart (bps of mid; 0 = off)"
    )
    max_oracle_mark_bps: Annotated[
        Decimal, Ge(0), Warn(lambda v: v == 0, "the oracle sanity bound (oracle vs mark) is off")
    ] = param(
        Decimal(200),
        "block when the oracle is further than this from the mark (bps; 0 = off): oracle not trusted",
    )
    max_edge_bps: Annotated[
        Decimal, Ge(0), Warn(lambda v: v == 0, "the oracle sanity bound (edge ceiling) is off")
    ] = param(
        Decimal(200), "block when the edge against the oracle exceeds this (bps; 0 = off): oracle not trusted"
    )
    max_oracle_unchanged_secs: SecsOrOff = param(
        60.0, "block entries when a market's oracle has not changed for this long (s; 0 = off)"
    )
    spread_ewma_alpha: Fraction = param(Decimal("0.05"), "smoothing of the spread average")
    spread_shock_multiplier: Annotated[Decimal, Ge(0)] = param(
        Decimal(3), "block when the spread exceeds this multiple of its average (0 = off)"
    )
    spread_shock_min_samples: CountOrOff = param(20, "spread samples before the spread-shock gate judges")
    max_oi_fraction: Fraction = param(Decimal("0.95"), "block entries at this fraction of the OI cap")
    time_regression_tolerance_ms: CountOrOff = param(
        250, "exchange time going back by at most this much is ignored (ms)"
    )
    time_regression_hold_secs: SecsOrOff = param(
        2.0, "block this long after exchange time went back by more than the tolerance (s; 0 = off)"
    )
    # Read by the market-checks task (`hip3.market.checks`), which feeds the halt/param-change gates.
    param_check_interval_secs: SecsOrOff = param(300.0, "re-read market parameters this often (0 = off)")


@frozen
class GateState:
    """Per-market gate memory: the spread EWMA (bps), how many books fed it, and which book was last fed."""

    spread_ewma: Decimal | None = None
    samples: int = 0
    # The last book fed in: re-evaluating the same book (a ctx-only update) adds no sample.
    sampled_bbo_at: float | None = None
    sampled_bbo: Bbo | None = None
    shock_detail: str | None = None  # that book's spread-shock verdict (None: no shock)


@frozen
class GateVerdict:
    ok: bool
    gate: str | None = None
    detail: str = ""


PASS = GateVerdict(ok=True)


def _block(gate: str, detail: str) -> GateVerdict:
    return GateVerdict(ok=False, gate=gate, detail=detail)


def _age_ms(at: float | None, now: float) -> int | None:
    return None if at is None else round((now - at) * 1000)


def _fmt_bps(value: Decimal) -> str:
    return f"{value:.1f}"


def evaluate_gates(
    ms: MarketState,
    gs: GateState,
    params: GateParams,
    *,
    oi_cap: Decimal | None,
    halted: bool,
    params_changed: bool,
    now: float,
    session_block: str | None = None,
    max_edge_bps: Decimal | None = None,
    warming_up: str | None = None,
    baseline_bps: Decimal | None = None,
) -> tuple[GateVerdict, GateState]:
    """The first gate that blocks `ms` (or PASS) and the market's new gate state.

    `oi_cap` is the market's open-interest cap in USD notional (None: unknown, the gate passes);
    open interest (in coins) is valued at the mark price. `halted` and `params_changed` are
    latched facts the caller learned elsewhere (trading halted; market parameters changed since
    discovery). `session_block` names the calendar session that blocks entries now (None: none);
    `max_edge_bps` is the market's own edge ceiling (None: `params.max_edge_bps`); `warming_up`
    says why the detector's structural baseline is not ready yet (None: ready); `baseline_bps` is
    that baseline once measured (the edge ceiling also bounds the edge measured from it).
    """
    # 1. bbo_age — no book at all counts as infinitely old.
    if params.max_bbo_age_ms > 0:
        age = _age_ms(ms.bbo_at, now)
        if ms.bbo is None or age is None:
            return _block("bbo_age", "no bbo since (re)connect"), gs
        if age > params.max_bbo_age_ms:
            return _block("bbo_age", f"{age} ms > {params.max_bbo_age_ms} ms"), gs

    # 2. ctx_age — the oracle's freshness is the context's receive age, not the oracle value's age:
    # an oracle that legitimately stays put must not look stale.
    if params.max_ctx_age_ms > 0:
        age = _age_ms(ms.ctx_at, now)
        if ms.ctx is None or age is None:
            return _block("ctx_age", "no asset context since (re)connect"), gs
        if age > params.max_ctx_age_ms:
            return _block("ctx_age", f"{age} ms > {params.max_ctx_age_ms} ms"), gs

    # 3. time_regression — hold until the exchange clock has run forward for a while.
    # A regression within the tolerance (exchange timestamps of one block are not strictly ordered)
    # is ignored; a real one holds the market briefly.
    if ms.time_regressed_at is not None and ms.time_regression_ms > params.time_regression_tolerance_ms:
        since = now - ms.time_regressed_at
        if since < params.time_regression_hold_secs:
            return _block(
                "time_regression",
                f"exchange time went backwards {since:.1f} s ago (hold {params.time_regression_hold_secs:g} s)",
            ), gs

    # Oracle sessions: while the deployer prices the oracle internally it follows the book, and a
    # "lag" means nothing (trade.xyz weekend, hyperliquid.md §11).
    if session_block is not None:
        return _block("session", f"{session_block}: the oracle follows the book"), gs

    # An oracle that has not moved for long is not an external price any more (feed gap).
    if params.max_oracle_unchanged_secs > 0 and ms.oracle_changed_at is not None:
        unchanged = now - ms.oracle_changed_at
        if unchanged > params.max_oracle_unchanged_secs:
            return _block(
                "oracle_stale",
                f"oracle unchanged for {unchanged:.0f} s (> {params.max_oracle_unchanged_secs:g} s)",
            ), gs

    # The oracle sanity bound: a deployer's oracle can be wrong (issue 12 item 3).
    if ms.ctx is not None:
        problem = oracle_sanity_problem(
            ms.ctx.oracle_px,
            ms.ctx.mark_px,
            ms.bbo.bid.px if ms.bbo is not None and ms.bbo.bid is not None else None,
            ms.bbo.ask.px if ms.bbo is not None and ms.bbo.ask is not None else None,
            max_oracle_mark_bps=params.max_oracle_mark_bps,
            max_edge_bps=params.max_edge_bps if max_edge_bps is None else max_edge_bps,
            baseline_bps=baseline_bps,
        )
        if problem is not None:
            return _block("oracle_sanity", problem), gs

    # 4. mark_mid — a book far from the mark is not the market the mark describes; no book ⇒ block.
    if params.max_mark_mid_divergence_bps > 0:
        if ms.ctx is None:
            return _block("mark_mid", "no asset context (mark unknown)"), gs
        problem = bbo_problem(ms.bbo)
        if problem is not None:
            return _block("mark_mid", problem), gs
        mid = ms.mid
        assert mid is not None
        divergence = abs(ms.ctx.mark_px - mid) / mid * BPS
        if divergence > params.max_mark_mid_divergence_bps:
            return _block(
                "mark_mid",
                f"|mark {ms.ctx.mark_px} − mid {mid}| = {_fmt_bps(divergence)} bps > "
                f"{params.max_mark_mid_divergence_bps} bps",
            ), gs

    # 5. spread_shock — invalid books are never fed to the EWMA (and block: nothing to trade).
    spread = ms.spread_bps
    if spread is None:
        return _block("spread_shock", bbo_problem(ms.bbo) or "invalid book"), gs
    new_gs = gs
    shock = gs.shock_detail
    if (ms.bbo_at, ms.bbo) != (gs.sampled_bbo_at, gs.sampled_bbo):
        ewma = gs.spread_ewma
        shock = None
        if (
            params.spread_shock_multiplier > 0
            and ewma is not None
            and gs.samples >= params.spread_shock_min_samples
            and spread > ewma * params.spread_shock_multiplier
        ):
            shock = (
                f"spread {_fmt_bps(spread)} bps > {params.spread_shock_multiplier} × average "
                f"{_fmt_bps(ewma)} bps"
            )
        # The sample is judged against the average before it, then joins it, so a lasting change
        # of regime stops blocking after a while.
        alpha = params.spread_ewma_alpha
        new_gs = GateState(
            spread_ewma=spread if ewma is None else alpha * spread + (1 - alpha) * ewma,
            samples=gs.samples + 1,
            sampled_bbo_at=ms.bbo_at,
            sampled_bbo=ms.bbo,
            shock_detail=shock,
        )
    # else: the same book as the last sample (a ctx-only update) keeps its verdict and adds no sample.
    if shock is not None:
        return _block("spread_shock", shock), new_gs

    # 6. oi_cap — near the cap the exchange refuses increases; unknown cap ⇒ pass.
    if oi_cap is not None:
        if ms.ctx is None:
            return _block("oi_cap", "no asset context (open interest unknown)"), new_gs
        oi_notional = ms.ctx.open_interest * ms.ctx.mark_px
        limit = oi_cap * params.max_oi_fraction
        if oi_notional >= limit:
            return _block(
                "oi_cap", f"open interest ${oi_notional:.0f} >= {params.max_oi_fraction} × cap ${oi_cap}"
            ), new_gs

    # 7. param_change — latched by the caller until the market is re-validated.
    if params_changed:
        return _block("param_change", "market parameters changed since discovery"), new_gs

    # 8. halt
    if halted:
        return _block("halt", "trading halted"), new_gs

    # The detector's structural baseline must be measured before an edge means anything.
    if warming_up is not None:
        return _block("baseline", warming_up), new_gs

    return PASS, new_gs


class GateLog:
    """Remembers the last verdict per market; `observe` returns a log line only when it changes."""

    def __init__(self) -> None:
        self._blocked: dict[MarketKey, tuple[str, float]] = {}  # market -> (gate, blocked since)

    def observe(self, market: MarketKey, verdict: GateVerdict, now: float) -> str | None:
        previous = self._blocked.get(market)
        if verdict.ok:
            if previous is None:
                return None
            del self._blocked[market]
            return f"market {market} unblocked after {now - previous[1]:.1f} s (was {previous[0]})"
        gate = verdict.gate or "?"
        if previous is None:
            self._blocked[market] = (gate, now)
            return f"market {market} blocked by {gate}: {verdict.detail}"
        if previous[0] != gate:
            self._blocked[market] = (gate, previous[1])
            return f"market {market} now blocked by {gate}: {verdict.detail}"
        return None

    def blocked_markets(self) -> dict[MarketKey, str]:
        """Markets blocked right now and by which gate (for status displays)."""
        return {m: gate for m, (gate, _) in self._blocked.items()}
