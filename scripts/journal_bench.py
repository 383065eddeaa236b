"""What the journal costs on the event loop: the write-ahead commit per order, and per batched record.

Run as `.venv/bin/python scripts/journal_bench.py [--dir DIR]` (DIR on the disk the journal will
live on; default: a temporary directory). Prints percentiles in microseconds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from hip3.core import Cloid, MarketKey, Side
from hip3.service.journal import FLUSH_CHUNK, prepare_journal
from hip3.trading.messages import Signal

TSLA = MarketKey("xyz", "TSLA", 110001)


def percentiles(samples_ns: list[int]) -> str:
    q = statistics.quantiles(samples_ns, n=100)
    return f"p50 {q[49] / 1000:.1f} µs, p99 {q[98] / 1000:.1f} µs, max {max(samples_ns) / 1000:.1f} µs"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--dir", default=None)
    parser.add_argument("--orders", type=int, default=5_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        journal = prepare_journal(str(Path(tmp) / "journal.sqlite3"))
        assert journal is not None
        sends: list[int] = []
        for _ in range(args.orders):
            cloid = Cloid.random()
            t0 = time.perf_counter_ns()
            journal.order_sending(cloid, TSLA, Side.BUY, Decimal("0.229"), Decimal("432.59"), False, "entry")
            sends.append(time.perf_counter_ns() - t0)
        signal = Signal(
            TSLA,
            Side.BUY,
            Decimal(30),
            Decimal(16),
            Decimal("434.7"),
            Decimal("432.15"),
            Decimal(20),
            Decimal("0.229"),
            1.0,
        )
        records: list[int] = []
        for _ in range(20_000):
            t0 = time.perf_counter_ns()
            journal.record(signal)
            records.append(time.perf_counter_ns() - t0)
        t0 = time.perf_counter_ns()
        flushed = 0
        chunks: list[int] = []
        while True:
            c0 = time.perf_counter_ns()
            n = journal.flush(FLUSH_CHUNK)
            if not n:
                break
            chunks.append(time.perf_counter_ns() - c0)
            flushed += n
        total = time.perf_counter_ns() - t0
        journal.close()
    print(f"write-ahead commit per order (WAL, synchronous=NORMAL): {percentiles(sends)}")
    print(f"record() per event on the loop (append only):           {percentiles(records)}")
    print(
        f"writer: {flushed} records in chunks of {FLUSH_CHUNK}, {total / flushed / 1000:.1f} µs per record; one chunk: {percentiles(chunks)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
