"""The real entry point (`python -m hip3.main --config PATH`) as systemd runs it, against hip3.sim.

SIGTERM: no new entries, in-flight orders settle, positions are flattened, exit 0.
A second signal: exit at once, leaving whatever could not be closed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import trio

from hip3.service.config import config_to_text
from hip3.sim import Sim
from tests.e2e.conftest import Accounts, FrozenMarket, bot_config, post_order_as_master, sim_positions

D = Decimal
TSLA = "xyz:TSLA"


class Output:
    """Everything the child wrote to stderr so far."""

    def __init__(self) -> None:
        self.text = ""

    async def pump(self, stream: trio.abc.ReceiveStream) -> None:
        async for chunk in stream:
            self.text += chunk.decode(errors="replace")

    async def wait_for(self, needle: str, timeout: float = 8.0) -> None:
        with trio.move_on_after(timeout):
            while needle not in self.text:
                await trio.sleep(0.05)
        assert needle in self.text, f"{needle!r} not in the bot's output:\n{self.text[-3000:]}"


async def start_bot(cfg_path: Path, key_hex: str, nursery: trio.Nursery) -> tuple[trio.Process, Output]:
    env = dict(os.environ, HIP3_PRIVATE_KEY=key_hex)
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
    return proc, out


async def hold_a_long(sim: Sim, market: FrozenMarket, accounts: Accounts) -> None:
    bought = await post_order_as_master(
        sim, accounts, is_buy=True, price=market.ask, size=D("0.1"), tif="Ioc"
    )
    assert D(bought["filled"]["totalSz"]) == D("0.1")


def write_config(sim: Sim, accounts: Accounts, tmp_path: Path, **sections: Any) -> Path:
    cfg = bot_config(
        sim, accounts.master, tmp_path, exits={"time_stop_secs": 60, "mark_regression_bps": 0}, **sections
    )
    path = tmp_path / "bot.toml"
    path.write_text(config_to_text(cfg))
    return path


async def test_sigterm_flattens_and_exits_zero(
    sim: Sim, market: FrozenMarket, accounts: Accounts, tmp_path: Path
) -> None:
    await hold_a_long(sim, market, accounts)
    cfg_path = write_config(sim, accounts, tmp_path)
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            proc, out = await start_bot(cfg_path, accounts.agent.hex, nursery)
            await out.wait_for("READY")
            assert sim_positions(sim, accounts.master) == {TSLA: D("0.1")}
            proc.send_signal(signal.SIGTERM)
            code = await proc.wait()
            nursery.cancel_scope.cancel()
    assert code == 0, out.text[-3000:]
    assert sim_positions(sim, accounts.master) == {}
    assert "shutdown: account is flat" in out.text
    assert accounts.agent.hex[2:] not in out.text.lower()  # the key never appears in the output


async def test_a_second_signal_exits_at_once(
    sim: Sim, market: FrozenMarket, accounts: Accounts, tmp_path: Path
) -> None:
    await hold_a_long(sim, market, accounts)
    # No bids at all: the shutdown flatten cannot fill, and the shutdown would wait its full 30 s.
    sim.engine.set_book("TSLA", bids=[], asks=[(market.ask, market.size)])
    cfg_path = write_config(sim, accounts, tmp_path, shutdown={"settle_timeout_secs": 30})
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            proc, out = await start_bot(cfg_path, accounts.agent.hex, nursery)
            await out.wait_for("READY")
            proc.send_signal(signal.SIGTERM)
            await out.wait_for("flattening")
            proc.send_signal(signal.SIGINT)
            with trio.fail_after(5):
                code = await proc.wait()
            nursery.cancel_scope.cancel()
    assert code == 130, out.text[-3000:]
    assert "second stop request" in out.text
    assert sim_positions(sim, accounts.master) == {TSLA: D("0.1")}  # nothing could close it
