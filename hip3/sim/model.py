"""Market model: a deployer's oracle walk and makers whose quotes follow it with a lag.

The oracle moves like a HIP-3 deployer's price (reference/original-system.md §0): small noise
most of the time, occasional runs of same-direction steps (the underlying trending) and rare
jumps, and a big move sometimes gives part of itself back on the next update (an overshoot).
Makers pick each oracle update up after a lag of 1–3 s, so the thin book sits on the wrong side
of the oracle for that long after a large step — the dislocations a taker strategy trades — and
the overshoots make some of those trades lose.

A market with a structural gap has makers who quote around oracle × (1 + gap): its book sits
away from the oracle all the time, which is not edge. Makers pull a stale quote (one through the
current oracle) before a taker's order reaches it with `stale_quote_pull_probability` (cancels run
before IOC orders in a block) and then quote around the current oracle. In an internal-pricing
session (trade.xyz weekends) the book walks by itself and the oracle follows it.

Deterministic for a seed: every random stream is its own `random.Random` seeded from
(seed, coin, purpose), and time is whatever the caller passes to `step` (trio's clock in the
server, so MockClock runs are reproducible).
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterable
from decimal import ROUND_FLOOR, Decimal

from attrs import frozen

from hip3.core import MarketSpec, Side
from hip3.sim.config import ModelConfig, SimConfig
from hip3.sim.engine import Engine, Market, Order

BPS = Decimal("0.0001")
PCT = Decimal("0.01")
#: per oracle update in an internal-pricing session: how far the oracle moves toward the book's mid
INTERNAL_PULL = Decimal("0.3")


def _dec(x: float, places: int = 6) -> Decimal:
    """A float draw as an exact Decimal (rounded first so the text is platform independent)."""
    return Decimal(f"{x:.{places}f}")


def tick_at(spec: MarketSpec, px: Decimal) -> Decimal:
    return Decimal(1).scaleb(-spec.price_decimals_for(px))


def clamp_move(prev: Decimal, new: Decimal, max_pct: Decimal) -> Decimal:
    """Limit a per-update move to ±max_pct % of the previous value (0 = no limit)."""
    if max_pct <= 0:
        return new
    limit = prev * max_pct * PCT
    return min(max(new, prev - limit), prev + limit)


def clamp_band(start: Decimal, px: Decimal, multiple: Decimal) -> Decimal:
    """Keep a price within [start / multiple, start × multiple] (the 10× start-of-day rule)."""
    if multiple <= 0:
        return px
    return min(max(px, start / multiple), start * multiple)


def median3(a: Decimal, b: Decimal, c: Decimal) -> Decimal:
    return sorted((a, b, c))[1]


@frozen
class Dynamics:
    """Oracle runs, overshoots and maker-lag spread (not [model] keys yet; the defaults are the shipped model).

    Per market and oracle update: a run starts with `trend_probability` and lasts
    `trend_updates_min..max` updates, each a step of `trend_step_min_bps..max` in one direction
    (plus the usual noise). A move of at least `revert_min_bps` (a jump or a run's step) is followed
    with `revert_probability` by a move back of `revert_fraction_min..max` of it, which ends a run.
    Makers see each oracle update `maker_lag ± maker_lag_jitter` seconds after it happened.
    """

    trend_probability: float = 0.06
    trend_updates_min: int = 2
    trend_updates_max: int = 5
    trend_step_min_bps: float = 6.0
    trend_step_max_bps: float = 28.0
    revert_probability: float = 0.3
    revert_min_bps: float = 12.0
    revert_fraction_min: float = 0.4
    revert_fraction_max: float = 1.0
    maker_lag_jitter: float = 1.0


DYNAMICS = Dynamics()


class MarketModel:
    """One market's oracle walk and maker quotes."""

    def __init__(self, market: Market, cfg: ModelConfig, seed: int, dynamics: Dynamics = DYNAMICS) -> None:
        self.spec = market.spec
        self.start_px = market.start_px
        self.cfg = cfg
        self.dyn = dynamics
        coin = market.spec.key.coin
        self.oracle_rng = random.Random(f"{seed}:{coin}:oracle")
        self.book_rng = random.Random(f"{seed}:{coin}:book")
        self.lag_rng = random.Random(f"{seed}:{coin}:lag")
        self.pull_rng = random.Random(f"{seed}:{coin}:pull")
        self.gap = market.structural_gap_bps * BPS  # makers centre on oracle × (1 + gap)
        self.book_ref: Decimal | None = None  # the book's own walk in an internal-pricing session
        # (when makers see it, oracle): visibility times never decrease, so the book replays the
        # oracle's path in order, each value 1–3 s late.
        self.history: deque[tuple[float, Decimal]] = deque(maxlen=256)
        self.trend_left = 0  # updates left in the current run
        self.trend_dir = 0  # +1 / -1 while a run lasts
        self.revert_bps = Decimal(0)  # the overshoot to give back on the next update (signed)
        self.overshooting = False  # the last update is an overshoot: makers don't chase it

    def _move_bps(self) -> Decimal:
        """The next update's move in bps: noise, then a pending give-back, a run's step, or a jump."""
        rng, cfg, dyn = self.oracle_rng, self.cfg, self.dyn
        move = _dec(rng.gauss(0.0, float(cfg.oracle_vol_bps)))
        self.overshooting = False
        if self.revert_bps:
            move += self.revert_bps
            self.revert_bps = Decimal(0)
            self.trend_left = 0  # an overshoot coming back ends the run
            return move
        if self.trend_left == 0 and rng.random() < dyn.trend_probability:
            self.trend_left = rng.randint(dyn.trend_updates_min, dyn.trend_updates_max)
            self.trend_dir = 1 if rng.random() < 0.5 else -1
        if self.trend_left > 0:
            self.trend_left -= 1
            move += self.trend_dir * _dec(rng.uniform(dyn.trend_step_min_bps, dyn.trend_step_max_bps))
        elif rng.random() < cfg.jump_probability:
            size = _dec(rng.uniform(float(cfg.jump_min_bps), float(cfg.jump_max_bps)))
            move += size if rng.random() < 0.5 else -size
        if abs(move) >= Decimal(str(dyn.revert_min_bps)) and rng.random() < dyn.revert_probability:
            fraction = _dec(rng.uniform(dyn.revert_fraction_min, dyn.revert_fraction_max))
            self.revert_bps = -move * fraction
            self.overshooting = True
        return move

    def lag(self) -> float:
        """How long after an oracle update the makers requote around it (≥ 0)."""
        jitter = self.dyn.maker_lag_jitter
        return max(0.0, self.cfg.maker_lag + self.lag_rng.uniform(-jitter, jitter))

    def record(self, at: float, oracle: Decimal) -> None:
        """Remember an oracle update made at `at`; makers see it after a lag, never before an earlier one.

        Makers fade an overshoot (they keep quoting the previous value until the oracle comes back),
        so a taker who bought the "stale" ask below a spike was wrong.
        """
        if self.overshooting:
            self.overshooting = False
            return
        visible = at + self.lag()
        if self.history:
            visible = max(visible, self.history[-1][0])
        self.history.append((visible, oracle))

    def next_oracle(self, prev: Decimal) -> Decimal:
        """One deployer update (see `_move_bps`), clamped, on the price grid."""
        move_bps = self._move_bps()
        new = prev * (1 + move_bps * BPS)
        new = clamp_move(prev, new, self.cfg.oracle_max_move_pct)
        new = clamp_band(self.start_px, new, self.cfg.price_band_multiple)
        return self.spec.round_price(new, up=False)

    def next_mark(
        self, prev_mark: Decimal, oracle: Decimal, bid: Decimal | None, ask: Decimal | None
    ) -> Decimal:
        """Mark = median(oracle, best bid, best ask), moved at most mark_max_move_pct per update."""
        raw = median3(oracle, bid, ask) if bid is not None and ask is not None else oracle
        mark = clamp_move(prev_mark, raw, self.cfg.mark_max_move_pct)
        mark = clamp_band(self.start_px, mark, self.cfg.price_band_multiple)
        return self.spec.round_price(mark, up=False)

    def reference(self, now: float, current: Decimal) -> Decimal:
        """The newest oracle the makers have seen by `now`: what the slow makers are quoting around."""
        ref = self.history[0][1] if self.history else current
        for visible, px in self.history:
            if visible <= now:
                ref = px
            else:
                break
        return ref

    def catch_up(self, now: float, oracle: Decimal) -> None:
        """The makers see `oracle` now: updates they had not seen yet are superseded by it."""
        while self.history and self.history[-1][0] > now:
            self.history.pop()
        self.history.append((now, oracle))

    def quotes(self, ref: Decimal) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        """Maker levels around `ref` (shifted by the structural gap): the first at ± half spread,
        then one step apart, random sizes."""
        cfg, spec, rng = self.cfg, self.spec, self.book_rng
        ref = ref * (1 + self.gap)
        half = ref * cfg.maker_half_spread_bps * BPS
        step = ref * cfg.maker_level_step_bps * BPS
        bids: list[tuple[Decimal, Decimal]] = []
        asks: list[tuple[Decimal, Decimal]] = []
        for i in range(cfg.maker_levels):
            bid = spec.round_price(ref - half - step * i, up=False)
            if bids and bid >= bids[-1][0]:
                bid = spec.round_price(bids[-1][0] - tick_at(spec, bids[-1][0]), up=False)
            ask = spec.round_price(ref + half + step * i, up=True)
            if asks and ask <= asks[-1][0]:
                ask = spec.round_price(asks[-1][0] + tick_at(spec, asks[-1][0]), up=True)
            lo, hi = float(cfg.maker_level_notional_min), float(cfg.maker_level_notional_max)
            for px, levels in ((bid, bids), (ask, asks)):
                notional = _dec(rng.uniform(lo, hi), 2)
                sz = (notional / px).quantize(spec.lot, rounding=ROUND_FLOOR)
                levels.append((px, max(sz, spec.lot)))
        return bids, asks


class DexModel:
    """Drives every market of the dex: oracle updates every ~oracle_interval, maker requotes."""

    def __init__(
        self, engine: Engine, config: SimConfig, start: float, dynamics: Dynamics = DYNAMICS
    ) -> None:
        self.engine = engine
        self.cfg = config.model
        self.rng = random.Random(f"{config.seed}:deployer")
        self.models = {
            coin: MarketModel(m, config.model, config.seed, dynamics) for coin, m in engine.markets.items()
        }
        self.next_oracle_at = start + self._interval()
        self.next_requote_at = start
        self.now = start  # the time of the last step (stale-quote pulls between steps happen then)
        #: coins whose oracle is priced internally (follows the book)
        self.internal: set[str] = set(engine.markets) if config.model.internal_pricing else set()
        #: told the coin each time makers pull a stale quote before a taker's order
        self.on_pull: Callable[[str], None] | None = None
        for coin, model in self.models.items():
            model.history.append((start, engine.markets[coin].oracle_px))
        engine.before_taker = self.before_taker

    def set_internal_pricing(self, on: bool, coins: Iterable[str] | None = None) -> None:
        """Start or end an internal-pricing session (all markets, or the given coins)."""
        names = set(self.engine.markets) if coins is None else {self.engine.coin_name(c) for c in coins}
        for name in names:
            self.engine.market(name)  # unknown coins raise KeyError
        if on:
            self.internal |= names
        else:
            self.internal -= names
            for name in names:
                self.models[name].book_ref = None

    def before_taker(self, market: Market, order: Order) -> None:
        """Within a block cancels run first: makers may pull a quote the taker would hit through the oracle."""
        if market.book_frozen or market.halted or market.coin in self.internal:
            return
        model = self.models.get(market.coin)
        if model is None or self.cfg.stale_quote_pull_probability <= 0:
            return
        fair = market.oracle_px * (1 + model.gap)
        maker = self.engine.maker_address
        if order.side is _BUY:
            stale = any(
                o.user == maker and o.limit_px < fair and o.limit_px <= order.limit_px for o in market.asks
            )
        else:
            stale = any(
                o.user == maker and o.limit_px > fair and o.limit_px >= order.limit_px for o in market.bids
            )
        if not stale or model.pull_rng.random() >= self.cfg.stale_quote_pull_probability:
            return
        model.catch_up(self.now, market.oracle_px)
        bids, asks = model.quotes(market.oracle_px)
        self.engine.replace_maker_quotes(market.coin, bids, asks)
        if self.on_pull is not None:
            self.on_pull(market.coin)

    def _interval(self) -> float:
        jitter = self.rng.uniform(-0.2, 0.2)
        return max(0.5, self.cfg.oracle_interval + jitter)

    def step(self, now: float) -> None:
        """Advance to `now`: run every oracle update and requote that fell due."""
        self.now = now
        while now >= min(self.next_oracle_at, self.next_requote_at):
            if self.next_requote_at <= self.next_oracle_at:
                self._requote(self.next_requote_at)
                self.next_requote_at += self.cfg.maker_requote_interval
            else:
                self._oracle_update(self.next_oracle_at)
                self.next_oracle_at += self._interval()

    def _oracle_update(self, at: float) -> None:
        for coin, model in self.models.items():
            market = self.engine.markets[coin]
            if market.halted:
                continue
            if coin in self.internal:
                self._internal_update(at, market, model)
            else:
                if not market.oracle_frozen:
                    self.engine.set_oracle(coin, model.next_oracle(market.oracle_px), freeze=False)
                model.record(at, market.oracle_px)
            bid, ask = market.best(_BUY), market.best(_SELL)
            mark = model.next_mark(
                market.mark_px,
                market.oracle_px,
                bid.limit_px if bid else None,
                ask.limit_px if ask else None,
            )
            self.engine.update_mark(coin, mark)

    def _internal_update(self, at: float, market: Market, model: MarketModel) -> None:
        """Internal pricing: the book walks (makers see it at once) and the oracle is pulled toward it."""
        if model.book_ref is None:
            model.book_ref = model.reference(at, market.oracle_px)
        model.book_ref = model.next_oracle(model.book_ref)
        model.catch_up(at, model.book_ref)
        mid = market.mid()
        if mid is not None and not market.oracle_frozen:
            centre = mid / (1 + model.gap)
            pulled = market.oracle_px + (centre - market.oracle_px) * INTERNAL_PULL
            self.engine.set_oracle(market.coin, model.spec.round_price(pulled, up=False), freeze=False)

    def _requote(self, at: float) -> None:
        for coin, model in self.models.items():
            market = self.engine.markets[coin]
            if market.halted or market.book_frozen:
                continue
            bids, asks = model.quotes(model.reference(at, market.oracle_px))
            self.engine.replace_maker_quotes(coin, bids, asks)


_BUY, _SELL = Side.BUY, Side.SELL
