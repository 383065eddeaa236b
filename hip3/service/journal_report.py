"""Answers to the owner's questions, read from a journal: `hip3 journal PATH QUESTION [--csv]`.

Each question is a function from a connection to a `Table`. Money stays `Decimal` (summed in
Python, never by SQLite's floating point). Round trips are rebuilt from the exchange's own fills
(a market's position leaving zero and coming back), and joined to the signal that opened them
through the write-ahead order row of the entry's cloid.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

from hip3.service.journal_schema import SCHEMA_VERSION, file_version, migrate

ZERO = Decimal(0)
BPS = Decimal(10_000)


@attrs.frozen
class Table:
    title: str
    headers: tuple[str, ...]
    rows: list[tuple[Any, ...]]

    def text(self) -> str:
        cells = [list(self.headers)] + [[_cell(v) for v in row] for row in self.rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(self.headers))]
        lines = [self.title, "  ".join(h.ljust(w) for h, w in zip(cells[0], widths, strict=True)).rstrip()]
        for row in cells[1:]:
            lines.append("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
        if not self.rows:
            lines.append("(none)")
        return "\n".join(lines) + "\n"

    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.headers)
        writer.writerows([[_cell(v) for v in row] for row in self.rows])
        return out.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return "0" if value == 0 else f"{value.normalize():f}"
    return str(value)


def when(ms: int | None) -> str:
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _bps(part: Decimal, whole: Decimal) -> Decimal | None:
    return (part / whole * BPS).quantize(Decimal("0.1")) if whole else None


# ---------------------------------------------------------------------------------------------
# Opening


class ReportError(Exception):
    """The journal cannot be read; the message says why."""


def open_for_reading(path: Path) -> sqlite3.Connection:
    """Open an existing journal; an older schema is migrated first (as the bot would)."""
    if not path.is_file():
        raise ReportError(f"no journal at {path}")
    try:
        db = sqlite3.connect(path, isolation_level=None)
        version = file_version(db)
        if version > SCHEMA_VERSION:
            raise ReportError(f"journal {path} has schema version {version}, newer than this hip3's")
        if version < SCHEMA_VERSION:
            migrate(db)
        return db
    except sqlite3.DatabaseError as exc:
        raise ReportError(f"journal {path} cannot be read: {exc}") from exc


# ---------------------------------------------------------------------------------------------
# Questions


def orders(db: sqlite3.Connection, limit: int) -> Table:
    rows = db.execute(
        "SELECT id, cloid, market, side, size, limit_px, reduce_only, reason, sent_ms FROM orders "
        "ORDER BY id DESC LIMIT ?",
        (limit,),
    ).fetchall()
    out: list[tuple[Any, ...]] = []
    for _, cloid, market, side, size, limit_px, reduce_only, reason, sent_ms in reversed(rows):
        status = db.execute(
            "SELECT status, source FROM order_events WHERE cloid = ? ORDER BY final DESC, id DESC LIMIT 1",
            (cloid,),
        ).fetchone()
        filled, notional, fees = ZERO, ZERO, ZERO
        for sz, px, fee in db.execute("SELECT sz, px, fee FROM fills WHERE cloid = ?", (cloid,)):
            filled += Decimal(sz)
            notional += Decimal(sz) * Decimal(px)
            fees += Decimal(fee)
        outcome = (
            "no outcome recorded"
            if status is None
            else status[0] + (" (restart)" if status[1] == "recovery" else "")
        )
        avg = (notional / filled).quantize(Decimal("0.000001")) if filled else None
        out.append(
            (
                when(sent_ms),
                market,
                side,
                Decimal(size),
                Decimal(limit_px),
                "flatten" if reduce_only else "entry",
                reason,
                outcome,
                filled,
                avg,
                fees,
                cloid,
            )
        )
    return Table(
        f"orders (newest {limit})",
        (
            "sent",
            "market",
            "side",
            "size",
            "limit_px",
            "kind",
            "reason",
            "outcome",
            "filled",
            "avg_px",
            "fees",
            "cloid",
        ),
        out,
    )


def fills(db: sqlite3.Connection, limit: int) -> Table:
    rows = db.execute(
        "SELECT time_ms, coin, side, sz, px, fee, closed_pnl, dir, cloid, tid FROM fills "
        "ORDER BY time_ms DESC, tid DESC LIMIT ?",
        (limit,),
    ).fetchall()
    out = [
        (
            when(t),
            coin,
            "buy" if side == "B" else "sell",
            Decimal(sz),
            Decimal(px),
            Decimal(fee),
            Decimal(pnl),
            d,
            c or "(not ours)",
            tid,
        )
        for t, coin, side, sz, px, fee, pnl, d, c, tid in reversed(rows)
    ]
    return Table(
        f"fills (newest {limit})",
        ("time", "market", "side", "size", "px", "fee", "closed_pnl", "dir", "cloid", "tid"),
        out,
    )


@attrs.define
class _Trip:
    coin: str
    side: str
    opened_ms: int
    entry_cloid: str | None
    size: Decimal = ZERO
    entry_notional: Decimal = ZERO
    exit_size: Decimal = ZERO
    exit_notional: Decimal = ZERO
    realized: Decimal = ZERO
    fees: Decimal = ZERO
    closed_ms: int | None = None


def _trips(db: sqlite3.Connection) -> list[_Trip]:
    """Round trips from the fills: a market's position leaving zero until it is back at zero."""
    done: list[_Trip] = []
    open_trips: dict[str, _Trip] = {}
    position: dict[str, Decimal] = defaultdict(lambda: ZERO)
    rows = db.execute(
        "SELECT coin, time_ms, side, sz, px, fee, closed_pnl, start_position, cloid FROM fills ORDER BY time_ms, tid"
    )
    for coin, t, side, sz_text, px_text, fee_text, pnl_text, start_text, cloid in rows:
        sz, px, fee, pnl = Decimal(sz_text), Decimal(px_text), Decimal(fee_text), Decimal(pnl_text)
        signed = sz if side == "B" else -sz
        start = Decimal(start_text)
        trip = open_trips.get(coin)
        if trip is None or start == 0:
            if trip is not None:
                done.append(trip)  # the journal missed the fills that closed it
            trip = _Trip(coin, "long" if signed > 0 else "short", t, cloid)
            open_trips[coin] = trip
        adds = (start >= 0 and signed > 0) or (start <= 0 and signed < 0)
        if adds:
            trip.size += sz
            trip.entry_notional += sz * px
        else:
            trip.exit_size += sz
            trip.exit_notional += sz * px
        trip.realized += pnl
        trip.fees += fee
        position[coin] = start + signed
        if position[coin] == 0:
            trip.closed_ms = t
            done.append(trip)
            del open_trips[coin]
    done.extend(open_trips.values())
    return sorted(done, key=lambda tr: tr.opened_ms)


def _entry_signal(db: sqlite3.Connection, cloid: str | None) -> dict[str, Any] | None:
    if cloid is None:
        return None
    order = db.execute("SELECT market, side, sent_ms FROM orders WHERE cloid = ?", (cloid,)).fetchone()
    if order is None:
        return None
    market, side, sent_ms = order
    for (data,) in db.execute(
        "SELECT data FROM records WHERE kind = 'signal' AND market = ? AND at_ms <= ? AND at_ms >= ? "
        "ORDER BY at_ms DESC LIMIT 5",
        (market, sent_ms, sent_ms - 10_000),
    ):
        signal: dict[str, Any] = json.loads(data)
        if signal.get("side") == side:
            return signal
    return None


TRIP_COLUMNS = (
    "opened",
    "market",
    "side",
    "size",
    "entry_px",
    "exit_px",
    "held_s",
    "signal_edge_bps",
    "threshold_bps",
    "entry_slippage_bps",
    "gross_bps",
    "fee_bps",
    "net_bps",
    "realized",
    "fees",
    "net",
)


def trip_rows(db: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every round trip, oldest first, keyed by `TRIP_COLUMNS` (held_s is None while open)."""
    out: list[dict[str, Any]] = []
    for trip in _trips(db):
        entry_px = trip.entry_notional / trip.size if trip.size else None
        exit_px = trip.exit_notional / trip.exit_size if trip.exit_size else None
        signal = _entry_signal(db, trip.entry_cloid)
        # The edge that counts: raw edge against the oracle less the structural part (journals
        # written before the structural gap existed have none).
        edge = (
            (Decimal(signal["raw_edge_bps"]) - Decimal(signal.get("structural_gap_bps") or 0)).quantize(
                Decimal("0.1")
            )
            if signal
            else None
        )
        threshold = Decimal(signal["threshold_bps"]) if signal else None
        slippage = None
        if signal and entry_px is not None:
            best = Decimal(signal["best_px"])
            slippage = ((entry_px - best) / best * BPS * (1 if trip.side == "long" else -1)).quantize(
                Decimal("0.1")
            )
        net = trip.realized - trip.fees
        held = (
            (Decimal(trip.closed_ms - trip.opened_ms) / 1000).quantize(Decimal("0.1"))
            if trip.closed_ms is not None
            else None
        )
        values = (
            when(trip.opened_ms),
            trip.coin,
            trip.side,
            trip.size,
            entry_px.quantize(Decimal("0.000001")) if entry_px is not None else None,
            exit_px.quantize(Decimal("0.000001")) if exit_px is not None else None,
            held,
            edge,
            threshold,
            slippage,
            _bps(trip.realized, trip.entry_notional),
            _bps(trip.fees, trip.entry_notional),
            _bps(net, trip.entry_notional),
            trip.realized,
            trip.fees,
            net,
        )
        out.append(dict(zip(TRIP_COLUMNS, values, strict=True)))
    return out


def _held_text(held: Decimal | None) -> str:
    return "open" if held is None else f"{held:.1f}"


def trips(db: sqlite3.Connection, limit: int) -> Table:
    rows = [
        tuple(_held_text(row[k]) if k == "held_s" else row[k] for k in TRIP_COLUMNS)
        for row in trip_rows(db)[-limit:]
    ]
    return Table(
        "round trips (from the exchange's fills; edge from the signal that opened them)", TRIP_COLUMNS, rows
    )


def pnl(db: sqlite3.Connection, limit: int) -> Table:
    days: dict[tuple[str, str], list[Decimal]] = defaultdict(lambda: [ZERO, ZERO, ZERO, ZERO])
    for t, coin, sz, px, fee, closed in db.execute(
        "SELECT time_ms, coin, sz, px, fee, closed_pnl FROM fills"
    ):
        row = days[(datetime.fromtimestamp(t / 1000, UTC).date().isoformat(), coin)]
        row[0] += 1
        row[1] += Decimal(sz) * Decimal(px)
        row[2] += Decimal(closed)
        row[3] += Decimal(fee)
    out: list[tuple[Any, ...]] = []
    total = [ZERO, ZERO, ZERO, ZERO]
    for (day, coin), (n, volume, realized, fees) in sorted(days.items())[-limit:]:
        out.append((day, coin, int(n), volume.quantize(Decimal("0.01")), realized, fees, realized - fees))
        total = [a + b for a, b in zip(total, (n, volume, realized, fees), strict=True)]
    if out:
        out.append(
            (
                "total",
                "",
                int(total[0]),
                total[1].quantize(Decimal("0.01")),
                total[2],
                total[3],
                total[2] - total[3],
            )
        )
    return Table(
        "PnL and fees by UTC day and market (closed PnL as the exchange reports it)",
        ("day", "market", "fills", "volume", "realized", "fees", "net"),
        out,
    )


def rejects(db: sqlite3.Connection, limit: int) -> Table:
    rows = db.execute(
        "SELECT e.status, count(DISTINCT e.cloid), min(e.at_ms), max(e.at_ms), group_concat(DISTINCT o.market) "
        "FROM order_events e LEFT JOIN orders o ON o.cloid = e.cloid "
        "WHERE e.status LIKE '%Rejected' OR e.status = 'rejected' "
        "GROUP BY e.status ORDER BY count(DISTINCT e.cloid) DESC LIMIT ?",
        (limit,),
    ).fetchall()
    out = [(status, n, when(first), when(last), markets or "") for status, n, first, last, markets in rows]
    return Table(
        "order rejects by reason (the exchange's order status)",
        ("reason", "count", "first", "last", "markets"),
        out,
    )


def _records(db: sqlite3.Connection, kind: str, limit: int) -> list[tuple[int, str, dict[str, Any]]]:
    rows = db.execute(
        "SELECT at_ms, market, data FROM records WHERE kind = ? ORDER BY id DESC LIMIT ?", (kind, limit)
    ).fetchall()
    return [(t, m, json.loads(d)) for t, m, d in reversed(rows)]


def corrections(db: sqlite3.Connection, limit: int) -> Table:
    out = [
        (when(t), m, d.get("before"), d.get("after"), d.get("entry_px"))
        for t, m, d in _records(db, "correction", limit)
    ]
    return Table(
        "resync corrections (the exchange disagreed with the bot's position)",
        ("time", "market", "bot had", "exchange had", "entry_px"),
        out,
    )


def hard_stops(db: sqlite3.Connection, limit: int) -> Table:
    out = [(when(t), d.get("event"), d.get("reason")) for t, _, d in _records(db, "hard_stop", limit)]
    return Table("hard-stop events", ("time", "event", "reason"), out)


def restarts(db: sqlite3.Connection, limit: int) -> Table:
    out = [
        (
            when(t),
            d.get("in_doubt", 0),
            ", ".join(f"{k}: {v}" for k, v in sorted(d.get("resolved", {}).items())),
            d.get("fills_found", 0),
            _while_down(d),
            ", ".join(f"{k} {v}" for k, v in sorted(d.get("positions", {}).items())) or "flat",
            d.get("note", ""),
        )
        for t, _, d in _records(db, "restart", limit)
    ]
    return Table(
        "restarts (orders the previous run left in doubt, what they turned out to be, and the "
        "fills while the bot was down counted to the day's loss)",
        ("time", "in_doubt", "resolved", "fills_found", "while down", "positions adopted", "note"),
        out,
    )


def _while_down(record: dict[str, Any]) -> str:
    if "fills_while_down" not in record:
        return ""  # written before the bot counted them
    return f"{record['fills_while_down']} fills, net {record.get('net_while_down', '?')}"


QUESTIONS: dict[str, tuple[Callable[[sqlite3.Connection, int], Table], str]] = {
    "orders": (orders, "recent orders (write-ahead rows) with their outcome, filled size and fees"),
    "fills": (fills, "recent fills as the exchange reported them"),
    "trips": (trips, "round trips with edge accounting: signal edge, slippage, gross, fees, net"),
    "pnl": (pnl, "realized PnL and fees by UTC day and market"),
    "rejects": (rejects, "order rejects grouped by reason"),
    "corrections": (corrections, "resync corrections"),
    "hard-stops": (hard_stops, "hard-stop latches"),
    "restarts": (restarts, "restarts and the in-flight orders they resolved"),
}


def answer(path: Path, question: str, *, limit: int = 50, as_csv: bool = False) -> str:
    db = open_for_reading(path)
    try:
        table = QUESTIONS[question][0](db, limit)
    finally:
        db.close()
    return table.csv() if as_csv else table.text()
