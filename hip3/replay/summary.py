"""What a replay prints: totals, then by market and by UTC hour; one line per sweep setting.

Edge seen is the mean edge of the signals (bps against the oracle at the signal); edge captured is
the mean edge at the price actually taken, against the same oracle, over filled entries. Hit rate
is filled entries over entry orders sent. PnL after fees is the round trips' gross PnL minus the
fees of every simulated fill (both legs, at the market's taker rate).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from hip3.replay.engine import ReplayResult

ZERO = Decimal(0)


def hour_of(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:00")


@dataclass
class Group:
    signals: int = 0
    orders: int = 0
    filled: int = 0
    trips: int = 0
    net: Decimal = ZERO
    fees: Decimal = ZERO
    edge_seen: list[Decimal] = field(default_factory=list)
    edge_taken: list[Decimal] = field(default_factory=list)

    def line(self, name: str) -> str:
        hit = f"{self.filled / self.orders * 100:.1f}%" if self.orders else "-"
        return (
            f"{name:<18} signals {self.signals:>4}  orders {self.orders:>4}  filled {self.filled:>4} "
            f"(hit {hit:>6})  round trips {self.trips:>4}  net {self.net:.4f} (fees {self.fees:.4f})  "
            f"edge seen {_mean(self.edge_seen)}  captured {_mean(self.edge_taken)}"
        )


def _mean(values: list[Decimal]) -> str:
    if not values:
        return "- bps"
    return f"{sum(values, ZERO) / len(values):.1f} bps"


def _groups(result: ReplayResult, key_of: Callable[[str, int], str]) -> dict[str, Group]:
    groups: dict[str, Group] = {}

    def group(market: str, ms: int) -> Group:
        return groups.setdefault(key_of(market, ms), Group())

    for signal, ms in result.signals:
        g = group(str(signal.market), ms)
        g.signals += 1
        g.edge_seen.append(signal.raw_edge_bps)
    for entry in result.entries:
        g = group(str(entry.market), entry.at_ms)
        g.orders += 1
        if entry.taken_bps is not None:
            g.filled += 1
            g.edge_taken.append(entry.taken_bps)
    for trip, opened_ms in result.trips:
        g = group(str(trip.market), opened_ms)
        g.trips += 1
        g.net += trip.net_pnl
        g.fees += trip.fees
    return groups


def total(result: ReplayResult) -> Group:
    return _groups(result, lambda _m, _ms: "all").get("all", Group())


def summary_text(result: ReplayResult, header: Iterable[str] = ()) -> str:
    lines = list(header)
    span = (
        f"{hour_of(result.first_ms)[:10]} {_clock(result.first_ms)} – {_clock(result.last_ms)} UTC"
        if result.first_ms is not None and result.last_ms is not None
        else "empty"
    )
    lines.append(f"recording: {result.frames} frames, {result.gaps} gaps, {span}")
    lines.append(total(result).line("total"))
    misses: dict[str, int] = {}
    for entry in result.entries:
        if entry.taken_bps is None or entry.why == "partial":
            misses[entry.why] = misses.get(entry.why, 0) + 1
    if misses:
        lines.append(
            "entries not (fully) filled: " + ", ".join(f"{k} {v}" for k, v in sorted(misses.items()))
        )
    if result.dropped:
        lines.append("signals not sent: " + ", ".join(f"{k} {v}" for k, v in sorted(result.dropped.items())))
    if result.open_at_end:
        lines.append("positions still open at the end: " + ", ".join(result.open_at_end))
    lines.append("by market:")
    for name, g in sorted(_groups(result, lambda m, _ms: m).items()):
        lines.append("  " + g.line(name))
    lines.append("by hour (UTC, of the signal / order / opening):")
    for name, g in sorted(_groups(result, lambda _m, ms: hour_of(ms)).items()):
        lines.append("  " + g.line(name))
    return "\n".join(lines) + "\n"


def _clock(ms: int | None) -> str:
    return datetime.fromtimestamp((ms or 0) / 1000, UTC).strftime("%H:%M:%S")


def sweep_line(setting: str, result: ReplayResult) -> str:
    return total(result).line(setting).strip()


__all__ = ["Group", "hour_of", "summary_text", "sweep_line", "total"]
