"""The simulator's ground truth for scoring a run: every dislocation, when it opened, its best edge, when it closed.

A dislocation is a stretch of time during which a market's best ask sits below its fair value (a
buy captures it) or its best bid above it (a sell does) by more than the round-trip cost: two
taker fees at the base rates for that asset, the exit through the caught-up book (the makers'
first level on the tick grid, per side) and `model.dislocation_exit_cost_bps`. Fair value is
the oracle, shifted by the market's structural gap (a book that always sits away from the oracle
is not edge). Markets in an internal-pricing session record nothing: there the oracle follows
the book, and a gap between them means nothing.

`DislocationLog.observe` is called once per block and after every action; `records()` returns
frozen `Dislocation`s (the still-open ones with `closed_ms = None`) in the order they opened.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal

import attrs
from attrs import define, field, frozen

from hip3.core import Side

BPS = Decimal("0.0001")


@frozen
class Dislocation:
    """One dislocation. Times are exchange ms (the clock of fills and bbo frames)."""

    coin: str
    #: the taker side that captures it: BUY when asks sit below fair value, SELL when bids sit above
    side: Side
    opened_ms: int
    closed_ms: int | None
    #: the round-trip cost (bps) the edge had to beat
    cost_bps: Decimal
    #: the largest edge seen (bps of fair value), and when, at what price and displayed size
    best_edge_bps: Decimal
    best_ms: int
    best_px: Decimal
    best_sz: Decimal
    #: the oracle and fair value (oracle shifted by the structural gap) at the best edge
    oracle_px: Decimal
    fair_px: Decimal
    #: (taker address, size) for every trade on the captured side while it was open, in order
    taken: tuple[tuple[str, Decimal], ...] = ()
    #: how often makers pulled a stale quote in this market before a taker's order reached it
    pulled: int = 0

    @property
    def is_open(self) -> bool:
        return self.closed_ms is None

    @property
    def duration_ms(self) -> int | None:
        return None if self.closed_ms is None else self.closed_ms - self.opened_ms

    def taken_by(self, user: str) -> Decimal:
        """Size `user` took from the stale side while this dislocation was open."""
        user = user.lower()
        return sum((sz for who, sz in self.taken if who == user), Decimal(0))


@define
class _Open:
    record: Dislocation
    taken: list[tuple[str, Decimal]] = field(factory=list)
    pulled: int = 0

    def frozen(self, closed_ms: int | None) -> Dislocation:
        return attrs.evolve(self.record, closed_ms=closed_ms, taken=tuple(self.taken), pulled=self.pulled)


def edge_bps(side: Side, px: Decimal, fair: Decimal) -> Decimal:
    """What taking `px` on `side` earns against `fair`, in bps of fair (negative = no edge)."""
    diff = fair - px if side is Side.BUY else px - fair
    return diff / fair / BPS


class DislocationLog:
    """Open dislocations per coin and the closed ones, in order of opening."""

    def __init__(self) -> None:
        self._open: dict[str, _Open] = {}
        self._closed: list[Dislocation] = []

    def observe(
        self,
        now_ms: int,
        coin: str,
        *,
        oracle: Decimal,
        gap_bps: Decimal,
        cost_bps: Decimal | Mapping[Side, Decimal],
        best_bid: tuple[Decimal, Decimal] | None,
        best_ask: tuple[Decimal, Decimal] | None,
        informative: bool = True,
    ) -> None:
        """Look at one market's top of book now; open, extend or close its dislocation."""
        fair = oracle * (1 + gap_bps * BPS)
        found: tuple[Side, Decimal, Decimal, Decimal, Decimal] | None = None
        if informative and oracle > 0:
            for side, level in ((Side.BUY, best_ask), (Side.SELL, best_bid)):
                if level is None:
                    continue
                edge = edge_bps(side, level[0], fair)
                cost = cost_bps[side] if isinstance(cost_bps, Mapping) else cost_bps
                if edge > cost:
                    found = (side, edge, level[0], level[1], cost)
        current = self._open.get(coin)
        if current is not None and (found is None or found[0] is not current.record.side):
            self._closed.append(current.frozen(now_ms))
            del self._open[coin]
            current = None
        if found is None:
            return
        side, edge, px, sz, cost = found
        if current is None:
            self._open[coin] = _Open(
                Dislocation(
                    coin=coin,
                    side=side,
                    opened_ms=now_ms,
                    closed_ms=None,
                    cost_bps=cost,
                    best_edge_bps=edge,
                    best_ms=now_ms,
                    best_px=px,
                    best_sz=sz,
                    oracle_px=oracle,
                    fair_px=fair,
                )
            )
        elif edge > current.record.best_edge_bps:
            current.record = attrs.evolve(
                current.record,
                best_edge_bps=edge,
                best_ms=now_ms,
                best_px=px,
                best_sz=sz,
                oracle_px=oracle,
                fair_px=fair,
            )

    def note_trade(self, coin: str, taker_side: Side, taker: str, sz: Decimal) -> None:
        """A trade in `coin`: counted when it took from the side an open dislocation sits on."""
        current = self._open.get(coin)
        if current is not None and current.record.side is taker_side:
            current.taken.append((taker.lower(), sz))

    def note_pulled(self, coin: str) -> None:
        current = self._open.get(coin)
        if current is not None:
            current.pulled += 1

    def records(self) -> tuple[Dislocation, ...]:
        """Every dislocation so far, closed and open, in the order they opened."""
        out = self._closed + [o.frozen(None) for o in self._open.values()]
        return tuple(sorted(out, key=lambda d: (d.opened_ms, d.coin)))

    def close_all(self, now_ms: int, coins: Iterable[str] | None = None) -> None:
        for coin in list(self._open if coins is None else coins):
            current = self._open.pop(coin, None)
            if current is not None:
                self._closed.append(current.frozen(now_ms))


__all__ = ["Dislocation", "DislocationLog", "edge_bps"]
