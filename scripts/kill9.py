"""Crash and restart: the bot in its own process, killed with SIGKILL at random points, restarted.

Run as `.venv/bin/python scripts/kill9.py --iterations 30 --seed 7`. The simulator runs in this
process on 127.0.0.1 with a throwaway master account and agent key; its TSLA market is driven
here: the oracle jumps away from a fixed book (a buy or a sell signal), so the bot keeps entering
and leaving by its time stop, and post answers are delayed so orders are often in flight. Each
iteration starts `python -m hip3 run` as systemd would, lets it trade, and kills it with SIGKILL —
at a random moment, or right after the simulator received one of its orders (before the bot
heard the answer). After each restart, checked against the simulator's own record:

  positions adopted at restart equal the simulator's (between some kills the account is moved
  while the bot is down: a manual close, a liquidation, another client's order); every cloid the simulator received is in
  the journal (written before it was sent); no cloid was received twice; no order sent before
  the restart is left in doubt (the restart settled each one by cloid); the day's loss in the
  hard-stop state file equals the account's closedPnl minus fees (fills while down included;
  an in-doubt order's fills may count twice when the kill fell between the day's total and the
  journal).

At the end the bot is stopped with SIGTERM: exit code 0 and the account flat. Prints a summary
and every invariant PASS/FAIL; exits 1 on any FAIL.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import signal
import sqlite3
import sys
import tempfile
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import trio

from hip3.hyperliquid.signing import address_of
from hip3.sim import Sim, load_sim_config, open_sim

COIN = "TSLA"
NAME = "xyz:TSLA"
BID, ASK = Decimal("432.05"), Decimal("432.15")
EDGE = Decimal("0.006")  # 60 bps: well over the default all-in threshold
BOOK_SIZE = Decimal(20)
#: Orders sent within this long before the restart are the ones a crash can leave in doubt.
WINDOW_MS = 10 * 60_000


@attrs.define
class Invariant:
    name: str
    checks: int = 0
    failures: list[str] = attrs.field(factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def check(self, ok: bool, detail: str) -> None:
        self.checks += 1
        if not ok and len(self.failures) < 20:
            self.failures.append(detail)


@attrs.define
class Kill9Result:
    seed: int
    summary: dict[str, Any]
    invariants: list[Invariant]
    last_log: str

    @property
    def ok(self) -> bool:
        return all(i.ok for i in self.invariants)

    def report(self) -> str:
        out = [f"kill -9: seed {self.seed}"]
        width = max(len(k) for k in self.summary)
        out += [f"  {k:<{width}}  {v}" for k, v in self.summary.items()]
        out.append("invariants:")
        for inv in self.invariants:
            out.append(f"  {'PASS' if inv.ok else 'FAIL'}  {inv.name} ({inv.checks} checks)")
            out += [f"        {f}" for f in inv.failures]
        if not self.ok:
            out.append("last bot log (tail):")
            out += [f"  | {line}" for line in self.last_log.splitlines()[-40:]]
        out.append("RESULT: " + ("PASS" if self.ok else "FAIL"))
        return "\n".join(out)


def bot_config(sim: Sim, master: str, state: Path) -> str:
    """TOML: trading the simulator's TSLA, quick exits and timeouts, the journal in `state`."""
    # The simulator's market has no weekend and no structural gap: neither the date nor a baseline
    # warm-up after each restart may hold entries back.
    return f"""
mode = "trading"
sessions = []
[network]
name = "testnet"
info_url = "{sim.info_url}"
exchange_url = "{sim.exchange_url}"
ws_url = "{sim.ws_url}"
[account]
address = "{master}"
[markets]
dex = "xyz"
coins = ["{COIN}"]
[position]
max_notional_per_market = 100
max_total_notional = 200
max_concurrent_positions = 1
position_resync_interval_secs = 5
[detector]
oracle_direction_filter = false
signal_dedup = false
baseline_warmup_secs = 0
[gates]
max_bbo_age_ms = 0
time_regression_hold_secs = 0
[exits]
time_stop_secs = 1.0
min_holding_secs = 0.2
check_interval_secs = 0.05
retry_backoff_initial_secs = 0.2
retry_backoff_max_secs = 1
[executor]
post_timeout_secs = 2
resolve_timeout_secs = 5
[shutdown]
flatten_on_shutdown = true
settle_timeout_secs = 5
[websocket]
reconnect_initial_secs = 0.2
reconnect_max_secs = 1
[hard_stop]
max_daily_loss_usd = 1000
state_file = "{state / "hard_stop.json"}"
[journal]
path = "{state / "journal.sqlite3"}"
[logging]
level = "INFO"
"""


@attrs.define
class Market:
    """The simulator's TSLA under this script's control: a fixed book, an oracle that jumps."""

    sim: Sim
    rng: random.Random
    mood: str = "calm"

    def set(self, mood: str) -> None:
        self.mood = mood
        mid = (BID + ASK) / 2
        oracle = {"calm": mid, "up": ASK / (1 - EDGE), "down": BID / (1 + EDGE)}[mood].quantize(
            Decimal("0.01")
        )
        # a slightly different size each time: a fresh bbo
        size = BOOK_SIZE + Decimal(self.rng.randint(0, 9))
        self.sim.engine.set_book(COIN, bids=[(BID, size)], asks=[(ASK, size)])
        self.sim.engine.set_oracle(COIN, oracle)
        self.sim.engine.update_mark(COIN, sorted((oracle, BID, ASK))[1])

    async def run(self) -> None:
        while True:
            self.set(self.rng.choice(["up", "down", "up", "down", "calm"]))
            await trio.sleep(self.rng.uniform(0.4, 1.2))


def sim_orders(sim: Sim, user: str) -> Counter[str]:
    user = user.lower()
    return Counter(str(o.cloid).lower() for o in sim.engine.orders.values() if o.user == user)


def sim_positions(sim: Sim, user: str) -> dict[str, Decimal]:
    return {k: v for k, v in sim.engine.positions(user).items() if v != 0}


def journal_rows(path: Path, query: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return db.execute(query, args).fetchall()
    finally:
        db.close()


def restarts(path: Path) -> list[tuple[int, dict[str, Any]]]:
    if not path.exists():
        return []
    try:
        rows = journal_rows(path, "SELECT at_ms, data FROM records WHERE kind = 'restart' ORDER BY id")
    except sqlite3.OperationalError as exc:
        # The bot has created the file but not its tables yet, or is between two schema
        # migrations (it was just started): no restart row.
        if "no such table" in str(exc) or "no such column" in str(exc):
            return []
        raise
    return [(at, json.loads(data)) for at, data in rows]


async def run_kill9(
    iterations: int, seed: int, *, port: int = 0, keep_dir: Path | None = None
) -> Kill9Result:
    rng = random.Random(seed)
    sim_cfg = attrs.evolve(load_sim_config(None).with_seed(seed), is_mainnet=False)
    agent_key = "0x" + secrets.token_hex(32)
    master = address_of("0x" + secrets.token_hex(32))  # only its address is used
    adopted = Invariant("positions adopted at each restart == simulator's")
    written = Invariant("every cloid the simulator received was journaled before it was sent")
    once = Invariant("no cloid received twice by the simulator")
    settled = Invariant("no order sent before a restart left in doubt after it")
    final = Invariant("SIGTERM at the end: exit 0 and the account flat")
    counted = Invariant(
        "the day's loss at each restart counts every fill (== simulator's closedPnl - fees; an "
        "in-doubt order's fills twice only when killed between the day's total and the journal)"
    )
    first_day = datetime.now(UTC).date()
    counted_twice = Decimal(0)  # the documented race: net of in-doubt fills counted a second time
    restarts_counting_twice = 0
    counts: Counter[str] = Counter()
    foreign: Counter[str] = Counter()
    foreign_cloids: set[str] = set()
    kill_rng = random.Random(seed + 2)
    in_doubt_total = 0
    resolved: Counter[str] = Counter()
    last_log = ""
    with tempfile.TemporaryDirectory(prefix="hip3-kill9-") as tmp:
        state = keep_dir or Path(tmp)
        state.mkdir(parents=True, exist_ok=True)
        journal = state / "journal.sqlite3"
        async with open_sim(sim_cfg, port=port) as sim:
            sim.engine.fund(master, 10_000)
            sim.engine.approve_agent(master, address_of(agent_key))
            sim.faults.post_response_delay = 0.3  # orders stay unanswered for a while: in flight
            config = state / "config.toml"
            config.write_text(bot_config(sim, master, state))
            env = {**os.environ, "HIP3_PRIVATE_KEY": agent_key, "PYTHONUNBUFFERED": "1"}
            market = Market(sim, random.Random(seed + 1))  # its own, so the kill plan is the seed's
            market.set("calm")
            async with trio.open_nursery() as nursery:
                for i in range(iterations + 1):
                    last = i == iterations
                    market.set("calm")  # nothing trades while the bot is down or starting
                    await trio.sleep(0.2)  # whatever the killed bot had on the wire has landed
                    if i > 0 and not last:
                        # While it is down, the account moves without it: the restart must adopt that.
                        foreign[_act_while_down(sim, master, kill_rng, foreign_cloids)] += 1
                    before = sim_positions(sim, master)
                    seen = len(restarts(journal))
                    log_path = state / f"bot-{i}.log"
                    with log_path.open("wb") as log_file:
                        proc = await trio.lowlevel.open_process(
                            [sys.executable, "-m", "hip3", "run", "--config", str(config)],
                            stdout=log_file,
                            stderr=log_file,
                            env=env,
                        )
                        try:
                            with trio.move_on_after(30) as waiting:
                                while len(restarts(journal)) <= seen and proc.poll() is None:
                                    await trio.sleep(0.05)
                            if waiting.cancelled_caught or proc.poll() is not None:
                                last_log = log_path.read_text(errors="replace")
                                adopted.check(
                                    False, f"iteration {i}: the bot did not start (exit {proc.poll()})"
                                )
                                break
                            at_ms, record = restarts(journal)[-1]
                            got = {k: Decimal(v) for k, v in record.get("positions", {}).items()}
                            adopted.check(
                                got == before, f"iteration {i}: adopted {got}, simulator had {before}"
                            )
                            if datetime.now(UTC).date() == first_day:  # the day's loss restarts at midnight
                                twice = _check_daily_loss(
                                    sim,
                                    master,
                                    state / "hard_stop.json",
                                    i,
                                    set(record.get("resolved", {})),
                                    counted_twice,
                                    counted,
                                )
                                if twice:
                                    counted_twice += twice
                                    restarts_counting_twice += 1
                            in_doubt_total += int(record.get("in_doubt", 0))
                            resolved.update(record.get("resolved", {}).values())
                            _check_journal(
                                sim, master, journal, at_ms, i, written, once, settled, foreign_cloids
                            )
                            if last:
                                final.check(*(await _stop(proc, sim, master, market)))
                            else:
                                how = await _trade_then_kill(proc, sim, master, market, rng, nursery)
                                counts[how] += 1
                        finally:
                            if proc.poll() is None:
                                proc.kill()
                                await proc.wait()
                    last_log = log_path.read_text(errors="replace")
                nursery.cancel_scope.cancel()
            received = sim_orders(sim, master)
            for cloid in [*foreign_cloids, "none"]:
                received.pop(cloid, None)
            _check_journal(sim, master, journal, None, iterations, written, once, settled, foreign_cloids)
            fills = sim.engine.fills(master)
    summary: dict[str, Any] = {
        "iterations (kill -9 + restart)": iterations,
        "killed right after an order reached the simulator": counts["after_order"],
        "killed at a random moment": counts["random"],
        "bot orders received by the simulator": sum(received.values()),
        "fills": len(fills),
        "orders in doubt at restarts": in_doubt_total,
        "settled at restart as": dict(sorted(resolved.items())) or "-",
        "while the bot was down": dict(sorted(foreign.items())) or "-",
        "restarts that counted an in-doubt order's fills twice": restarts_counting_twice,
    }
    return Kill9Result(seed, summary, [adopted, written, once, settled, counted, final], last_log)


def _check_journal(
    sim: Sim,
    master: str,
    journal: Path,
    restart_ms: int | None,
    i: int,
    written: Invariant,
    once: Invariant,
    settled: Invariant,
    foreign_cloids: set[str],
) -> None:
    received = sim_orders(sim, master)
    for cloid in [*foreign_cloids, "none"]:  # orders placed as someone else (a manual close has no cloid)
        received.pop(cloid, None)
    journaled = {c.lower() for (c,) in journal_rows(journal, "SELECT cloid FROM orders")}
    missing = set(received) - journaled
    written.check(not missing, f"iteration {i}: received but never journaled: {sorted(missing)}")
    twice = {c: n for c, n in received.items() if n > 1}
    once.check(not twice, f"iteration {i}: received more than once: {twice}")
    if restart_ms is not None:
        doubt = journal_rows(
            journal,
            "SELECT cloid FROM orders o WHERE sent_ms >= ? AND sent_ms < ? AND NOT EXISTS "
            "(SELECT 1 FROM order_events e WHERE e.cloid = o.cloid AND e.final)",
            (restart_ms - WINDOW_MS, restart_ms - 1),
        )
        settled.check(not doubt, f"iteration {i}: still in doubt after the restart: {[c for (c,) in doubt]}")


def _check_daily_loss(
    sim: Sim,
    master: str,
    state_file: Path,
    i: int,
    resolved: set[str],
    counted_twice: Decimal,
    counted: Invariant,
) -> Decimal:
    """The restarted bot's daily total (on disk once the restart is recorded) against the
    simulator's account, which has traded only today: fills the killed runs saw, fills of orders
    in doubt and fills while the bot was down (manual closes, liquidations, other clients' orders)
    each counted once. One race is allowed, as documented: killed after writing the day's total
    and before journaling the fill, the restart counts the fills of that order (in doubt) again.
    Returns the net counted twice at this restart (0 when exact)."""
    fills = sim.engine.fills(master)
    want = sum((Decimal(f["closedPnl"]) - Decimal(f["fee"]) for f in fills), Decimal(0)) + counted_twice
    in_doubt = {c.lower() for c in resolved}
    doubt_net = sum(
        (
            Decimal(f["closedPnl"]) - Decimal(f["fee"])
            for f in fills
            if str(f.get("cloid")).lower() in in_doubt
        ),
        Decimal(0),
    )
    try:
        got = Decimal(json.loads(state_file.read_text())["daily"]["net_pnl"])
    except (OSError, ValueError, KeyError) as exc:
        counted.check(False, f"iteration {i}: no daily total in {state_file}: {exc}")
        return Decimal(0)
    if doubt_net and got == want + doubt_net:
        counted.check(True, "")
        return doubt_net
    counted.check(got == want, f"iteration {i}: the day's loss file says {got}, the account's fills {want}")
    return Decimal(0)


def _act_while_down(sim: Sim, master: str, rng: random.Random, foreign_cloids: set[str]) -> str:
    """Move the account as someone else would while the bot is dead; returns what was done."""
    held = sim_positions(sim, master)
    what = rng.choice(["nothing", "nothing", "manual_close", "liquidation", "foreign_order"])
    if what in ("manual_close", "liquidation") and not held:
        return f"{what} (nothing held)"
    if what == "manual_close":
        sim.manual_close(master, NAME)
    elif what == "liquidation":
        sim.liquidate(master, NAME)
    elif what == "foreign_order":
        cloid = "0x" + rng.getrandbits(128).to_bytes(16, "big").hex()
        foreign_cloids.add(cloid)
        sim.foreign_order(master, NAME, is_buy=rng.random() < 0.5, sz=Decimal("0.03"), cloid=cloid)
    return what


async def _trade_then_kill(
    proc: trio.Process, sim: Sim, master: str, market: Market, rng: random.Random, nursery: trio.Nursery
) -> str:
    """Let the bot trade, then SIGKILL it: at a random moment or right after an order arrived."""
    scope = trio.CancelScope()

    async def drive() -> None:
        with scope:
            await market.run()

    nursery.start_soon(drive)
    how = rng.choice(["after_order", "random"])
    try:
        if how == "random":
            await trio.sleep(rng.uniform(0.5, 4.0))
        else:
            known = sum(sim_orders(sim, master).values())
            with trio.move_on_after(6):
                while sum(sim_orders(sim, master).values()) == known:
                    await trio.sleep(0.002)
            # Still inside the delayed answer. Half the time at once: the fill reaches the bot's
            # stream at once, and a bot that has journaled the fill's order update has settled
            # it; killed before that, the order is in doubt at the restart.
            if rng.random() < 0.5:
                await trio.sleep(rng.uniform(0, 0.15))
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    finally:
        scope.cancel()
    return how


async def _stop(proc: trio.Process, sim: Sim, master: str, market: Market) -> tuple[bool, str]:
    """Trade a little, then SIGTERM with the market calm: exit 0 and flat (flatten_on_shutdown)."""
    with trio.move_on_after(2):
        await market.run()
    market.set("calm")
    proc.send_signal(signal.SIGTERM)
    with trio.move_on_after(20):
        await proc.wait()
    left = sim_positions(sim, master)
    return proc.returncode == 0 and not left, f"exit {proc.returncode}, positions {left or 'flat'}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--keep", default=None, help="keep the journal and the bot logs in this directory")
    args = parser.parse_args(argv)
    if not 1 <= args.iterations <= 10_000:
        parser.error(f"--iterations must be in [1, 10000], got {args.iterations}")
    keep = Path(args.keep) if args.keep else None
    result = trio.run(lambda: run_kill9(args.iterations, args.seed, port=args.port, keep_dir=keep))
    print(result.report())
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
