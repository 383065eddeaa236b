"""Replay: the fill model on hand-made recordings, gaps, determinism, the sweep, the journal."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from hip3.replay.cli import main as replay_main
from hip3.service.cli import main as hip3_main

T0 = 1_780_000_000_000  # ms; any UTC moment

CONFIG = """
mode = "observation"
sessions = []
[markets]
dex = "xyz"
coins = ["AAA", "BBB"]
[detector]
taker_fee_bps = 9
oracle_direction_filter = false
min_book_notional = 0
baseline_warmup_secs = 0
[gates]
max_mark_mid_divergence_bps = 0
[position]
max_notional_per_market = 50
[exits]
time_stop_secs = 5
"""


def bbo(t: float, coin: str, bid: tuple[str, str] | None, ask: tuple[str, str] | None) -> dict[str, Any]:
    def level(lv: tuple[str, str] | None) -> dict[str, Any] | None:
        return None if lv is None else {"px": lv[0], "sz": lv[1], "n": 1}

    data = {"coin": f"xyz:{coin}", "time": int(t), "bbo": [level(bid), level(ask)]}
    return {"t": t, "frame": json.dumps({"channel": "bbo", "data": data})}


def ctx(t: float, coin: str, oracle: str, mark: str | None = None) -> dict[str, Any]:
    c = {"oraclePx": oracle, "markPx": mark or oracle, "openInterest": "10", "funding": "0"}
    return {
        "t": t,
        "frame": json.dumps({"channel": "activeAssetCtx", "data": {"coin": f"xyz:{coin}", "ctx": c}}),
    }


def gap(t: float) -> dict[str, Any]:
    return {"t": t, "gap": "reconnect"}


def write(path: Path, lines: list[dict[str, Any]]) -> Path:
    with gzip.open(path, "wt", encoding="utf-8") as out:
        for line in lines:
            out.write(json.dumps(line) + "\n")
    return path


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "hip3.toml"
    path.write_text(CONFIG)
    return path


def dislocation(
    coin: str = "AAA",
    *,
    t: float = T0,
    ask_sz: str = "0.3",
    later: list[dict[str, Any]] | None = None,
    high: str = "102",
) -> list[dict[str, Any]]:
    """A book at 100 with the oracle at 100, then the oracle jumps to 102 while the ask stays at 100.05."""
    lines = [
        ctx(t, coin, "100"),
        bbo(t + 10, coin, ("99.95", "1"), ("100.05", ask_sz)),
        ctx(t + 1000, coin, high),
    ]
    lines += later or []
    # the book catches up: the exit sells into a bid near the oracle
    lines += [bbo(t + 3000, coin, ("101.95", "5"), ("102.05", "5")), ctx(t + 3500, coin, high)]
    return lines


def run(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code = replay_main(list(args))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def total_line(out: str) -> str:
    return next(line for line in out.splitlines() if line.startswith("total"))


def fills_of(journal: Path) -> list[tuple[str, str, str, str, str]]:
    import sqlite3

    db = sqlite3.connect(journal)
    try:
        return db.execute("SELECT coin, side, px, sz, fee FROM fills ORDER BY time_ms, tid").fetchall()
    finally:
        db.close()


def test_full_fill_at_the_displayed_price_and_size(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = write(tmp_path / "r.jsonl.gz", dislocation())
    journal = tmp_path / "j.sqlite3"
    out = run(capsys, str(rec), "--config", str(config), "--journal", str(journal))
    assert "signals    1" in total_line(out) and "filled    1" in total_line(out)
    fills = fills_of(journal)
    assert fills[0][:4] == ("xyz:AAA", "B", "100.05", "0.3")  # the ask as recorded, all of it
    assert fills[1][1] == "A" and fills[1][2] == "101.95"  # out at the caught-up bid


def test_partial_fill_at_displayed_size_when_latency_reaches_a_thinner_book(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 50 ms after the signal the ask still sits at 100.05 but shows only 0.1
    thinner = [bbo(T0 + 1040, "AAA", ("99.95", "1"), ("100.05", "0.1"))]
    rec = write(tmp_path / "r.jsonl.gz", dislocation(later=thinner))
    journal = tmp_path / "j.sqlite3"
    out = run(capsys, str(rec), "--config", str(config), "--journal", str(journal), "--latency-ms", "50")
    assert "partial 1" in out
    assert fills_of(journal)[0][2:4] == ("100.05", "0.1")
    # without latency the same recording fills the whole signal size at the earlier book
    journal0 = tmp_path / "j0.sqlite3"
    run(capsys, str(rec), "--config", str(config), "--journal", str(journal0))
    assert fills_of(journal0)[0][2:4] == ("100.05", "0.3")


def test_latency_moves_the_fill_to_the_later_book(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 20 ms after the signal the ask has moved up to 100.08 (still inside the 10 bps slippage limit)
    moved = [bbo(T0 + 1020, "AAA", ("99.95", "1"), ("100.08", "0.3"))]
    rec = write(tmp_path / "r.jsonl.gz", dislocation(later=moved))
    early, late = tmp_path / "a.sqlite3", tmp_path / "b.sqlite3"
    run(capsys, str(rec), "--config", str(config), "--journal", str(early), "--latency-ms", "10")
    run(capsys, str(rec), "--config", str(config), "--journal", str(late), "--latency-ms", "30")
    assert fills_of(early)[0][2] == "100.05"
    assert fills_of(late)[0][2] == "100.08"


def test_pulled_quote_with_probability_one(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = write(tmp_path / "r.jsonl.gz", dislocation())
    journal = tmp_path / "j.sqlite3"
    out = run(capsys, str(rec), "--config", str(config), "--journal", str(journal), "--pull-probability", "1")
    assert "pulled 1" in out and "filled    0" in total_line(out)
    assert fills_of(journal) == []


def test_fee_is_the_markets_taker_rate(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # READY needs every market's data before any entry
    early_bbb = [ctx(T0 + 1, "BBB", "100"), bbo(T0 + 2, "BBB", ("99.95", "1"), ("100.05", "0.3"))]
    lines = sorted(
        dislocation("AAA") + early_bbb + dislocation("BBB", t=T0 + 10_000), key=lambda line: line["t"]
    )
    rec = write(tmp_path / "r.jsonl.gz", lines)
    journal = tmp_path / "j.sqlite3"
    run(capsys, str(rec), "--config", str(config), "--journal", str(journal), "--fee", "AAA=0.9")
    by_coin = {(c, s): (Decimal(px), Decimal(sz), Decimal(fee)) for c, s, px, sz, fee in fills_of(journal)}
    px, sz, fee = by_coin[("xyz:AAA", "B")]
    assert fee == px * sz * Decimal("0.9") / 10_000
    px, sz, fee = by_coin[("xyz:BBB", "B")]
    assert fee == px * sz * Decimal(9) / 10_000  # the config's 4.5 bp × 2 where no --fee is given


def test_a_gap_resets_the_book_so_nothing_trades_across_it(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [
        ctx(T0, "AAA", "100"),
        bbo(T0 + 10, "AAA", ("99.95", "1"), ("100.05", "0.3")),
        gap(T0 + 500),
        ctx(T0 + 1000, "AAA", "102"),  # the oracle moves after the gap; the book from before is gone
    ]
    out = run(capsys, str(write(tmp_path / "r.jsonl.gz", lines)), "--config", str(config))
    assert "1 gaps" in out and "signals    0" in total_line(out)
    # the same data without the gap does signal
    out = run(
        capsys, str(write(tmp_path / "s.jsonl.gz", [lines[0], lines[1], lines[3]])), "--config", str(config)
    )
    assert "signals    1" in total_line(out)


def test_an_order_on_its_way_at_a_gap_never_fills(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = dislocation(
        later=[
            gap(T0 + 1010),
            bbo(T0 + 1020, "AAA", ("99.95", "1"), ("100.05", "0.3")),
            ctx(T0 + 1030, "AAA", "102"),
        ]
    )
    out = run(
        capsys, str(write(tmp_path / "r.jsonl.gz", lines)), "--config", str(config), "--latency-ms", "50"
    )
    assert "gap 1" in out and "filled    0" in total_line(out)


def test_same_files_config_and_seed_give_the_same_bytes(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines: list[dict[str, Any]] = []
    for i in range(20):
        # a new oracle level each time: the detector signals once per oracle value and side
        lines += dislocation("AAA" if i % 2 else "BBB", t=T0 + i * 4000, high=f"{102 + i / 100:.2f}")
    lines += [ctx(T0 + 1, "AAA", "100"), bbo(T0 + 2, "AAA", ("99.95", "1"), ("100.05", "0.3"))]
    rec = write(tmp_path / "r.jsonl.gz", sorted(lines, key=lambda line: line["t"]))
    args = [
        str(rec),
        "--config",
        str(config),
        "--pull-probability",
        "0.5",
        "--seed",
        "7",
        "--latency-ms",
        "5",
    ]
    first, second = run(capsys, *args), run(capsys, *args)
    assert first == second
    assert "pulled" in first and "filled    0" not in total_line(first)  # the draws did both
    other = run(capsys, *args[:-4], "--seed", "8", "--latency-ms", "5")
    assert other.splitlines()[1] == first.splitlines()[1].replace("seed 7", "seed 8")


def test_sweep_prints_one_line_per_setting(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = write(tmp_path / "r.jsonl.gz", dislocation())
    out = run(
        capsys, str(rec), "--config", str(config),
        "--set", "detector.min_edge_bps=2,5,400", "--set", "exits.time_stop_secs=3,20",
    )  # fmt: skip
    lines = [line for line in out.splitlines() if line.startswith("detector.")]
    assert len(lines) == 6
    assert lines[0].startswith("detector.min_edge_bps=2 exits.time_stop_secs=3")
    assert lines[-1].startswith("detector.min_edge_bps=400 exits.time_stop_secs=20")
    # a 400 bps margin leaves nothing to take from a 200 bps dislocation
    assert "signals    0" in lines[-1] and "signals    1" in lines[0]


def test_a_bad_sweep_key_names_its_path(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = write(tmp_path / "r.jsonl.gz", dislocation())
    assert replay_main([str(rec), "--config", str(config), "--set", "detector.min_edge=2"]) == 2
    assert "detector.min_edge" in capsys.readouterr().err


def test_journal_questions_answer_on_a_replay_journal(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = write(tmp_path / "r.jsonl.gz", dislocation())
    journal = tmp_path / "j.sqlite3"
    assert hip3_main(["replay", str(rec), "--config", str(config), "--journal", str(journal)]) == 0
    capsys.readouterr()
    assert hip3_main(["journal", str(journal), "trips"]) == 0
    trips = capsys.readouterr().out
    row = next(line for line in trips.splitlines() if "xyz:AAA" in line)
    assert "long" in row and "100.05" in row and "101.95" in row
    assert hip3_main(["journal", str(journal), "pnl"]) == 0
    pnl = capsys.readouterr().out
    fills = fills_of(journal)
    fees = sum((Decimal(f[4]) for f in fills), Decimal(0))
    assert f"{fees}" in pnl or f"{fees.normalize()}" in pnl


def test_lot_is_the_finest_the_recorded_prices_allow(tmp_path: Path, config: Path) -> None:
    from hip3.replay.cli import recorded_markets
    from hip3.service.config import load_config

    # prices with 2 decimals allow at most 6 - 2 = 4 size decimals; sizes shown as "20.0" say >= 1
    lines = [ctx(T0, "AAA", "432.15"), bbo(T0 + 1, "AAA", ("432.05", "20.0"), ("432.15", "20.0"))]
    lines += [ctx(T0, "BBB", "1.2345"), bbo(T0 + 1, "BBB", ("1.2344", "300"), ("1.2346", "300"))]
    rec = write(tmp_path / "r.jsonl.gz", lines)
    specs = {m.coin: s.sz_decimals for m, s in recorded_markets([rec], load_config(config), {}).items()}
    assert specs == {"AAA": 4, "BBB": 2}
    forced = recorded_markets([rec], load_config(config), {"AAA": 3})
    assert {m.coin: s.sz_decimals for m, s in forced.items()} == {"AAA": 3, "BBB": 2}


SATURDAY_NOON_NEW_YORK = 1_780_156_800_000  # Sat 2026-05-30 12:00 EDT: inside the trade.xyz weekend


def test_a_recording_made_on_a_trade_xyz_weekend_is_replayed_with_entries_blocked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The default calendar (no [[sessions]] in the file) blocks entries on dex xyz from Friday
    # 20:00 to Sunday 20:00 New York time; a replay must read that from the recording's own
    # time, not from the machine's clock on the day it is replayed.
    path = tmp_path / "default-sessions.toml"
    path.write_text(CONFIG.replace("sessions = []\n", ""))
    weekend = write(tmp_path / "sat.jsonl.gz", dislocation(t=SATURDAY_NOON_NEW_YORK))
    out = run(capsys, str(weekend), "--config", str(path))
    assert "signals    0" in total_line(out), out
    # The same recording stamped on a weekday (Thursday) trades, so the block is the calendar's.
    weekday = write(tmp_path / "thu.jsonl.gz", dislocation(t=T0))
    assert "signals    1" in total_line(run(capsys, str(weekday), "--config", str(path)))


def test_the_entry_limit_never_goes_past_the_signals_worst_price_as_live(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The oracle rises to 100.30 over an ask at 100.05: 24.9 bps of edge against a 23.5 bps
    # threshold (9 + 9 fees, 5 bps half-spread, 0.5 margin), so the round trip pays up to 100.069.
    # By the time the order arrives the makers have moved the ask to 100.10, within the 10 bps
    # slippage bound but past that price: the live executor's limit (100.06) does not reach it.
    lines = [
        ctx(T0, "AAA", "100"),
        bbo(T0 + 10, "AAA", ("99.95", "1"), ("100.05", "0.3")),
        ctx(T0 + 1000, "AAA", "100.30"),
        bbo(T0 + 1020, "AAA", ("99.95", "1"), ("100.10", "0.3")),
    ]
    rec = write(tmp_path / "r.jsonl.gz", lines)
    journal = tmp_path / "j.sqlite3"
    out = run(capsys, str(rec), "--config", str(config), "--journal", str(journal), "--latency-ms", "50")
    assert "signals    1" in total_line(out), out
    assert fills_of(journal) == []


def test_a_quote_under_where_its_book_settles_is_stale_for_the_pull_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A book living 30 bps above its oracle (100.28 / 100.32 over 100) for 12 s: the baseline
    # measures +30. The oracle then falls to 99.75: the bid 100.28 is 23 bps above where the book
    # settles (100.05): the bot sells it as stale, and a stale quote is what the makers pull
    # first. With pull probability 1 it must be gone, as for any other stale quote.
    path = tmp_path / "baseline.toml"
    path.write_text(CONFIG.replace("baseline_warmup_secs = 0", "baseline_warmup_secs = 5"))
    lines = []
    for second in range(13):
        lines.append(ctx(T0 + 1000 * second, "AAA", "100.001" if second % 2 else "100"))
        if second == 0:
            lines.append(bbo(T0 + 10, "AAA", ("100.28", "0.3"), ("100.32", "1")))
    lines.append(ctx(T0 + 13_000, "AAA", "99.75"))
    rec = write(tmp_path / "r.jsonl.gz", lines)
    journal = tmp_path / "j.sqlite3"
    out = run(capsys, str(rec), "--config", str(path), "--journal", str(journal), "--pull-probability", "1")
    assert "signals    1" in total_line(out), out
    assert "pulled 1" in out and fills_of(journal) == []
