"""Reconciliation with the exchange's picture (DESIGN.md rule 4): fenced snapshots.

A snapshot is fetched after the tracker handed out a fence (its sequence number). It may correct a
market only if the market's position has not moved since the fence and no order there can still
change it unseen; a snapshot that says "flat" while we hold something is believed only when the
next one says so too (an empty answer can be bogus). Orders the snapshot provably contains are
marked absorbed: their later fills record their trade ids and fees but never move the position
again; the closed PnL of the part the tracker had not applied itself counts once (a correction
realizes nothing).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from decimal import Decimal

from attrs import define, field

from hip3.core import MarketKey
from hip3.trading.messages import PositionEvent
from hip3.trading.reports import AccountSnapshot
from hip3.trading.tracker.orders import Orders, TrackedOrder
from hip3.trading.tracker.positions import ZERO, Positions
from hip3.trading.tracker.stats import TrackerStats

log = logging.getLogger("hip3.trading.tracker")


@define
class _FlatSuspect:
    """A fenced snapshot said flat while we hold a position: remembered, not applied."""

    position_seq: int
    size: Decimal


@define
class Fences:
    """The tracker's sequence number and what snapshots are compared against."""

    seq: int = 0
    # Last sequence number at which each market's *position* changed: what a fenced snapshot must
    # not predate. Orders that end unfilled do not move it, so they never block a resync.
    position_seq: dict[MarketKey, int] = field(factory=dict)
    flat_suspects: dict[MarketKey, _FlatSuspect] = field(factory=dict)
    # Exchange time (ms) of the newest snapshot adopted for each market: a fill without a
    # reservation from before it is already in that snapshot.
    snapshot_time: dict[MarketKey, int] = field(factory=dict)

    def touch(self) -> None:
        """Something changed: publish a new view."""
        self.seq += 1

    def moved(self, market: MarketKey) -> None:
        """The position in `market` changed: snapshots fenced before now must not correct it."""
        self.seq += 1
        self.position_seq[market] = self.seq
        self.flat_suspects.pop(market, None)

    def in_snapshot(self, market: MarketKey, time_ms: int) -> bool:
        """True if a fill at exchange time `time_ms` is no newer than the last snapshot adopted."""
        return time_ms <= self.snapshot_time.get(market, -1)


@define
class Reconciler:
    markets: Mapping[str, MarketKey]
    positions: Positions
    orders: Orders
    fences: Fences
    stats: TrackerStats

    def apply_snapshot(
        self, fence: int, snapshot: AccountSnapshot, now: float, *, dex: str | None = None
    ) -> list[PositionEvent]:
        """Correct quiet markets from a snapshot fetched after the tracker's seq was `fence`.

        `dex` limits the comparison to that dex's markets (clearinghouseState is per dex); None
        compares every configured market.
        """
        exchange: dict[MarketKey, tuple[Decimal, Decimal | None]] = {}
        for reported in snapshot.positions:
            market = self.markets.get(reported.coin)
            if market is None or (dex is not None and market.dex != dex):
                continue
            exchange[market] = (reported.size, reported.entry_px)
        # An abandoned order does not keep its market busy for a snapshot fenced after the abandonment:
        # that snapshot is the only way left to learn what the order did.
        busy = {e.market for e in self.orders.open_entries() if not e.absorbable(fence)}
        events: list[PositionEvent] = []
        for market in sorted(set(self.markets.values())):
            if dex is not None and market.dex != dex:
                continue
            if self.fences.position_seq.get(market, 0) > fence or market in busy:
                self.stats.skipped_snapshot_markets += 1
                continue
            theirs, their_px = exchange.get(market, (ZERO, None))
            ours = self.positions.size(market)
            if theirs == ours:
                releases = any(e.is_open for e in self._absorbable(market, fence))
                if theirs == 0 and releases and not self._flat_confirmed(market, ours):
                    # An abandoned order is released on "flat" only when a second snapshot says so too.
                    continue
                self.fences.flat_suspects.pop(market, None)
                self._adopted(market, snapshot)
                if self._absorb(market, fence, now):
                    self.fences.touch()  # a reservation ended: publish the view
                continue
            if theirs == 0 and not self._flat_confirmed(market, ours):
                continue
            corrected = self.positions.correct(market, theirs, their_px, now)
            if corrected:
                self.stats.corrections += 1
                self.fences.moved(market)
                self._adopted(market, snapshot)
                self._absorb(market, fence, now)
            events.extend(corrected)
        return events

    def _adopted(self, market: MarketKey, snapshot: AccountSnapshot) -> None:
        """The tracker now holds what the snapshot says for `market`: fills of others up to its
        time are inside it. A snapshot not adopted (a flat one waiting for confirmation) holds nothing
        the tracker can rely on."""
        if snapshot.time_ms is not None:
            self.fences.snapshot_time[market] = max(
                snapshot.time_ms, self.fences.snapshot_time.get(market, snapshot.time_ms)
            )

    def _flat_confirmed(self, market: MarketKey, ours: Decimal) -> bool:
        """True if the previous snapshot also said flat and nothing happened in `market` since."""
        suspect = self.fences.flat_suspects.get(market)
        position_seq = self.fences.position_seq.get(market, 0)
        if suspect is not None and suspect.position_seq == position_seq and suspect.size == ours:
            return True
        self.fences.flat_suspects[market] = _FlatSuspect(position_seq=position_seq, size=ours)
        self.stats.flat_unconfirmed += 1
        log.warning(
            "resync: exchange says %s is flat (we hold %s); waiting for a second snapshot", market, ours
        )
        return False

    def _absorbable(self, market: MarketKey, fence: int) -> list[TrackedOrder]:
        return [e for e in self.orders.unabsorbed_in(market) if e.absorbable(fence)]

    def _absorb(self, market: MarketKey, fence: int, now: float) -> bool:
        """Mark the market's finished and abandoned orders as contained in the snapshot.

        Their later fills then record their trade ids only: the snapshot already holds them.
        Returns True if a reservation ended (an abandoned order was released).
        """
        released = False
        for entry in self._absorbable(market, fence):
            if entry.is_open:
                released = True
                log.warning(
                    "order %s in %s settled by resync: applied %s of its fills, the snapshot holds the rest",
                    entry.cloid,
                    market,
                    entry.applied_sz,
                )
            entry.absorbed = True
            entry.last_activity = now
            self.orders.refresh(entry)
        return released
