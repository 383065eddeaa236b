"""Edge benchmark: the bot on its default config against the simulator, per seed and in total.

For each seed, `hip3 demo`'s setup runs for `--seconds` and is scored (`hip3.service.scoring`):
dislocations above cost the simulator recorded, how many were capturable and taken (capture
ratio), round trips, and net PnL after fees. Goal: net PnL > 0 on every seed, capture >= 80 %.
Runs on the real clock over loopback (about `seconds` per seed). Also `scripts/bench --only edge`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from decimal import Decimal

import trio

from hip3.service.demo import run_scored
from hip3.service.scoring import RunScore

DEFAULT_SEEDS = (7, 1, 2)
DEFAULT_SECONDS = 90.0
CAPTURE_GOAL = Decimal("0.8")


def _line(label: str, score: RunScore) -> str:
    ratio = score.capture_ratio
    capture = "n/a" if ratio is None else f"{ratio * 100:5.1f} %"
    seen = "?" if score.capturable is None else f"{score.taken}/{score.capturable}"
    every = "?" if score.dislocations is None else f"{score.taken_any}/{score.dislocations}"
    return (
        f"{label:>8}: capture {capture} ({seen} capturable; {every} of all above cost), "
        f"round trips {score.round_trips:3d}, net PnL {score.net_pnl:+.4f} USDC after fees "
        f"{score.fees:.4f}, {score.bps_per_round_trip:+.1f} bps/round trip"
    )


def total(scores: list[RunScore]) -> RunScore:
    def add(values: list[int | None]) -> int | None:
        return None if any(v is None for v in values) else sum(v for v in values if v is not None)

    return RunScore(
        dislocations=add([s.dislocations for s in scores]),
        capturable=add([s.capturable for s in scores]),
        taken=add([s.taken for s in scores]),
        taken_any=add([s.taken_any for s in scores]),
        round_trips=sum(s.round_trips for s in scores),
        gross_pnl=sum((s.gross_pnl for s in scores), Decimal(0)),
        fees=sum((s.fees for s in scores), Decimal(0)),
        entry_notional=sum((s.entry_notional for s in scores), Decimal(0)),
    )


def run(seeds: tuple[int, ...], seconds: float) -> tuple[list[str], bool]:
    """Lines to print and whether every seed met the goal (PnL > 0, capture >= 80 % where measured)."""
    lines: list[str] = []
    scores: list[RunScore] = []
    ok = True
    for seed in seeds:
        score = trio.run(run_scored, seconds, seed)
        scores.append(score)
        lines.append(_line(f"seed {seed}", score))
        if score.by_market:
            markets = ", ".join(f"{coin} {n}: {net:+.3f}" for coin, n, net in score.by_market)
            lines.append(f"          round trips and net by market: {markets}")
        ratio = score.capture_ratio
        ok = ok and score.net_pnl > 0 and (ratio is None or ratio >= CAPTURE_GOAL)
    lines.append(_line("total", total(scores)))
    return lines, ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(DEFAULT_SEEDS))
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS, help="per seed")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    lines, ok = run(tuple(args.seeds), args.seconds)
    for line in lines:
        print(line, flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
