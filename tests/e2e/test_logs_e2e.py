"""Everything the real process prints during a trading round trip: JSON lines off a terminal, one event
per line with market and cloid context, and never the signing key (any case, with or without 0x)."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import trio

from hip3.service.config import config_to_text
from hip3.sim import Sim
from tests.e2e.conftest import TSLA, Accounts, FrozenMarket, bot_config, sim_positions
from tests.e2e.test_process_signals import Output

D = Decimal
BPS = D("0.0001")


async def wait_until(condition: object, what: str, timeout: float = 8.0) -> None:
    assert callable(condition)
    with trio.move_on_after(timeout):
        while not condition():
            await trio.sleep(0.05)
        return
    raise AssertionError(f"timed out waiting for {what}")


def key_forms(key_hex: str) -> list[str]:
    body = key_hex.removeprefix("0x")
    return [body.lower(), body.upper(), "0x" + body.lower(), "0x" + body.upper(), "0X" + body.upper()]


async def test_a_trading_run_prints_json_lines_with_context_and_never_the_key(
    sim: Sim, market: FrozenMarket, accounts: Accounts, tmp_path: Path
) -> None:
    # DEBUG prints the most; a malformed frame now and then adds warnings with frame excerpts.
    sim.faults.malformed_frame_rate = 0.02
    cfg = bot_config(
        sim,
        accounts.master,
        tmp_path,
        logging={"level": "DEBUG"},
        exits={"time_stop_secs": 60, "min_holding_secs": 0.2, "check_interval_secs": 0.05},
    )
    cfg_path = tmp_path / "bot.toml"
    cfg_path.write_text(config_to_text(cfg))
    env = dict(os.environ, HIP3_PRIVATE_KEY=accounts.agent.hex)
    with trio.fail_after(40):
        async with trio.open_nursery() as nursery:
            proc = await trio.lowlevel.open_process(
                [sys.executable, "-m", "hip3.main", "--config", str(cfg_path)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
            )
            out, err = Output(), Output()
            assert proc.stdout is not None and proc.stderr is not None
            nursery.start_soon(out.pump, proc.stdout)
            nursery.start_soon(err.pump, proc.stderr)
            await err.wait_for("READY: market data")
            # A dislocation: two rising oracle moves, the second 60 bps over the ask.
            market.refresh()
            market.set_oracle(market.ask * (1 + 10 * BPS))
            await trio.sleep(0.5)
            market.set_oracle(market.ask / (1 - 60 * BPS))
            await wait_until(lambda: TSLA in sim_positions(sim, accounts.master), "the entry")
            market.quote(market.oracle - D("0.05"), market.oracle + D("0.05"))
            await wait_until(lambda: TSLA not in sim_positions(sim, accounts.master), "the exit")
            await trio.sleep(0.3)
            proc.send_signal(signal.SIGTERM)
            code = await proc.wait()
            nursery.cancel_scope.cancel()
    printed = out.text + err.text
    assert code == 0, err.text[-3000:]

    for form in key_forms(accounts.agent.hex):
        assert form not in printed, "the signing key was printed"

    lines = err.text.splitlines()
    assert len(lines) > 20
    events = [json.loads(line) for line in lines]  # every line one JSON object: one event per line
    assert all({"ts", "level", "logger", "msg"} <= e.keys() for e in events)
    # The orders the simulator accepted for this account, by cloid: each is named in the log with its market.
    cloids = {o.cloid for o in sim.engine.orders.values() if o.user == accounts.master.lower()}
    assert len(cloids) == 2
    for cloid in cloids:
        about = [e for e in events if e.get("cloid") == cloid]
        assert about, f"no log event carries cloid {cloid}"
        assert all(e.get("market") == TSLA for e in about)
    assert any(e.get("market") == TSLA and "signal" in e["msg"] for e in events)


async def test_a_refused_start_prints_the_reason_and_never_the_key(
    sim: Sim, market: FrozenMarket, accounts: Accounts, tmp_path: Path
) -> None:
    """The error path: a key the account never approved is refused (exit 2), and the message names
    addresses, never the key."""
    stranger = "0x" + secrets.token_hex(32)
    cfg_path = tmp_path / "bot.toml"
    cfg_path.write_text(config_to_text(bot_config(sim, accounts.master, tmp_path)))
    with trio.fail_after(20):
        result = await trio.run_process(
            [sys.executable, "-m", "hip3.main", "--config", str(cfg_path), "--log-format", "text"],
            stdin=subprocess.DEVNULL,
            capture_stdout=True,
            capture_stderr=True,
            env=dict(os.environ, HIP3_PRIVATE_KEY=stranger),
            check=False,
        )
    printed = (result.stdout + result.stderr).decode(errors="replace")
    assert result.returncode == 2, printed
    assert "refusing to trade" in printed
    assert not printed.lstrip().startswith("{")  # --log-format text wins over auto
    for form in key_forms(stranger):
        assert form not in printed, "the signing key was printed"
