"""The real process (`python -m hip3.main`) under a stand-in for systemd's notify socket, against hip3.sim:
READY=1 once the bot is READY (trading) or market data flows (observation), WATCHDOG=1 pings at half
WATCHDOG_USEC, STOPPING=1 on SIGTERM, then exit 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import trio

from hip3.service.config import config_to_text
from hip3.sim import Sim
from tests.e2e.conftest import Accounts, FrozenMarket, bot_config
from tests.e2e.test_process_signals import Output
from tests.service.systemd_standin import notify_socket


async def run_under_notify_socket(
    cfg_text: str, tmp_path: Path, key_hex: str | None
) -> tuple[int, Output, list[dict[str, str]], list[str]]:
    """Start the bot, wait for READY=1 and a few pings, SIGTERM it; every notify message in order
    and which of them came before the bot logged READY."""
    cfg_path = tmp_path / "bot.toml"
    cfg_path.write_text(cfg_text)
    with notify_socket() as systemd:
        env = dict(os.environ, NOTIFY_SOCKET=systemd.env, WATCHDOG_USEC="400000")
        env.pop("WATCHDOG_PID", None)
        if key_hex is not None:
            env["HIP3_PRIVATE_KEY"] = key_hex
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                proc = await trio.lowlevel.open_process(
                    [sys.executable, "-m", "hip3.main", "--config", str(cfg_path)],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    env=env,
                )
                out = Output()
                assert proc.stderr is not None
                nursery.start_soon(out.pump, proc.stderr)
                await systemd.wait_for("READY")
                logged_ready_by_then = "READY: market data" in out.text
                pings_at_ready = len(systemd.with_key("WATCHDOG"))
                while len(systemd.with_key("WATCHDOG")) < pings_at_ready + 3:
                    await trio.sleep(0.05)
                proc.send_signal(signal.SIGTERM)
                code = await proc.wait()
                nursery.cancel_scope.cancel()
        systemd.drain()
        notes = ["logged READY first"] if logged_ready_by_then else []
        return code, out, systemd.messages, notes


def kinds(messages: list[dict[str, str]]) -> list[str]:
    """READY / STOPPING / STATUS / WATCHDOG per message, watchdog pings left out."""
    out = []
    for m in messages:
        if "READY" in m:
            out.append("READY")
        elif "STOPPING" in m:
            out.append("STOPPING")
        elif "STATUS" in m:
            out.append("STATUS")
    return out


async def test_trading_bot_notifies_systemd(
    sim: Sim, market: FrozenMarket, accounts: Accounts, tmp_path: Path
) -> None:
    cfg = bot_config(sim, accounts.master, tmp_path)
    code, out, messages, notes = await run_under_notify_socket(
        config_to_text(cfg), tmp_path, accounts.agent.hex
    )
    assert code == 0, out.text[-3000:]
    assert "logged READY first" in notes  # READY=1 only once trading is READY
    order = kinds(messages)
    assert order.count("READY") == 1 and order.count("STOPPING") == 1
    assert order.index("READY") < order.index("STOPPING")
    assert all(k == "STATUS" for k in order[: order.index("READY")])
    ready = next(m for m in messages if "READY" in m)
    assert ready["STATUS"].startswith("READY")
    assert sum("WATCHDOG" in m for m in messages) >= 4


async def test_observation_bot_is_ready_when_market_data_flows(
    sim: Sim, market: FrozenMarket, tmp_path: Path
) -> None:
    cfg = bot_config(sim, None, tmp_path, mode="observation")
    code, out, messages, notes = await run_under_notify_socket(config_to_text(cfg), tmp_path, None)
    assert code == 0, out.text[-3000:]
    assert "logged READY first" in notes
    assert kinds(messages).count("READY") == 1
    assert kinds(messages)[-1] == "STOPPING"
