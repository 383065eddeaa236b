"""`hip3 report JOURNAL --out DIR`: the page's numbers equal the journal's, every figure and table is
there, nothing is fetched from the network, and headless Chromium renders something that is not blank."""

from __future__ import annotations

import shutil
import subprocess
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import attrs
import pytest

from hip3.core import Cloid, MarketKey, Side
from hip3.hyperliquid.events import Fill, UserFills
from hip3.service import cli
from hip3.service.journal import Journal, prepare_journal
from hip3.service.report import collect, render_html, write_report

D = Decimal
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
MARKETS = {"xyz:TSLA": MarketKey("xyz", "TSLA", 110001), "xyz:GOLD": MarketKey("xyz", "GOLD", 110003)}


@attrs.frozen
class Trip:
    coin: str
    side: Side  # the entry's side
    sz: Decimal
    entry_px: Decimal
    exit_px: Decimal
    opened_ms: int
    held_ms: int
    fee_in: Decimal
    fee_out: Decimal
    signal_edge: Decimal
    latency_ms: int  # order sent -> first fill

    @property
    def pnl(self) -> Decimal:
        sign = 1 if self.side is Side.BUY else -1
        return (self.exit_px - self.entry_px) * self.sz * sign

    @property
    def net(self) -> Decimal:
        return self.pnl - self.fee_in - self.fee_out


TRIPS = (
    Trip(
        "xyz:TSLA",
        Side.BUY,
        D("0.2"),
        D("100.00"),
        D("100.20"),
        T0,
        3_000,
        D("0.009"),
        D("0.009"),
        D(30),
        180,
    ),
    Trip(
        "xyz:TSLA",
        Side.SELL,
        D("0.1"),
        D("101.00"),
        D("101.50"),
        T0 + 60_000,
        5_000,
        D("0.005"),
        D("0.005"),
        D(25),
        420,
    ),
    Trip(
        "xyz:GOLD",
        Side.BUY,
        D("0.01"),
        D("2000"),
        D("2003"),
        T0 + 3_600_000,
        1_500,
        D("0.02"),
        D("0.02"),
        D(40),
        250,
    ),
)
GATE_NOTES = ({"mark_mid": 5, "bbo_age": 2}, {"mark_mid": 1, "spread_shock": 3})


def _fill(tid: int, trip: Trip, *, entry: bool, cloid: Cloid) -> Fill:
    side = trip.side if entry else (Side.SELL if trip.side is Side.BUY else Side.BUY)
    start = D(0) if entry else (trip.sz if trip.side is Side.BUY else -trip.sz)
    return Fill(
        coin=trip.coin,
        px=trip.entry_px if entry else trip.exit_px,
        sz=trip.sz,
        side=side,
        time=trip.opened_ms if entry else trip.opened_ms + trip.held_ms,
        start_position=start,
        dir="x",
        closed_pnl=D(0) if entry else trip.pnl,
        hash="0x0",
        oid=tid,
        crossed=True,
        fee=trip.fee_in if entry else trip.fee_out,
        tid=tid,
        cloid=cloid,
    )


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    j = prepare_journal(str(tmp_path / "journal.sqlite3"))
    assert j is not None
    db = j.connection()
    fills = []
    for n, trip in enumerate(TRIPS):
        entry, exit_ = Cloid.random(), Cloid.random()
        market = MARKETS[trip.coin]
        j.note(
            "signal",
            trip.coin,
            {
                "side": str(trip.side),
                "raw_edge_bps": str(trip.signal_edge),
                "threshold_bps": "10",
                "best_px": str(trip.entry_px),
            },
        )
        j.flush()
        db.execute(
            "UPDATE records SET at_ms = ? WHERE id = (SELECT MAX(id) FROM records)",
            (trip.opened_ms - trip.latency_ms - 5,),
        )
        exit_side = Side.SELL if trip.side is Side.BUY else Side.BUY
        j.order_sending(entry, market, trip.side, trip.sz, trip.entry_px, False, "entry")
        j.order_sending(exit_, market, exit_side, trip.sz, trip.exit_px, True, "mark_regression")
        db.execute(
            "UPDATE orders SET sent_ms = ? WHERE cloid = ?", (trip.opened_ms - trip.latency_ms, str(entry))
        )
        db.execute(
            "UPDATE orders SET sent_ms = ? WHERE cloid = ?",
            (trip.opened_ms + trip.held_ms - trip.latency_ms, str(exit_)),
        )
        fills += [
            _fill(2 * n + 1, trip, entry=True, cloid=entry),
            _fill(2 * n + 2, trip, entry=False, cloid=exit_),
        ]
    j.user_fills(UserFills("0xu", False, tuple(fills)))
    for note in GATE_NOTES:
        j.note("gate_blocks", "xyz:TSLA", note)
    j.flush()
    return j


def test_numbers_equal_the_journal(journal: Journal) -> None:
    data = collect(journal.path)
    assert data.total_net == sum((t.net for t in TRIPS), D(0))
    assert data.total_fees == sum((t.fee_in + t.fee_out for t in TRIPS), D(0))
    assert data.signals == len(TRIPS)
    by_market = {m.market: m for m in data.markets}
    for coin in MARKETS:
        mine = [t for t in TRIPS if t.coin == coin]
        assert by_market[coin].trips == len(mine)
        assert by_market[coin].net == sum((t.net for t in mine), D(0))
        assert by_market[coin].wins == sum(1 for t in mine if t.net > 0)
    assert sorted(data.holding_s) == sorted(D(t.held_ms) / 1000 for t in TRIPS)
    # every order (entries and exits) has a fill `latency_ms` after it was sent
    assert sorted(data.latency_ms) == sorted([t.latency_ms for t in TRIPS] * 2)
    assert dict(data.gate_blocks) == {"mark_mid": 6, "bbo_age": 2, "spread_shock": 3}
    assert sorted(a for a, _ in data.edges) == sorted(t.signal_edge for t in TRIPS)
    # the cumulative PnL ends at the total and is stepped at each fill
    assert data.pnl_points[-1][1] == data.total_net and len(data.pnl_points) == 2 * len(TRIPS)


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.sources: list[str] = []
        self.tags: set[str] = set()
        self.cells: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._row: list[str] | None = None
        self._in_cell = False

    def handle_starttag(self, tag: str, attrs_: list[tuple[str, str | None]]) -> None:
        a = dict(attrs_)
        self.tags.add(tag)
        if a.get("id"):
            self.ids.add(str(a["id"]))
        for key in ("src", "href"):
            if a.get(key):
                self.sources.append(str(a[key]))
        if tag == "table":
            self._table = str(a.get("id"))
            self.cells[self._table] = []
        elif tag == "tr" and self._table:
            self._row = []
        elif tag == "td":
            self._in_cell = True
            if self._row is not None:
                self._row.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._in_cell = False
        elif tag == "tr" and self._row is not None and self._table:
            if self._row:
                self.cells[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._in_cell and self._row is not None:
            self._row[-1] += data


def test_every_figure_and_table_is_on_one_self_contained_page(journal: Journal) -> None:
    page = _Page()
    page.feed(render_html(collect(journal.path)))
    figures = {"fig-pnl", "fig-edge", "fig-capture", "fig-gates", "fig-holding", "fig-latency"}
    assert figures <= page.ids
    assert {"summary", "markets", "trips"} <= page.ids
    # nothing to fetch: every source is embedded, no scripts or stylesheets from elsewhere
    assert page.sources and all(s.startswith("data:image/png;base64,") for s in page.sources)
    assert "script" not in page.tags and "link" not in page.tags
    # the per-market table carries the journal's net per market
    nets = {row[0]: D(row[5]) for row in page.cells["markets"]}
    for coin in MARKETS:
        assert nets[coin] == sum((t.net for t in TRIPS if t.coin == coin), D(0))
    assert len(page.cells["trips"]) == len(TRIPS)
    summary = page.cells["summary"][0]
    assert D(summary[3]) == sum((t.net for t in TRIPS), D(0))


def test_an_empty_journal_still_renders_every_figure(tmp_path: Path) -> None:
    j = prepare_journal(str(tmp_path / "empty.sqlite3"))
    assert j is not None
    page = _Page()
    page.feed(render_html(collect(j.path)))
    assert {"fig-pnl", "fig-edge", "fig-capture", "fig-gates", "fig-holding", "fig-latency"} <= page.ids


def test_the_command_writes_the_page_and_refuses_a_missing_journal(
    journal: Journal, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert cli.main(["report", str(journal.path), "--out", str(out)]) == 0
    assert (out / "report.html").stat().st_size > 10_000
    assert cli.main(["report", str(tmp_path / "nope.sqlite3"), "--out", str(out)]) == 2
    assert "nope.sqlite3" in capsys.readouterr().err


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_headless_chromium_renders_a_page_that_is_not_blank(journal: Journal, tmp_path: Path) -> None:
    from matplotlib import image

    page = write_report(journal.path, tmp_path / "out")
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            str(_chromium()),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--hide-scrollbars",
            "--window-size=1200,2400",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        check=True,
        timeout=120,
        capture_output=True,
    )
    pixels = image.imread(str(shot))
    assert pixels.shape[0] >= 1000 and pixels.shape[1] >= 1000
    rgb = pixels[:, :, :3]
    not_white = (rgb < 0.95).any(axis=2).mean()
    assert not_white > 0.03, f"only {not_white:.1%} of the screenshot is not white"
    assert (
        len({tuple(p) for p in rgb[::10, ::10].reshape(-1, 3).round(2).tolist()}) > 20
    )  # plots, not one colour


async def test_gate_blocks_are_journaled_as_deltas_per_market(autojump_clock: object) -> None:
    import types

    import trio

    from hip3.service.app import _journal_gate_blocks
    from hip3.strategy.scanner import DetectorStats

    tsla, gold = MARKETS["xyz:TSLA"], MARKETS["xyz:GOLD"]
    stats = DetectorStats()
    bot = types.SimpleNamespace(scanner=types.SimpleNamespace(stats=stats))
    notes: list[tuple[str, str, dict[str, int]]] = []
    journal = types.SimpleNamespace(note=lambda kind, market, data: notes.append((kind, market, dict(data))))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_journal_gate_blocks, bot, journal, 10.0)
        stats.blocked_by_market[(tsla, "mark_mid")] += 3
        await trio.sleep(10.5)
        assert notes == [("gate_blocks", "xyz:TSLA", {"mark_mid": 3})]
        stats.blocked_by_market[(tsla, "mark_mid")] += 2
        stats.blocked_by_market[(gold, "bbo_age")] += 1
        await trio.sleep(10)
        assert notes[1:] == [
            ("gate_blocks", "xyz:GOLD", {"bbo_age": 1}),
            ("gate_blocks", "xyz:TSLA", {"mark_mid": 2}),
        ]
        await trio.sleep(10)
        assert len(notes) == 3  # nothing new, nothing noted
        stats.blocked_by_market[(gold, "halted")] += 4
        nursery.cancel_scope.cancel()
    assert notes[-1] == ("gate_blocks", "xyz:GOLD", {"halted": 4})  # the last counts are noted at shutdown
