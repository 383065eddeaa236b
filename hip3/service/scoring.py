"""Scoring a run against the simulator: how many dislocations there were, how many the bot took, and
what it made after fees.

The simulator records every dislocation (a stretch of time in which a market's best ask sits below
its fair value, or its best bid above it, by more than the round-trip cost) with who traded against
it (`hip3.sim` dislocation records). A dislocation is *capturable* when an order could have reached
it: the exchange publishes the oracle to clients only with `activeAssetCtx`, about once a second,
so a client learns of an oracle move up to a second late; a dislocation that closed sooner than
that plus two blocks (`MIN_CAPTURABLE_MS`) could not be seen in time. One still open when the run
is scored counts once it has been open that long. It is *taken* when the bot's account traded on its stale side while it was open. PnL comes
from the bot's tracker (realized, fees as the exchange charged them).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from attrs import frozen

#: The oracle reaches clients with activeAssetCtx about once a second (hyperliquid.md §11), and an
#: order needs about two blocks (~70 ms each) to reach the book: a shorter dislocation is invisible.
MIN_CAPTURABLE_MS = 1150
BPS = Decimal(10_000)


@frozen
class RunScore:
    dislocations: int | None  # above cost, as the simulator recorded them (None: no records)
    capturable: int | None
    taken: int | None  # capturable ones taken
    taken_any: int | None  # of all dislocations above cost
    round_trips: int
    gross_pnl: Decimal
    fees: Decimal
    entry_notional: Decimal
    #: coin -> (round trips, net PnL at the market's taker rate): shows which markets made the money
    by_market: tuple[tuple[str, int, Decimal], ...] = ()

    @property
    def net_pnl(self) -> Decimal:
        return self.gross_pnl - self.fees

    @property
    def capture_ratio(self) -> Decimal | None:
        if self.capturable is None or self.taken is None or self.capturable == 0:
            return None
        return Decimal(self.taken) / Decimal(self.capturable)

    @property
    def bps_per_round_trip(self) -> Decimal:
        return self.net_pnl / self.entry_notional * BPS if self.entry_notional > 0 else Decimal(0)

    def describe_lines(self) -> list[str]:
        lines = []
        if self.dislocations is None:
            lines.append("dislocations: the simulator keeps no records")
        else:
            ratio = self.capture_ratio
            shown = "n/a" if ratio is None else f"{ratio * 100:.0f} %"
            lines.append(
                f"dislocations above cost {self.dislocations} (taken {self.taken_any}), capturable "
                f"{self.capturable} (taken {self.taken}), capture ratio {shown}"
            )
        if self.by_market:
            lines.append(
                "per market: " + ", ".join(f"{coin} {n} trips {net:+.4f}" for coin, n, net in self.by_market)
            )
        lines.append(
            f"round trips {self.round_trips}, net PnL after fees {self.net_pnl:.4f} USDC "
            f"(realized {self.gross_pnl:.4f}, fees {self.fees:.4f}), "
            f"{self.bps_per_round_trip:.1f} bps per round trip"
        )
        return lines


def is_capturable(record: Any, now_ms: int) -> bool:
    """Whether an order could have reached `record` (a `hip3.sim.dislocations.Dislocation`); one
    still open is measured up to `now_ms`, the exchange time the run is scored at."""
    closed: int = record.closed_ms if record.closed_ms is not None else now_ms
    opened: int = record.opened_ms
    return closed - opened >= MIN_CAPTURABLE_MS


def score_run(sim: Any, master: str, bot: Any) -> RunScore:
    """Score one finished run of `bot` (a `hip3.service.app.Bot`) against `sim` (a running `hip3.sim.Sim`)."""
    dislocations = capturable = taken = taken_any = None
    records_of = getattr(sim, "dislocations", None)
    if callable(records_of):
        records = list(records_of())
        now_ms = sim.engine.now_ms()
        reachable = [r for r in records if is_capturable(r, now_ms)]
        dislocations, capturable = len(records), len(reachable)
        taken = sum(1 for r in reachable if r.taken_by(master) > 0)
        taken_any = sum(1 for r in records if r.taken_by(master) > 0)
    gross = fees = Decimal(0)
    if bot.tracker is not None:
        view = bot.tracker.view()
        gross, fees = view.realized_pnl, view.fees
    trips = bot.edge.round_trips
    notional = sum((t.entry_notional for t in trips), Decimal(0))
    per: dict[str, list[Decimal]] = {}
    for t in trips:
        per.setdefault(t.market.name, []).append(t.net_pnl)
    by_market = tuple((coin, len(nets), sum(nets, Decimal(0))) for coin, nets in sorted(per.items()))
    return RunScore(
        dislocations=dislocations,
        capturable=capturable,
        taken=taken,
        taken_any=taken_any,
        round_trips=len(trips),
        gross_pnl=gross,
        fees=fees,
        entry_notional=notional,
        by_market=by_market,
    )
