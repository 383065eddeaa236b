"""One trading instance per account and dex (issue 12.2): a second start is refused, naming the
holder; the kernel frees the lock when the holder dies however it dies."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from hip3.service.app import EXIT_REFUSED, run_bot
from hip3.service.instance_lock import InstanceLocked, instance_lock, lock_path
from hip3.sim import Sim
from tests.e2e.conftest import Accounts, FrozenMarket, bot_config, running_bot

REPO = Path(__file__).resolve().parents[2]


async def test_a_second_instance_on_the_same_account_and_dex_is_refused(
    sim: Sim, market: FrozenMarket, accounts: Accounts, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = bot_config(sim, accounts.master, tmp_path)
    async with running_bot(cfg, accounts.agent) as first:
        with caplog.at_level(logging.ERROR), trio.fail_after(10):
            code = await run_bot(cfg, key=accounts.agent, handle_signals=False, mainnet_confirmed=True)
        assert code == EXIT_REFUSED
        assert first.done.is_set() is False  # the first one trades on
        lock = lock_path(tmp_path, accounts.master, "xyz")
        assert f"pid {os.getpid()}" in caplog.text and str(lock) in caplog.text
        assert stat.S_IMODE(lock.stat().st_mode) == 0o600
    assert first.code == 0
    # the first one has stopped: the lock is free again
    with instance_lock(tmp_path, accounts.master, "xyz"):
        pass


def test_other_accounts_and_dexes_have_their_own_locks(tmp_path: Path) -> None:
    a, b = "0x" + "aa" * 20, "0x" + "bb" * 20
    with (
        instance_lock(tmp_path, a, "xyz"),
        instance_lock(tmp_path, a, "abc"),
        instance_lock(tmp_path, b, "xyz"),
    ):
        with pytest.raises(InstanceLocked, match="already trades account"):
            with instance_lock(tmp_path, a.upper().replace("0X", "0x"), "xyz"):
                pass


def test_the_lock_of_another_process_names_its_pid_and_dies_with_it(tmp_path: Path) -> None:
    account = "0x" + "aa" * 20
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from hip3.service.instance_lock import instance_lock\n"
            f"with instance_lock(Path({str(tmp_path)!r}), {account!r}, 'xyz'):\n"
            "    print('held', flush=True); time.sleep(20)",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(InstanceLocked, match=f"pid {holder.pid} "):
            with instance_lock(tmp_path, account, "xyz"):
                pass
    finally:
        holder.kill()  # like kill -9: no cleanup runs in the holder
        holder.wait(timeout=10)
    with instance_lock(tmp_path, account, "xyz") as path:
        assert path.read_text().startswith(f"pid {os.getpid()} ")


def test_a_symlinked_lock_file_is_refused(tmp_path: Path) -> None:
    account = "0x" + "aa" * 20
    target = tmp_path / "elsewhere"
    target.write_text("x")
    lock_path(tmp_path, account, "xyz").symlink_to(target)
    with pytest.raises(OSError):
        with instance_lock(tmp_path, account, "xyz"):
            pass
    assert target.read_text() == "x"


def test_reset_hard_stop_refuses_while_a_bot_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hip3.service import cli

    account = "0x" + "aa" * 20
    state = tmp_path / "state" / "hard_stop.json"
    state.parent.mkdir()
    state.write_text('{"latched": true, "reason": "test", "latched_wall": null, "daily": null}')
    config = tmp_path / "hip3.toml"
    config.write_text(f'mode = "observation"\n[hard_stop]\nstate_file = "{state}"\n')
    with instance_lock(state.parent, account, "xyz"):
        assert cli.main(["reset-hard-stop", "--config", str(config)]) == 2
        assert f"pid {os.getpid()}" in capsys.readouterr().err
        assert state.exists()
    assert cli.main(["reset-hard-stop", "--config", str(config)]) == 0
    assert not state.exists()
