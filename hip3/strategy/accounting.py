"""Edge accounting: what each round trip was expected to earn and what it did.

For every position opened after a signal and closed again, `EdgeLedger` keeps one `RoundTrip`:
the edge the signal saw, the price taken against the oracle of that signal, the exit price
against the oracle at the exit, fees, net PnL and holding time. The summary is what a trader
reads at the end of a run: how many round trips, net PnL after fees, bps per round trip.

Fees per round trip are the market's taker rate (from the exchange, `hip3.strategy.fees`) on both
legs' notional: the fills' own fee reports reach the bot later and only as an account total, which
the run's net PnL uses.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from attrs import define, field, frozen

from hip3.core import MarketKey, Side
from hip3.trading.messages import PositionClosed, PositionOpened, Signal

BPS = Decimal(10_000)
ZERO = Decimal(0)
#: A signal older than this when its position opens did not cause it (an entry lives ~2 s).
SIGNAL_MATCH_SECS = 10.0


@frozen
class RoundTrip:
    market: MarketKey
    side: Side  # of the entry
    size: Decimal
    entry_px: Decimal
    exit_px: Decimal
    signal_edge_bps: Decimal | None  # the edge the signal saw (None: no signal, e.g. found at startup)
    threshold_bps: Decimal | None
    entry_oracle_px: Decimal | None  # the oracle the signal was measured against
    entry_vs_oracle_bps: Decimal | None  # edge at the price actually taken (> 0: better than the oracle)
    exit_oracle_px: Decimal | None
    exit_vs_oracle_bps: Decimal | None  # the exit against the oracle then (< 0: paid to get out)
    fees: Decimal
    gross_pnl: Decimal
    held_secs: float
    closed_at: float

    @property
    def net_pnl(self) -> Decimal:
        return self.gross_pnl - self.fees

    @property
    def entry_notional(self) -> Decimal:
        return abs(self.size) * self.entry_px

    @property
    def net_bps(self) -> Decimal:
        return self.net_pnl / self.entry_notional * BPS if self.entry_notional > 0 else ZERO

    def record_data(self) -> dict[str, str | float | None]:
        """The journal's record of this round trip (money and bps as exact decimal strings)."""

        def text(value: Decimal | None) -> str | None:
            return None if value is None else str(value)

        return {
            "side": self.side.name.lower(),
            "size": str(self.size),
            "signal_edge_bps": text(self.signal_edge_bps),
            "threshold_bps": text(self.threshold_bps),
            "entry_px": str(self.entry_px),
            "entry_oracle_px": text(self.entry_oracle_px),
            "entry_vs_oracle_bps": text(self.entry_vs_oracle_bps),
            "exit_px": str(self.exit_px),
            "exit_oracle_px": text(self.exit_oracle_px),
            "exit_vs_oracle_bps": text(self.exit_vs_oracle_bps),
            "fees": str(self.fees),
            "gross_pnl": str(self.gross_pnl),
            "net_pnl": str(self.net_pnl),
            "held_secs": self.held_secs,
        }

    def describe(self) -> str:
        def bps(value: Decimal | None) -> str:
            return "?" if value is None else f"{value:.1f}"

        return (
            f"round trip {self.market} {self.side} {self.size}: signal edge {bps(self.signal_edge_bps)} bps, "
            f"taken {bps(self.entry_vs_oracle_bps)} bps vs oracle, exit {bps(self.exit_vs_oracle_bps)} bps "
            f"vs oracle, fees {self.fees:.4f}, net {self.net_pnl:.4f} ({self.net_bps:.1f} bps), "
            f"held {self.held_secs:.1f} s"
        )


@frozen
class EdgeSummary:
    round_trips: int
    gross_pnl: Decimal
    fees: Decimal
    net_pnl: Decimal
    bps_per_round_trip: Decimal
    signals: int

    def describe(self) -> str:
        return (
            f"{self.signals} signals, {self.round_trips} round trips, gross {self.gross_pnl:.4f}, "
            f"fees {self.fees:.4f} (at the markets' taker rates), net {self.net_pnl:.4f} USDC, "
            f"{self.bps_per_round_trip:.1f} bps per round trip"
        )


def signed_bps(side: Side, px: Decimal, oracle: Decimal) -> Decimal:
    """How much better than the oracle `px` is for a trade on `side` (buy below, sell above)."""
    diff = oracle - px if side is Side.BUY else px - oracle
    return diff / oracle * BPS


@define
class _Open:
    opened: PositionOpened
    signal: Signal | None


@define
class EdgeLedger:
    """Feed it signals and position transitions; it keeps the round trips and their summary.

    `oracle_of(market)` reads the market's current oracle (the exit's reference) and
    `taker_bps_of(market)` its taker fee rate.
    """

    oracle_of: Callable[[MarketKey], Decimal | None]
    taker_bps_of: Callable[[MarketKey], Decimal]
    round_trips: list[RoundTrip] = field(factory=list)
    signals: int = 0
    _last_signal: dict[MarketKey, Signal] = field(factory=dict)
    _open: dict[MarketKey, _Open] = field(factory=dict)

    def on_signal(self, signal: Signal) -> None:
        self.signals += 1
        self._last_signal[signal.market] = signal

    def on_opened(self, event: PositionOpened) -> None:
        signal = self._last_signal.get(event.market)
        if signal is not None and (
            signal.side is not event.side or event.at - signal.created_at > SIGNAL_MATCH_SECS
        ):
            signal = None
        self._open[event.market] = _Open(event, signal)

    def on_closed(self, event: PositionClosed) -> RoundTrip:
        opened = self._open.pop(event.market, None)
        signal = opened.signal if opened is not None else None
        entry_side = event.side
        exit_oracle = self.oracle_of(event.market)
        rate = self.taker_bps_of(event.market) / BPS
        fees = abs(event.size) * (event.entry_px + event.exit_px) * rate
        trip = RoundTrip(
            market=event.market,
            side=entry_side,
            size=event.size,
            entry_px=event.entry_px,
            exit_px=event.exit_px,
            signal_edge_bps=signal.edge_bps if signal else None,
            threshold_bps=signal.threshold_bps if signal else None,
            entry_oracle_px=signal.oracle_px if signal else None,
            entry_vs_oracle_bps=signed_bps(entry_side, event.entry_px, signal.oracle_px) if signal else None,
            exit_oracle_px=exit_oracle,
            exit_vs_oracle_bps=(
                signed_bps(entry_side.opposite, event.exit_px, exit_oracle) if exit_oracle else None
            ),
            fees=fees,
            gross_pnl=event.realized_pnl,
            held_secs=event.held_for,
            closed_at=event.at,
        )
        self.round_trips.append(trip)
        return trip

    def summary(self) -> EdgeSummary:
        gross = sum((t.gross_pnl for t in self.round_trips), ZERO)
        fees = sum((t.fees for t in self.round_trips), ZERO)
        notional = sum((t.entry_notional for t in self.round_trips), ZERO)
        bps = (gross - fees) / notional * BPS if notional > 0 else ZERO
        return EdgeSummary(
            round_trips=len(self.round_trips),
            gross_pnl=gross,
            fees=fees,
            net_pnl=gross - fees,
            bps_per_round_trip=bps,
            signals=self.signals,
        )
