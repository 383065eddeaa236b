"""`hip3 report JOURNAL --out DIR`: one self-contained HTML page about a journal (live or replay).

What it shows: net PnL over time, edge at signal vs at fill, capture by market, gate blocks by
reason, holding times, the order-to-fill latency histogram, and a per-market table. Numbers come
from the journal's own tables (the same round trips as `hip3 journal PATH trips`); money is summed
as `Decimal` and only turned into floats to draw. Plots are PNGs drawn by matplotlib and embedded
as data URIs, so the page needs no network and no other file.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

from hip3.service.journal_report import ReportError, open_for_reading, trip_rows

ZERO = Decimal(0)
BPS = Decimal(10_000)


@attrs.frozen
class MarketSummary:
    market: str
    trips: int
    wins: int
    realized: Decimal
    fees: Decimal
    net: Decimal
    mean_signal_edge_bps: Decimal | None
    mean_net_bps: Decimal | None
    mean_hold_s: Decimal | None


@attrs.frozen
class ReportData:
    """Everything the page shows, computed from the journal."""

    journal: str
    pnl_points: list[tuple[int, Decimal]]  # (fill time ms, cumulative realized - fees)
    trips: list[dict[str, Any]]
    edges: list[tuple[Decimal, Decimal]]  # (edge at signal, edge at fill) in bps, per trip with a signal
    gate_blocks: Counter[str]
    holding_s: list[Decimal]
    latency_ms: list[int]
    markets: list[MarketSummary]
    signals: int
    total_net: Decimal
    total_fees: Decimal


def _mean(values: Sequence[Decimal]) -> Decimal | None:
    return (sum(values, ZERO) / len(values)).quantize(Decimal("0.01")) if values else None


def collect(path: Path) -> ReportData:
    """Read the journal (never writing to it) into the report's numbers."""
    db = open_for_reading(path)
    try:
        cumulative = ZERO
        points: list[tuple[int, Decimal]] = []
        fees_total = ZERO
        for t, fee, closed in db.execute("SELECT time_ms, fee, closed_pnl FROM fills ORDER BY time_ms, tid"):
            cumulative += Decimal(closed) - Decimal(fee)
            fees_total += Decimal(fee)
            points.append((int(t), cumulative))
        trips = trip_rows(db)
        edges = [
            (t["signal_edge_bps"], t["signal_edge_bps"] - t["entry_slippage_bps"])
            for t in trips
            if t["signal_edge_bps"] is not None and t["entry_slippage_bps"] is not None
        ]
        holding = [t["held_s"] for t in trips if t["held_s"] is not None]
        blocks: Counter[str] = Counter()
        for (data,) in db.execute("SELECT data FROM records WHERE kind = 'gate_blocks'"):
            for gate, count in json.loads(data).items():
                blocks[str(gate)] += int(count)
        signals = int(db.execute("SELECT COUNT(*) FROM records WHERE kind = 'signal'").fetchone()[0])
        latency: list[int] = []
        for sent_ms, first_fill_ms in db.execute(
            "SELECT o.sent_ms, MIN(f.time_ms) FROM orders o JOIN fills f ON f.cloid = o.cloid GROUP BY o.cloid"
        ):
            latency.append(int(first_fill_ms) - int(sent_ms))
    finally:
        db.close()
    by_market: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for trip in trips:
        by_market[trip["market"]].append(trip)
    markets = []
    for market, rows in sorted(by_market.items()):
        closed = [r for r in rows if r["held_s"] is not None]
        markets.append(
            MarketSummary(
                market=market,
                trips=len(rows),
                wins=sum(1 for r in rows if r["net"] > 0),
                realized=sum((r["realized"] for r in rows), ZERO),
                fees=sum((r["fees"] for r in rows), ZERO),
                net=sum((r["net"] for r in rows), ZERO),
                mean_signal_edge_bps=_mean(
                    [r["signal_edge_bps"] for r in rows if r["signal_edge_bps"] is not None]
                ),
                mean_net_bps=_mean([r["net_bps"] for r in rows if r["net_bps"] is not None]),
                mean_hold_s=_mean([r["held_s"] for r in closed]),
            )
        )
    return ReportData(
        journal=str(path),
        pnl_points=points,
        trips=trips,
        edges=edges,
        gate_blocks=blocks,
        holding_s=holding,
        latency_ms=latency,
        markets=markets,
        signals=signals,
        total_net=cumulative,
        total_fees=fees_total,
    )


# ---------------------------------------------------------------------------------------------
# Drawing


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _figures(data: ReportData) -> list[tuple[str, str, str]]:
    """(id, title, base64 PNG) per figure; each draws an explicit 'no data' when it has none."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    out: list[tuple[str, str, str]] = []

    def figure(fig_id: str, title: str) -> tuple[Any, Any]:
        fig, ax = plt.subplots(figsize=(7.5, 3.2))
        ax.set_title(title)
        return fig, ax

    def done(fig_id: str, title: str, fig: Any, ax: Any, empty: bool) -> None:
        if empty:
            ax.text(0.5, 0.5, "no data in this journal", ha="center", va="center", transform=ax.transAxes)
        out.append((fig_id, title, _png(fig)))
        plt.close(fig)

    fig, ax = figure("pnl", "Net PnL after fees over time (USDC)")
    if data.pnl_points:
        xs = [datetime.fromtimestamp(t / 1000, UTC) for t, _ in data.pnl_points]
        ax.step(xs, [float(v) for _, v in data.pnl_points], where="post")
        ax.axhline(0, color="grey", linewidth=0.8)
        fig.autofmt_xdate()
    done("pnl", "Net PnL after fees over time", fig, ax, not data.pnl_points)

    fig, ax = figure("edge", "Edge at signal vs at fill (bps)")
    if data.edges:
        ax.scatter([float(a) for a, _ in data.edges], [float(b) for _, b in data.edges], s=14)
        top = max(max(float(a), float(b)) for a, b in data.edges)
        ax.plot([0, top], [0, top], color="grey", linewidth=0.8)
        ax.set_xlabel("edge at signal")
        ax.set_ylabel("edge at fill")
    done("edge", "Edge at signal vs at fill", fig, ax, not data.edges)

    fig, ax = figure("capture", "Net PnL by market (USDC)")
    if data.markets:
        ax.bar([m.market for m in data.markets], [float(m.net) for m in data.markets])
        ax.axhline(0, color="grey", linewidth=0.8)
    done("capture", "Capture by market", fig, ax, not data.markets)

    fig, ax = figure("gates", "Evaluations blocked, by gate")
    if data.gate_blocks:
        names = sorted(data.gate_blocks, key=lambda g: -data.gate_blocks[g])
        ax.barh(names, [data.gate_blocks[g] for g in names])
    done("gates", "Gate blocks by reason", fig, ax, not data.gate_blocks)

    fig, ax = figure("holding", "Holding time per round trip (s)")
    if data.holding_s:
        ax.hist([float(h) for h in data.holding_s], bins=20)
    done("holding", "Holding times", fig, ax, not data.holding_s)

    fig, ax = figure("latency", "Order sent to first fill (ms)")
    if data.latency_ms:
        ax.hist(data.latency_ms, bins=20)
    done("latency", "Latency histogram", fig, ax, not data.latency_ms)
    return out


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return "0" if value == 0 else f"{value.normalize():f}"
    return str(value)


def _table(table_id: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def render_html(data: ReportData) -> str:
    figures = "".join(
        f'<section><h2>{html.escape(title)}</h2><img id="fig-{fid}" alt="{html.escape(title)}" '
        f'src="data:image/png;base64,{png}"></section>'
        for fid, title, png in _figures(data)
    )
    markets = _table(
        "markets",
        (
            "market",
            "trips",
            "wins",
            "realized",
            "fees",
            "net",
            "mean signal edge bps",
            "mean net bps",
            "mean hold s",
        ),
        [
            (
                m.market,
                m.trips,
                m.wins,
                m.realized,
                m.fees,
                m.net,
                m.mean_signal_edge_bps,
                m.mean_net_bps,
                m.mean_hold_s,
            )
            for m in data.markets
        ],
    )
    trip_table = _table(
        "trips",
        (
            "opened",
            "market",
            "side",
            "size",
            "entry px",
            "exit px",
            "held s",
            "signal edge bps",
            "net bps",
            "net",
        ),
        [
            (
                t["opened"],
                t["market"],
                t["side"],
                t["size"],
                t["entry_px"],
                t["exit_px"],
                t["held_s"],
                t["signal_edge_bps"],
                t["net_bps"],
                t["net"],
            )
            for t in data.trips
        ],
    )
    summary = _table(
        "summary",
        ("signals", "round trips", "fees", "net PnL after fees"),
        [(data.signals, len(data.trips), data.total_fees, data.total_net)],
    )
    style = (
        "body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0 24px}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}"
        "img{max-width:100%}section{margin-bottom:18px}"
    )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>hip3 report: {html.escape(Path(data.journal).name)}</title><style>{style}</style></head><body>"
        f"<h1>hip3 report</h1><p>journal: {html.escape(data.journal)}</p>"
        f"<h2>Summary</h2>{summary}{figures}<h2>Per market</h2>{markets}<h2>Round trips</h2>{trip_table}"
        "</body></html>"
    )


def write_report(journal: Path, out_dir: Path) -> Path:
    """Write OUT/report.html; raises ReportError for a journal that cannot be read."""
    data = collect(journal)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "report.html"
    target.write_text(render_html(data), encoding="utf-8")
    return target


__all__ = ["MarketSummary", "ReportData", "ReportError", "collect", "render_html", "write_report"]
