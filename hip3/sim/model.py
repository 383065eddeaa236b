"""Market model: a deployer's oracle random walk and makers whose quotes follow it with a lag.

Deterministic for a seed: every random stream is its own `random.Random` seeded from
(seed, coin, purpose), and time is whatever the caller passes to `step` (trio's clock in the
server, so MockClock runs are reproducible). The lag is what makes the book sometimes sit on the
wrong side of the oracle by more than fees — the dislocations a taker strategy trades.
"""

from __future__ import annotations

import random
from collections import deque
from decimal import ROUND_FLOOR, Decimal

from hip3.core import MarketSpec, Side
from hip3.sim.config import ModelConfig, SimConfig
from hip3.sim.engine import Engine, Market

BPS = Decimal("0.0001")
PCT = Decimal("0.01")


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


class MarketModel:
    """One market's oracle walk and maker quotes."""

    def __init__(self, market: Market, cfg: ModelConfig, seed: int) -> None:
        self.spec = market.spec
        self.start_px = market.start_px
        self.cfg = cfg
        coin = market.spec.key.coin
        self.oracle_rng = random.Random(f"{seed}:{coin}:oracle")
        self.book_rng = random.Random(f"{seed}:{coin}:book")
        self.history: deque[tuple[float, Decimal]] = deque(maxlen=256)

    def next_oracle(self, prev: Decimal) -> Decimal:
        """One deployer update: Gaussian step plus an occasional jump, clamped, on the price grid."""
        rng = self.oracle_rng
        move_bps = _dec(rng.gauss(0.0, float(self.cfg.oracle_vol_bps)))
        if rng.random() < self.cfg.jump_probability:
            size = _dec(rng.uniform(float(self.cfg.jump_min_bps), float(self.cfg.jump_max_bps)))
            move_bps += size if rng.random() < 0.5 else -size
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
        """The oracle as it was `maker_lag` seconds ago: what the slow makers are quoting around."""
        ref = self.history[0][1] if self.history else current
        for t, px in self.history:
            if t <= now - self.cfg.maker_lag:
                ref = px
            else:
                break
        return ref

    def quotes(self, ref: Decimal) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        """Maker levels around `ref`: the first at ± half spread, then one step apart, random sizes."""
        cfg, spec, rng = self.cfg, self.spec, self.book_rng
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

    def __init__(self, engine: Engine, config: SimConfig, start: float) -> None:
        self.engine = engine
        self.cfg = config.model
        self.rng = random.Random(f"{config.seed}:deployer")
        self.models = {coin: MarketModel(m, config.model, config.seed) for coin, m in engine.markets.items()}
        self.next_oracle_at = start + self._interval()
        self.next_requote_at = start
        for coin, model in self.models.items():
            model.history.append((start, engine.markets[coin].oracle_px))

    def _interval(self) -> float:
        jitter = self.rng.uniform(-0.2, 0.2)
        return max(0.5, self.cfg.oracle_interval + jitter)

    def step(self, now: float) -> None:
        """Advance to `now`: run every oracle update and requote that fell due."""
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
            if not market.oracle_frozen:
                self.engine.set_oracle(coin, model.next_oracle(market.oracle_px), freeze=False)
            model.history.append((at, market.oracle_px))
            bid, ask = market.best(_BUY), market.best(_SELL)
            mark = model.next_mark(
                market.mark_px,
                market.oracle_px,
                bid.limit_px if bid else None,
                ask.limit_px if ask else None,
            )
            self.engine.update_mark(coin, mark)

    def _requote(self, at: float) -> None:
        for coin, model in self.models.items():
            market = self.engine.markets[coin]
            if market.halted or market.book_frozen:
                continue
            bids, asks = model.quotes(model.reference(at, market.oracle_px))
            self.engine.replace_maker_quotes(coin, bids, asks)


_BUY, _SELL = Side.BUY, Side.SELL
