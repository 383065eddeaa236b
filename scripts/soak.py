"""Bounded soak: the simulator's live market and the whole bot in trading mode, with random faults.

Run as `.venv/bin/python scripts/soak.py --seconds 180 --seed 7`. Faults are switched on and off at
random moments drawn from a seeded RNG (duplicated fills, fills before responses, delayed and dropped
post responses, disconnects, stale snapshots, malformed frames, 429s, short feed stalls, and a
"storm" of dropped responses + 429s + disconnects at once), and account activity the bot did not
send (unless --no-foreign): the exchange liquidating a position, the owner closing one in the web
app, another client's IOC orders on the same account. Everything is on 127.0.0.1, with a
throwaway master account and agent key. The last few seconds run without faults, then the bot is
stopped (flattening) and the invariants are checked:

  exit code 0; the simulator's account ends flat; at every quiet checkpoint (no order pending or
  flattening in the tracker) the tracker's positions equal the simulator's; per-market notional
  never above the cap (plus one foreign order's notional: another client can trade on top of the
  bot's position before the bot hears of it); no cloid posted twice (the soak's own foreign orders
  excluded); no unexpected ERROR/CRITICAL log lines. kill -9 restarts: scripts/kill9.py (the bot
  in its own process; this soak runs it in-process to read its tracker).

Prints a summary and every invariant PASS/FAIL; exits 1 on any FAIL.
"""

from __future__ import annotations

import argparse
import logging
import random
import re
import secrets
import sqlite3
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import trio

from hip3.hyperliquid.signing import address_of
from hip3.service.app import Bot, run_bot
from hip3.service.config import config_from_mapping
from hip3.service.demo import demo_config
from hip3.service.keys import SecretKey
from hip3.service.logs import setup_logging
from hip3.sim import Sim, load_sim_config, open_sim

log = logging.getLogger("hip3.soak")

BALANCE_USD = 10_000
#: ERROR/CRITICAL lines that are the correct reaction to an injected fault, with why.
#: Anything else at ERROR or above fails the soak.
EXPECTED_ERRORS: tuple[tuple[str, str], ...] = (
    (
        r"hip3\.trading\.executor\.task: order 0x[0-9a-f]{32} abandoned: unresolved after",
        "a storm (dropped responses, ~90 % 429 on /info, WS flapping) can keep orderStatus from answering"
        " for longer than resolve_timeout_secs; abandoning and leaving it to the next resync is the"
        " designed reaction (the checkpoints and the final flat check still cover its position)",
    ),
)


# ---------------------------------------------------------------------------------------------
# Log capture


@attrs.define
class LogLine:
    at: float  # trio time when logged (0 outside trio)
    level: int
    text: str


class Capture(logging.Handler):
    """Keeps every record (formatted) so the report can show the lines around a failure."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[LogLine] = []
        self.setFormatter(logging.Formatter("%(levelname)-7s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            at = trio.current_time()
        except RuntimeError:
            at = 0.0
        try:
            text = self.format(record)
        except Exception:  # a broken record must not stop the soak
            text = f"{record.levelname} {record.name}: <unformattable {record.msg!r}>"
        self.lines.append(LogLine(at, record.levelno, text))

    def around(self, at: float, before: float = 3.0, after: float = 1.0, limit: int = 40) -> list[str]:
        near = [ln.text for ln in self.lines if at - before <= ln.at <= at + after]
        return near[-limit:]


# ---------------------------------------------------------------------------------------------
# Faults


@attrs.define
class FaultPlan:
    """Turns simulator fault switches on and off at random moments (seeded)."""

    sim: Sim
    rng: random.Random
    injected: Counter[str] = attrs.field(factory=Counter)
    active: set[str] = attrs.field(factory=set)
    #: the account whose positions foreign activity touches (None: no foreign activity)
    user: str | None = None
    foreign_cloids: set[str] = attrs.field(factory=set)
    #: foreign operations that found nothing to act on (no position to close or liquidate)
    foreign_skipped: Counter[str] = attrs.field(factory=Counter)

    def coins(self) -> list[str]:
        return sorted(c.split(":", 1)[-1] for c in self.sim.engine.markets)

    async def run(self) -> None:
        """Until cancelled: every 0.5-3 s, start one fault (windowed ones last 1-5 s)."""
        async with trio.open_nursery() as nursery:
            while True:
                await trio.sleep(self.rng.uniform(0.5, 3.0))
                kinds = FAULT_KINDS + (FOREIGN_KINDS if self.user is not None else ())
                name = self.rng.choice(kinds)
                if name in self.active:
                    continue
                nursery.start_soon(self._one, name)

    async def _one(self, name: str) -> None:
        f = self.sim.faults
        if name in FOREIGN_KINDS:
            await self._foreign(name)
            return
        self.injected[name] += 1
        # one-shot faults
        if name == "disconnect_now":
            log.info("soak fault: disconnect every WS client")
            self.sim.disconnect_all()
            return
        if name == "info_429_next":
            n = self.rng.randint(1, 3)
            log.info("soak fault: next %d /info requests answer 429", n)
            f.info_429_next += n
            return
        # windowed faults
        duration = self.rng.uniform(1.0, 5.0)
        self.active.add(name)
        try:
            log.info("soak fault on for %.1f s: %s", duration, name)
            if name == "duplicate_user_fills":
                f.duplicate_user_fills = True
            elif name == "fills_before_response":
                f.fills_before_response = True
            elif name == "post_response_delay":
                f.post_response_delay = round(self.rng.uniform(0.2, 2.0), 2)
            elif name == "drop_post_responses":
                f.drop_post_responses = True
            elif name == "disconnect_rate":
                f.disconnect_rate = self.rng.uniform(6, 30)
            elif name == "stale_clearinghouse_delay":
                f.stale_clearinghouse_delay = round(self.rng.uniform(0.3, 3.0), 2)
            elif name == "malformed_frame_rate":
                f.malformed_frame_rate = self.rng.uniform(0.005, 0.05)
            elif name == "info_429_rate":
                f.info_429_rate = self.rng.uniform(0.1, 0.4)
            elif name == "storm":
                # several at once: dropped answers while orderStatus mostly gets 429 and the WS flaps,
                # so an order's outcome can stay unknown past the executor's resolve timeout
                f.drop_post_responses = True
                f.info_429_rate = 0.9
                f.disconnect_rate = 30.0
            elif name == "stalled_markets":
                stalled = set(self.rng.sample(self.coins(), k=min(2, len(self.coins()))))
                f.stalled_markets |= stalled
            await trio.sleep(duration)
        finally:
            self.active.discard(name)
            _reset_one(f, name)
            log.info("soak fault off: %s", name)

    async def _foreign(self, name: str) -> None:
        """Account activity the bot did not send: a liquidation, a manual close, another client's order."""
        assert self.user is not None
        held = sim_positions(self.sim, self.user)
        if name in ("liquidation", "manual_close"):
            # The bot holds positions for seconds at a time: wait (bounded) for one to act on.
            with trio.move_on_after(5):
                while not held:
                    await trio.sleep(0.1)
                    held = sim_positions(self.sim, self.user)
            if not held:
                self.foreign_skipped[name] += 1
                return
            coin = self.rng.choice(sorted(held))
            if name == "liquidation":
                log.info("soak foreign: liquidation of %s %s", coin, held[coin])
                self.sim.liquidate(self.user, coin)
            else:
                log.info("soak foreign: manual close of %s %s", coin, held[coin])
                self.sim.manual_close(self.user, coin)
        else:
            coin = self.rng.choice(sorted(self.sim.engine.markets))
            market = self.sim.engine.market(coin)
            lot = Decimal(1).scaleb(-market.spec.sz_decimals)
            sz = max(lot, (FOREIGN_NOTIONAL / market.mark_px).quantize(lot))
            cloid = "0x" + self.rng.getrandbits(128).to_bytes(16, "big").hex()
            self.foreign_cloids.add(cloid)
            is_buy = self.rng.random() < 0.5
            log.info(
                "soak foreign: another client's IOC %s %s %s (cloid %s)",
                "buy" if is_buy else "sell",
                sz,
                coin,
                cloid,
            )
            self.sim.foreign_order(self.user, coin, is_buy=is_buy, sz=sz, cloid=cloid)
        self.injected[name] += 1

    def clear(self) -> None:
        for name in FAULT_KINDS:
            _reset_one(self.sim.faults, name)
        self.sim.faults.info_429_next = 0
        self.active.clear()


FAULT_KINDS = (
    "duplicate_user_fills",
    "fills_before_response",
    "post_response_delay",
    "drop_post_responses",
    "disconnect_now",
    "disconnect_rate",
    "stale_clearinghouse_delay",
    "malformed_frame_rate",
    "info_429_rate",
    "info_429_next",
    "stalled_markets",
    "storm",
)


#: Account activity the bot did not send (`--foreign`): the exchange's liquidator, the owner
#: closing a position in the web app, and another client trading on the same account.
FOREIGN_KINDS = ("liquidation", "manual_close", "foreign_order")
#: Another client's order is about this much notional (USD); the cap check allows for one.
FOREIGN_NOTIONAL = Decimal(15)


def _reset_one(f: Any, name: str) -> None:
    if name == "storm":
        for part in ("drop_post_responses", "info_429_rate", "disconnect_rate"):
            _reset_one(f, part)
    elif name == "stalled_markets":
        f.stalled_markets = set()
    elif name in ("duplicate_user_fills", "fills_before_response", "drop_post_responses"):
        setattr(f, name, False)
    elif name in (
        "post_response_delay",
        "disconnect_rate",
        "stale_clearinghouse_delay",
        "malformed_frame_rate",
        "info_429_rate",
    ):
        setattr(f, name, 0.0)


# ---------------------------------------------------------------------------------------------
# Observations and invariants


@attrs.define
class Invariant:
    name: str
    failures: list[str] = attrs.field(factory=list)
    checks: int = 0

    @property
    def ok(self) -> bool:
        return not self.failures

    def fail(self, detail: str) -> None:
        if len(self.failures) < 20:  # the first ones say enough
            self.failures.append(detail)
        else:
            self.failures[-1] = f"... and more (last: {detail})"


def _nonzero(positions: dict[str, Decimal]) -> dict[str, Decimal]:
    return {k: v for k, v in positions.items() if v != 0}


def bot_positions(bot: Bot) -> dict[str, Decimal]:
    assert bot.tracker is not None
    return _nonzero({m.name: p.size for m, p in bot.tracker.view().positions.items()})


def sim_positions(sim: Sim, user: str) -> dict[str, Decimal]:
    return _nonzero(sim.engine.positions(user))


def quiet(bot: Bot) -> bool:
    assert bot.tracker is not None
    view = bot.tracker.view()
    return not view.pending_markets and not view.flattening_markets


def sim_notionals(sim: Sim, user: str) -> dict[str, Decimal]:
    acct = sim.engine.account(user)
    if acct is None:
        return {}
    return {c: abs(p.szi) * p.entry_px for c, p in acct.positions.items() if p.szi != 0}


def round_trips(fills: list[dict[str, Any]]) -> int:
    """How many times a market's position went back to zero, from the simulator's fills (oldest first)."""
    trips = 0
    for f in fills:
        start = Decimal(f["startPosition"])
        size = Decimal(f["sz"]) * (1 if f["side"] == "B" else -1)
        if start != 0 and start + size == 0:
            trips += 1
    return trips


def cloid_counts(sim: Sim, user: str) -> Counter[str | None]:
    user = user.lower()
    return Counter(o.cloid for o in sim.engine.orders.values() if o.user == user)


@attrs.define
class Monitor:
    """Samples the run: cap every 0.25 s, tracker-vs-simulator positions at quiet checkpoints."""

    sim: Sim
    bot: Bot
    user: str
    cap: Decimal
    capture: Capture
    checkpoint_every: float
    # Another client's order can land on top of the bot's position before the bot hears of it.
    foreign_allowance: Decimal = Decimal(0)
    positions: Invariant = attrs.field(factory=lambda: Invariant("tracker == simulator at quiet checkpoints"))
    notional: Invariant = attrs.field(factory=lambda: Invariant("per-market notional <= cap"))
    checkpoints_taken: int = 0
    checkpoints_skipped: int = 0
    max_notional: Decimal = Decimal(0)
    context: list[str] = attrs.field(factory=list)

    async def run(self) -> None:
        next_checkpoint = trio.current_time() + self.checkpoint_every
        while True:
            await trio.sleep(0.25)
            self.check_caps()
            if trio.current_time() >= next_checkpoint:
                next_checkpoint += self.checkpoint_every
                self.checkpoint()

    def check_caps(self) -> None:
        assert self.bot.tracker is not None
        now = trio.current_time()
        self.notional.checks += 1
        tracked = {m.name: p.notional for m, p in self.bot.tracker.view().positions.items()}
        for source, notionals in (("tracker", tracked), ("simulator", sim_notionals(self.sim, self.user))):
            for coin, value in notionals.items():
                self.max_notional = max(self.max_notional, value)
                if value > self.cap + self.foreign_allowance:
                    self.notional.fail(f"t={now:.1f} {source} {coin} notional {value} > cap {self.cap}")

    def checkpoint(self) -> None:
        """Compare only when nothing is in flight; both reads happen with no await in between."""
        if not quiet(self.bot):
            self.checkpoints_skipped += 1
            return
        self.checkpoints_taken += 1
        self.positions.checks += 1
        ours, theirs = bot_positions(self.bot), sim_positions(self.sim, self.user)
        if ours != theirs:
            now = trio.current_time()
            self.positions.fail(f"t={now:.1f} tracker {ours} != simulator {theirs}")
            if not self.context:
                self.context = self.capture.around(now)


# ---------------------------------------------------------------------------------------------
# The run


@attrs.define
class SoakResult:
    seed: int
    seconds: float
    exit_code: int | None
    summary: dict[str, Any]
    invariants: list[Invariant]
    error_lines: list[str]
    context: dict[str, list[str]]

    @property
    def ok(self) -> bool:
        return all(i.ok for i in self.invariants)

    def report(self) -> str:
        out = [f"soak: seed {self.seed}, {self.seconds:g} s"]
        width = max(len(k) for k in self.summary)
        out += [f"  {k:<{width}}  {v}" for k, v in self.summary.items()]
        out.append("invariants:")
        for inv in self.invariants:
            out.append(f"  {'PASS' if inv.ok else 'FAIL'}  {inv.name} ({inv.checks} checks)")
            out += [f"        {f}" for f in inv.failures]
        if self.error_lines:
            out.append("ERROR/CRITICAL lines (expected ones are marked):")
            out += [f"  {line}" for line in self.error_lines[:50]]
        for title, lines in self.context.items():
            out.append(f"log around the first failure of {title!r}:")
            out += [f"  | {line}" for line in lines]
        out.append("RESULT: " + ("PASS" if self.ok else "FAIL"))
        return "\n".join(out)


def soak_config(sim: Sim, master: str, state_dir: Path) -> dict[str, Any]:
    """The demo's configuration with quicker recovery, so a short soak still sees resyncs and retries."""
    cfg = demo_config(sim, master, state_dir, network="testnet")
    cfg["position"]["position_resync_interval_secs"] = 10
    cfg["executor"] = {"post_timeout_secs": 1, "resolve_timeout_secs": 3}
    cfg["websocket"] = {"reconnect_initial_secs": 0.2, "reconnect_max_secs": 1}
    cfg["exits"] = {**cfg["exits"], "retry_backoff_initial_secs": 0.2, "retry_backoff_max_secs": 1}
    cfg["shutdown"] = {"flatten_on_shutdown": True, "settle_timeout_secs": 5}
    cfg["journal"] = {"path": str(state_dir / "journal.sqlite3")}  # the write-ahead path as in production
    # A soak exercises the machinery, not the edge: trade from the first seconds (no baseline
    # warm-up) and on small lags (a low fee override), so a short soak still sends orders.
    cfg["detector"] = {**cfg.get("detector", {}), "baseline_warmup_secs": 0, "taker_fee_bps": 1}
    return cfg


def expected_reason(text: str) -> str | None:
    for pattern, why in EXPECTED_ERRORS:
        if re.search(pattern, text):
            return why
    return None


async def run_soak(
    seconds: float,
    seed: int,
    *,
    port: int = 0,
    checkpoint_every: float = 2.0,
    quiet_tail: float | None = None,
    stop_timeout: float = 30.0,
    config_tweak: Callable[[dict[str, Any]], None] | None = None,
    foreign: bool = True,
) -> SoakResult:
    """Run the soak for `seconds` (faults until `quiet_tail` seconds before the end) and check invariants."""
    capture = Capture()
    root = logging.getLogger()
    old_level = root.level
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    root.addHandler(capture)
    try:
        return await _run_soak(
            seconds, seed, port, checkpoint_every, quiet_tail, stop_timeout, config_tweak, capture, foreign
        )
    finally:
        root.removeHandler(capture)
        root.setLevel(old_level)


async def _run_soak(
    seconds: float,
    seed: int,
    port: int,
    checkpoint_every: float,
    quiet_tail: float | None,
    stop_timeout: float,
    config_tweak: Callable[[dict[str, Any]], None] | None,
    capture: Capture,
    foreign: bool,
) -> SoakResult:
    tail = quiet_tail if quiet_tail is not None else min(5.0, seconds * 0.25)
    sim_cfg = load_sim_config(None).with_seed(seed)  # testnet-signed actions, as the bot signs here
    agent_key = SecretKey("0x" + secrets.token_hex(32), source="throwaway soak key")
    master = address_of("0x" + secrets.token_hex(32))  # only its address is used
    rng = random.Random(seed)
    outcome: dict[str, int] = {}
    bot_done = trio.Event()
    with tempfile.TemporaryDirectory(prefix="hip3-soak-") as tmp:
        async with open_sim(sim_cfg, port=port) as sim:
            sim.engine.fund(master, BALANCE_USD)
            sim.engine.approve_agent(master, agent_key.address)
            mapping = soak_config(sim, master, Path(tmp))
            if config_tweak is not None:
                config_tweak(mapping)
            cap = Decimal(str(mapping["position"]["max_notional_per_market"]))
            cfg = config_from_mapping(mapping)
            connections_before = sim.hub._count  # the simulator counts WS connections
            plan = FaultPlan(sim, rng, user=master if foreign else None)

            async def bot_task(task_status: trio.TaskStatus[Bot] = trio.TASK_STATUS_IGNORED) -> None:
                try:
                    outcome["code"] = await run_bot(
                        cfg,
                        key=agent_key,
                        handle_signals=False,
                        task_status=task_status,
                    )
                finally:
                    bot_done.set()

            async with trio.open_nursery() as nursery:
                with trio.fail_after(15):
                    bot: Bot = await nursery.start(bot_task)
                monitor = Monitor(
                    sim,
                    bot,
                    master,
                    cap,
                    capture,
                    checkpoint_every,
                    foreign_allowance=FOREIGN_NOTIONAL * 2 if foreign else Decimal(0),
                )
                monitoring = trio.CancelScope()
                nursery.start_soon(_until_cancelled, monitor.run, monitoring)
                with trio.move_on_after(max(0.0, seconds - tail)):
                    await plan.run()
                plan.clear()
                log.info("soak: faults off; %.1f s quiet before stopping", tail)
                await trio.sleep(tail)
                monitor.checkpoint()  # one last look before the flatten
                log.info("soak: stopping the bot")
                stop_ms = sim.engine.now_ms()
                bot.request_stop()
                with trio.move_on_after(stop_timeout) as waiting:
                    await bot_done.wait()
                monitoring.cancel()
                if waiting.cancelled_caught:
                    log.error("soak: the bot did not stop within %.0f s", stop_timeout)
                    nursery.cancel_scope.cancel()
            return _result(
                sim,
                bot,
                master,
                seed,
                seconds,
                outcome,
                monitor,
                plan,
                capture,
                connections_before,
                Path(str(mapping["journal"]["path"])),
                stop_ms,
            )


async def _until_cancelled(fn: Callable[[], Any], scope: trio.CancelScope) -> None:
    with scope:
        await fn()


def _result(
    sim: Sim,
    bot: Bot,
    master: str,
    seed: int,
    seconds: float,
    outcome: dict[str, int],
    monitor: Monitor,
    plan: FaultPlan,
    capture: Capture,
    connections_before: int,
    journal: Path,
    stop_ms: int,
) -> SoakResult:
    code = outcome.get("code")
    exit_inv = Invariant("bot exit code 0")
    exit_inv.checks = 1
    if code != 0:
        exit_inv.fail(f"run_bot returned {code!r}")

    flat_inv = Invariant("simulator account flat at the end")
    flat_inv.checks = 1
    final = sim_positions(sim, master)
    if final:
        flat_inv.fail(f"open positions: {final}; open orders: {len(sim.engine.open_orders(master))}")

    cloid_inv = Invariant("no cloid posted twice")
    every = cloid_counts(sim, master)
    # Orders the soak placed as someone else (another client's cloids; manual closes have none).
    foreign_orders = sum(n for c, n in every.items() if c is None or c in plan.foreign_cloids)
    counts = Counter({c: n for c, n in every.items() if c is not None and c not in plan.foreign_cloids})
    cloid_inv.checks = sum(counts.values())
    if every[None] > plan.injected["manual_close"] + plan.injected["liquidation"]:
        cloid_inv.fail(f"{every[None]} orders without a cloid, more than the soak's manual closes")
    for cloid, n in counts.items():
        if n > 1:
            cloid_inv.fail(f"cloid {cloid} posted {n} times")
    fills = sim.engine.fills(master)
    fill_cloids = {f.get("cloid") for f in fills} - {None}
    unknown = fill_cloids - set(every)
    if unknown:
        cloid_inv.fail(f"fills with cloids of no accepted order: {sorted(map(str, unknown))}")

    journal_inv = Invariant(
        "every bot order journaled before it was sent; every fill before the stop journaled"
    )
    journal_inv.checks = 1
    try:
        db = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
        try:
            journaled = {c for (c,) in db.execute("SELECT cloid FROM orders")}
            journaled_fills = {(c, t) for c, t in db.execute("SELECT coin, tid FROM fills")}
        finally:
            db.close()
    except sqlite3.Error as exc:
        journal_inv.fail(f"journal {journal} unreadable: {exc}")
    else:
        missing = set(counts) - journaled
        if missing:
            journal_inv.fail(
                f"{len(missing)} orders the simulator received are not in the journal: {sorted(missing)[:5]}"
            )
        # (the shutdown flatten's fill report can arrive after the bot has stopped listening)
        fills_missing = {(f["coin"], f["tid"]) for f in fills if f["time"] < stop_ms} - journaled_fills
        if fills_missing:
            journal_inv.fail(f"{len(fills_missing)} fills not journaled: {sorted(fills_missing)[:5]}")

    log_inv = Invariant("no unexpected ERROR/CRITICAL log lines")
    error_lines: list[str] = []
    context: dict[str, list[str]] = {}
    for line in capture.lines:
        if line.level < logging.ERROR:
            continue
        log_inv.checks += 1
        why = expected_reason(line.text)
        error_lines.append(f"{line.text}  [expected: {why}]" if why else line.text)
        if why is None:
            log_inv.fail(f"t={line.at:.1f} {line.text}")
            context.setdefault(log_inv.name, capture.around(line.at))
    if monitor.context:
        context[monitor.positions.name] = monitor.context

    view = bot.tracker.view() if bot.tracker is not None else None
    stats = bot.executor.stats if bot.executor is not None else None
    sim_realized = sum((Decimal(f["closedPnl"]) for f in fills), Decimal(0))
    sim_fees = sum((Decimal(f["fee"]) for f in fills), Decimal(0))
    sim_pnl = sim_realized - sim_fees
    summary: dict[str, Any] = {
        "signals": bot.signals_seen,
        "orders posted": stats.posted if stats else "-",
        "orders filled/rejected/unknown": f"{stats.filled}/{stats.rejected}/{stats.unknown}"
        if stats
        else "-",
        "orders accepted by simulator": sum(counts.values()),
        "fills (simulator)": len(fills),
        "round trips": round_trips(fills),
        "PnL net (tracker)": f"{view.realized_pnl - view.fees:.4f}" if view else "-",
        "PnL net (simulator)": f"{sim_pnl:.4f}",
        "realized/fees (tracker)": f"{view.realized_pnl:.4f}/{view.fees:.4f}" if view else "-",
        "realized/fees (simulator)": f"{sim_realized:.4f}/{sim_fees:.4f}",
        # informational, not an invariant: the fee of a fill the tracker never saw (e.g. the
        # shutdown flatten's, when the bot stops before its userFills frame) shows up here
        "fees missed by tracker": f"{sim_fees - view.fees:.4f}" if view else "-",
        "faults injected": sum(n for k, n in plan.injected.items() if k not in FOREIGN_KINDS),
        "faults by kind": dict(sorted((k, n) for k, n in plan.injected.items() if k not in FOREIGN_KINDS)),
        "foreign activity": {k: plan.injected[k] for k in FOREIGN_KINDS} if plan.user else "off",
        "foreign ops skipped (nothing to act on)": dict(plan.foreign_skipped) or "-",
        "orders by others (foreign cloids, manual closes)": foreign_orders,
        "liquidation/no-cloid fills": sum(1 for f in fills if f.get("cloid") is None),
        "WS connections opened": sim.hub._count - connections_before,
        "resyncs run/failed": f"{bot.resync.runs}/{bot.resync.failures}" if bot.resync else "-",
        "corrections": view.corrections if view else "-",
        "abandoned orders": stats.abandoned if stats else "-",
        "max notional seen": f"{monitor.max_notional:.2f}",
        "quiet checkpoints taken/skipped": f"{monitor.checkpoints_taken}/{monitor.checkpoints_skipped}",
        "WARNING lines": sum(1 for ln in capture.lines if ln.level == logging.WARNING),
    }
    invariants = [exit_inv, flat_inv, monitor.positions, monitor.notional, cloid_inv, journal_inv, log_inv]
    return SoakResult(seed, seconds, code, summary, invariants, error_lines, context)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--seed", type=int, default=None, help="default: the simulator's shipped seed")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--no-foreign", action="store_true", help="no liquidations, manual closes or foreign orders"
    )
    parser.add_argument("--log-level", default="WARNING", help="console log level (default WARNING)")
    parser.add_argument(
        "--log-file", default=None, help="full INFO log here (default /tmp/hip3-soak-SEED.log)"
    )
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.seconds > 24 * 3600:
        parser.error(f"--seconds must be in (0, 86400], got {args.seconds}")
    seed = args.seed if args.seed is not None else load_sim_config(None).seed
    console = setup_logging(args.log_level, json=False)
    console.setLevel(logging.getLevelName(args.log_level.upper()))
    logging.getLogger().setLevel(logging.INFO)
    log_file = Path(args.log_file or f"/tmp/hip3-soak-{seed}.log")
    file_handler = logging.FileHandler(log_file, mode="w")
    file_handler.setFormatter(console.formatter)
    for flt in console.filters:
        file_handler.addFilter(flt)
    logging.getLogger().addHandler(file_handler)
    result = trio.run(lambda: run_soak(args.seconds, seed, port=args.port, foreign=not args.no_foreign))
    print(result.report())
    print(f"full log: {log_file}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
