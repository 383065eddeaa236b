"""`hip3 demo` (what `scripts/run` runs): the simulator and the bot trading against it, in one process.

A throwaway agent key is generated at start and approved in the simulator for a throwaway master
account; nothing here can touch a real account. The log shows signals, orders, fills, positions
and PnL as they happen. Ctrl-C stops the bot (flattening its positions) and then the simulator.
"""

from __future__ import annotations

import argparse
import logging
import secrets
import tempfile
from pathlib import Path
from typing import Any

import trio

from hip3.hyperliquid.signing import address_of
from hip3.service.app import run_bot
from hip3.service.config import config_from_mapping
from hip3.service.keys import SecretKey
from hip3.service.logs import setup_logging
from hip3.service.scoring import RunScore, score_run
from hip3.sim import load_sim_config, open_sim

log = logging.getLogger("hip3.service.demo")

DEMO_BALANCE_USD = 10_000


def demo_config(sim: Any, master: str, state_dir: Path, *, network: str) -> dict[str, Any]:
    """The bot's configuration for the demo: trading mode, every simulator market, small caps."""
    return {
        "mode": "trading",
        "network": {
            "name": network,
            "info_url": sim.info_url,
            "exchange_url": sim.exchange_url,
            "ws_url": sim.ws_url,
        },
        "account": {"address": master},
        "markets": {"dex": "xyz", "coins": ["*"]},
        "position": {
            "max_notional_per_market": 100,
            "max_total_notional": 400,
            "max_concurrent_positions": 4,
            "position_resync_interval_secs": 30,
        },
        # The simulator's oracle is externally priced (unless its internal-pricing mode is on), whatever
        # the date: the trade.xyz weekend calendar is for the real dex. Everything else is the default.
        "sessions": [],
        "exits": {"time_stop_secs": 15},
        "shutdown": {"flatten_on_shutdown": True, "settle_timeout_secs": 5},
        "hard_stop": {"state_file": str(state_dir / "hard_stop.json")},
        "journal": {"path": ""},
    }


async def run_demo(seconds: float | None, seed: int | None, port: int) -> int:
    sim_cfg = load_sim_config(None)
    if seed is not None:
        sim_cfg = sim_cfg.with_seed(seed)
    agent_key = SecretKey("0x" + secrets.token_hex(32), source="throwaway demo key")
    master = address_of("0x" + secrets.token_hex(32))  # only its address is used
    with tempfile.TemporaryDirectory(prefix="hip3-demo-") as tmp:
        async with open_sim(sim_cfg, port=port) as sim:
            sim.engine.fund(master, DEMO_BALANCE_USD)
            sim.engine.approve_agent(master, agent_key.address)
            cfg = config_from_mapping(demo_config(sim, master, Path(tmp), network="testnet"))
            log.info(
                "simulator on %s; throwaway master %s, agent %s", sim.info_url, master, agent_key.address
            )
            outcome: dict[str, int] = {}
            outcome_bot: dict[str, Any] = {}
            async with trio.open_nursery() as nursery:
                bot = await nursery.start(_bot, cfg, agent_key, outcome, nursery.cancel_scope)
                outcome_bot["bot"] = bot
                if seconds is not None:
                    nursery.start_soon(_stop_later, bot, seconds)
            positions = sim.engine.positions(master)
            open_positions = {c: s for c, s in positions.items() if s != 0}
            log.info("simulator's final positions for the master account: %s", open_positions or "flat")
            if "bot" in outcome_bot:
                for line in summary_lines(sim, master, outcome_bot["bot"]):
                    log.info("%s", line)
            return outcome.get("code", 1)


async def run_scored(seconds: float, seed: int | None, port: int = 0) -> RunScore:
    """One scored run, as `hip3 demo` runs it (default bot config, shipped simulator with `seed`):
    what `scripts/bench --only edge` measures per seed."""
    sim_cfg = load_sim_config(None)
    if seed is not None:
        sim_cfg = sim_cfg.with_seed(seed)
    agent_key = SecretKey("0x" + secrets.token_hex(32), source="throwaway bench key")
    master = address_of("0x" + secrets.token_hex(32))
    with tempfile.TemporaryDirectory(prefix="hip3-bench-") as tmp:
        async with open_sim(sim_cfg, port=port) as sim:
            sim.engine.fund(master, DEMO_BALANCE_USD)
            sim.engine.approve_agent(master, agent_key.address)
            cfg = config_from_mapping(demo_config(sim, master, Path(tmp), network="testnet"))
            outcome: dict[str, int] = {}
            async with trio.open_nursery() as nursery:
                bot = await nursery.start(_bot, cfg, agent_key, outcome, nursery.cancel_scope)
                nursery.start_soon(_stop_later, bot, seconds)
            return score_run(sim, master, bot)


def summary_lines(sim: Any, master: str, bot: Any) -> list[str]:
    """The run in numbers: the simulator's dislocations against the bot's round trips and PnL."""
    score = score_run(sim, master, bot)
    return [f"summary: {line}" for line in score.describe_lines()]


async def _bot(
    cfg: Any,
    key: SecretKey,
    outcome: dict[str, int],
    done: trio.CancelScope,
    task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
) -> None:
    # testnet signing (the simulator's default): --mainnet stays reserved for real money
    outcome["code"] = await run_bot(cfg, key=key, task_status=task_status)
    done.cancel()  # the bot has stopped: nothing else in the demo needs to run


async def _stop_later(bot: Any, seconds: float) -> None:
    await trio.sleep(seconds)
    log.info("demo time is up (%.0f s): stopping", seconds)
    bot.request_stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="hip3 demo", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("--seconds", type=float, default=None, help="stop by itself after this long")
    parser.add_argument("--seed", type=int, default=None, help="simulator seed (default: the shipped one)")
    parser.add_argument("--port", type=int, default=0, help="simulator port (default: any free one)")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    setup_logging(args.log_level, json=False)
    return trio.run(run_demo, args.seconds, args.seed, args.port)
