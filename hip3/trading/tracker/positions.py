"""Positions by market, and the one place that turns a change of a position into its events.

A fill moves a position (`move`: add, reduce, close, flip); a resync sets it to what the exchange
holds (`correct`). Both go through the same builders for opened / changed / closed, so a
position's life reads the same in the journal whichever way it changed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from decimal import Decimal

from attrs import define

from hip3.core import MarketKey, Side
from hip3.trading.messages import (
    Correction,
    PositionChanged,
    PositionClosed,
    PositionEvent,
    PositionOpened,
    PositionView,
)

log = logging.getLogger("hip3.trading.tracker")

ZERO = Decimal(0)


@define
class Position:
    size: Decimal  # signed, never 0 while stored
    entry_px: Decimal
    opened_at: float
    realized: Decimal = ZERO  # over this position's life, gross of fees
    closed_sz: Decimal = ZERO
    closed_ntl: Decimal = ZERO

    @property
    def side(self) -> Side:
        return Side.BUY if self.size > 0 else Side.SELL

    @property
    def notional(self) -> Decimal:
        return abs(self.size) * self.entry_px

    def view(self, market: MarketKey) -> PositionView:
        return PositionView(market=market, size=self.size, entry_px=self.entry_px, opened_at=self.opened_at)


@define
class Positions:
    """Open positions (flat markets are absent) and the realized PnL of everything closed by fills."""

    held: dict[MarketKey, Position]
    realized_pnl: Decimal = ZERO

    @classmethod
    def empty(cls) -> Positions:
        return cls(held={})

    def get(self, market: MarketKey) -> Position | None:
        return self.held.get(market)

    def size(self, market: MarketKey) -> Decimal:
        pos = self.held.get(market)
        return pos.size if pos else ZERO

    def notional(self, market: MarketKey | None = None) -> Decimal:
        if market is not None:
            pos = self.held.get(market)
            return pos.notional if pos else ZERO
        return sum((p.notional for p in self.held.values()), ZERO)

    def markets(self) -> Iterator[MarketKey]:
        return iter(self.held)

    def __contains__(self, market: MarketKey) -> bool:
        return market in self.held

    def __len__(self) -> int:
        return len(self.held)

    # -- changes ------------------------------------------------------------------------------

    def move(
        self, market: MarketKey, side: Side, size: Decimal, px: Decimal, now: float
    ) -> list[PositionEvent]:
        """Apply a fill of `size` (> 0) on `side` at `px`: add, reduce, close or flip."""
        pos = self.held.get(market)
        signed = size * side.sign
        if pos is None:
            return [self._open(market, signed, px, now)]
        if pos.side is side:
            new_size = pos.size + signed
            pos.entry_px = (abs(pos.size) * pos.entry_px + size * px) / abs(new_size)
            pos.size = new_size
            return [_changed(market, pos, now)]
        closed = min(abs(pos.size), size)
        pnl = (px - pos.entry_px) * closed * pos.side.sign
        pos.realized += pnl
        pos.closed_sz += closed
        pos.closed_ntl += closed * px
        self.realized_pnl += pnl
        remainder = abs(pos.size) - size
        if remainder > 0:
            pos.size = remainder * pos.side.sign
            return [_changed(market, pos, now)]
        exit_px = pos.closed_ntl / pos.closed_sz if pos.closed_sz > 0 else pos.entry_px
        events: list[PositionEvent] = [self._close(market, pos.closed_sz, exit_px, pos.realized, now)]
        if remainder < 0:  # crossed zero: the rest opens the other way at the fill price
            events.append(self._open(market, -remainder * side.sign, px, now))
        return events

    def correct(
        self, market: MarketKey, theirs: Decimal, their_px: Decimal | None, now: float
    ) -> list[PositionEvent]:
        """Set the position to what the exchange holds; [] when that can't be done (no entry price)."""
        pos = self.held.get(market)
        ours = pos.size if pos else ZERO
        events: list[PositionEvent] = []
        if theirs == 0:
            assert pos is not None
            # The close happened outside our view: exit price and PnL unknown.
            events.append(self._close(market, abs(pos.size), pos.entry_px, ZERO, now))
        else:
            px = their_px if their_px is not None and their_px > 0 else (pos.entry_px if pos else None)
            if px is None:
                log.error("resync: %s size %s without an entry price; not corrected", market, theirs)
                return []
            if pos is not None and (pos.size > 0) == (theirs > 0):
                pos.size = theirs
                pos.entry_px = px
                events.append(_changed(market, pos, now))
            else:
                if pos is not None:
                    events.append(self._close(market, abs(pos.size), pos.entry_px, ZERO, now))
                events.append(self._open(market, theirs, px, now))
        log.warning("resync correction %s: ours %s -> exchange %s (entry %s)", market, ours, theirs, their_px)
        correction = Correction(market=market, before=ours, after=theirs, entry_px=their_px, at=now)
        return [correction, *events]

    # -- the builders ---------------------------------------------------------------------------

    def _open(self, market: MarketKey, signed: Decimal, px: Decimal, now: float) -> PositionOpened:
        pos = Position(size=signed, entry_px=px, opened_at=now)
        self.held[market] = pos
        log.info("position opened %s %s @ %s", market, signed, px)
        return PositionOpened(market=market, side=pos.side, size=abs(signed), entry_px=px, at=now)

    def _close(
        self, market: MarketKey, size: Decimal, exit_px: Decimal, realized: Decimal, now: float
    ) -> PositionClosed:
        pos = self.held.pop(market)
        log.info(
            "position closed %s %s %s entry %s exit %s pnl %s held %.1fs",
            market,
            pos.side,
            size,
            pos.entry_px,
            exit_px,
            realized,
            now - pos.opened_at,
        )
        return PositionClosed(
            market=market,
            side=pos.side,
            size=size,
            entry_px=pos.entry_px,
            exit_px=exit_px,
            realized_pnl=realized,
            held_for=now - pos.opened_at,
            at=now,
        )


def _changed(market: MarketKey, pos: Position, now: float) -> PositionChanged:
    return PositionChanged(market=market, size=pos.size, entry_px=pos.entry_px, at=now)
