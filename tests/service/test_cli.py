"""The `hip3` command line: exit codes, problems on stderr, mainnet confirmation, delegation."""

from __future__ import annotations

import logging
import os
import secrets
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hip3 import main as main_module
from hip3.service import cli
from hip3.service.config import Config
from hip3.service.keys import ENV_VAR
from hip3.service.logs import _clear_secrets_for_tests

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config" / "example.toml"
ADDRESS = "0x" + "cd" * 20


@pytest.fixture(autouse=True)
def _isolate(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.delenv(cli.CONFIG_ENV_VAR, raising=False)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    _clear_secrets_for_tests()


class FakeApp:
    """Stands in for hip3.service.app so no test ever starts the real bot."""

    def __init__(self, result: int = 0) -> None:
        self.calls: list[tuple[Config, bool]] = []
        self.result = result

    async def run_bot(self, cfg: Config, *, mainnet_confirmed: bool) -> int:
        self.calls.append((cfg, mainnet_confirmed))
        return self.result


@pytest.fixture
def fake_app(monkeypatch: pytest.MonkeyPatch) -> FakeApp:
    app = FakeApp(result=7)
    module = types.ModuleType("hip3.service.app")
    module.run_bot = app.run_bot  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "hip3.service.app", module)
    return app


@pytest.fixture
def no_app(monkeypatch: pytest.MonkeyPatch) -> None:
    """Importing hip3.service.app fails: proves a refusal happens before the lazy import."""
    monkeypatch.setitem(sys.modules, "hip3.service.app", None)


def write(tmp_path: Path, text: str, name: str = "bot.toml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def trading_config(tmp_path: Path, network: str = "mainnet") -> str:
    return write(
        tmp_path,
        f'mode = "trading"\n[network]\nname = "{network}"\n[account]\naddress = "{ADDRESS}"\n'
        f'[hard_stop]\nstate_file = "{tmp_path / "hs.json"}"\n',
    )


# check-config ----------------------------------------------------------------------------------


def test_check_config_bad_file_exit_2_problems_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, 'mode = "paper"\n[position]\nmax_notional_per_market = -5\n[markets]\ncoinz = 1\n')
    assert cli.main(["check-config", path]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.splitlines()
    assert err[0] == f"hip3: invalid configuration {path}:"
    assert [line.strip() for line in err[1:]] == [
        'mode: must be "observation" or "trading", got "paper"',
        'markets.coinz: unknown key (did you mean "coins"?)',
        "position.max_notional_per_market: must be > 0, got -5",
    ]


def test_check_config_example_ok_and_no_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = secrets.token_hex(32)
    monkeypatch.setenv(ENV_VAR, "0x" + raw)
    assert cli.main(["check-config", str(EXAMPLE)]) == 0
    captured = capsys.readouterr()
    assert raw not in captured.out + captured.err
    assert 'mode = "observation"' in captured.out
    assert 'info_url = "https://api.hyperliquid.xyz/info"' in captured.out
    assert "max_notional_per_market = 50" in captured.out
    assert "signer address 0x" in captured.out


def test_check_config_trading_without_key_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check-config", trading_config(tmp_path)]) == 2
    assert ENV_VAR in capsys.readouterr().err


def test_check_config_trading_with_key_notes_mainnet_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = secrets.token_hex(32)
    monkeypatch.setenv(ENV_VAR, raw)
    assert cli.main(["check-config", trading_config(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "--mainnet" in out and raw not in out


def test_check_config_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check-config", str(tmp_path / "absent.toml")]) == 2
    assert "config file not found" in capsys.readouterr().err


# run ------------------------------------------------------------------------------------------------


def test_mainnet_trading_without_flag_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], no_app: None
) -> None:
    monkeypatch.setenv(ENV_VAR, secrets.token_hex(32))
    assert cli.main(["run", "--config", trading_config(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--mainnet" in err and "refusing to start" in err


def test_mainnet_trading_with_flag_runs_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_app: FakeApp
) -> None:
    monkeypatch.setenv(ENV_VAR, secrets.token_hex(32))
    assert cli.main(["run", "--config", trading_config(tmp_path), "--mainnet"]) == 7
    [(cfg, confirmed)] = fake_app.calls
    assert confirmed is True and cfg.is_trading and cfg.account.address == ADDRESS


def test_testnet_trading_needs_no_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_app: FakeApp
) -> None:
    monkeypatch.setenv(ENV_VAR, secrets.token_hex(32))
    assert cli.main(["run", "--config", trading_config(tmp_path, "testnet")]) == 7
    assert fake_app.calls[0][1] is False


def test_observation_on_mainnet_needs_no_flag_or_key(tmp_path: Path, fake_app: FakeApp) -> None:
    assert cli.main(["run", "--config", str(EXAMPLE)]) == 7
    assert fake_app.calls[0][0].mode == "observation"


def test_trading_with_bad_key_refused_before_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], no_app: None
) -> None:
    bad = secrets.token_hex(31)
    monkeypatch.setenv(ENV_VAR, bad)
    assert cli.main(["run", "--config", trading_config(tmp_path, "testnet")]) == 2
    captured = capsys.readouterr()
    assert ENV_VAR in captured.err and bad not in captured.err + captured.out


def test_run_invalid_config(tmp_path: Path, capsys: pytest.CaptureFixture[str], no_app: None) -> None:
    path = write(tmp_path, '[position]\nmax_total_notional = "abc"\n')
    assert cli.main(["run", "--config", path]) == 2
    assert 'position.max_total_notional: expected a number, got "abc"' in capsys.readouterr().err


def test_run_without_config(capsys: pytest.CaptureFixture[str], no_app: None) -> None:
    assert cli.main(["run"]) == 2
    assert "--config" in capsys.readouterr().err


def test_config_from_env_var(monkeypatch: pytest.MonkeyPatch, fake_app: FakeApp) -> None:
    monkeypatch.setenv(cli.CONFIG_ENV_VAR, str(EXAMPLE))
    assert cli.main(["run"]) == 7


def test_main_module_entry_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], fake_app: FakeApp
) -> None:
    monkeypatch.setenv(ENV_VAR, secrets.token_hex(32))
    config = trading_config(tmp_path)
    assert main_module.main(["--config", config]) == 2
    assert "--mainnet" in capsys.readouterr().err
    assert main_module.main(["--config", config, "--mainnet"]) == 7
    assert len(fake_app.calls) == 1


def test_python_dash_m_exit_code(tmp_path: Path) -> None:
    path = write(tmp_path, "[position]\nmax_concurrent_positions = 0\n")
    env = {k: v for k, v in os.environ.items() if k not in (ENV_VAR, cli.CONFIG_ENV_VAR)}
    done = subprocess.run(
        [sys.executable, "-m", "hip3.main", "--config", path],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env=env,
    )
    assert done.returncode == 2
    assert "position.max_concurrent_positions: must be >= 1, got 0" in done.stderr


# usage, reset-hard-stop, delegation --------------------------------------------------------------------


def test_usage_errors_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert cli.main(["frobnicate"]) == 2
    assert cli.main(["--help"]) == 0
    assert "check-config" in capsys.readouterr().out


def test_reset_hard_stop(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "var" / "hs.json"
    path = write(tmp_path, f'[hard_stop]\nstate_file = "{state}"\n')
    assert cli.main(["reset-hard-stop", "--config", path]) == 0
    assert "nothing to do" in capsys.readouterr().out
    state.parent.mkdir()
    state.write_text('{"reason": "max_rejects"}')
    assert cli.main(["reset-hard-stop", "--config", path]) == 0
    out = capsys.readouterr().out
    assert not state.exists()
    assert f"removed hard-stop state {state}" in out and "max_rejects" in out


def test_reset_hard_stop_bad_config(tmp_path: Path) -> None:
    assert cli.main(["reset-hard-stop", "--config", write(tmp_path, "bogus = 1\n")]) == 2
    assert cli.main(["reset-hard-stop"]) == 2


@pytest.mark.parametrize(("command", "module_name"), [("sim", "hip3.sim.cli"), ("demo", "hip3.service.demo")])
def test_delegates_rest_of_argv(monkeypatch: pytest.MonkeyPatch, command: str, module_name: str) -> None:
    seen: list[Any] = []
    module = types.ModuleType(module_name)

    def fake_main(argv: list[str]) -> int:
        seen.append(argv)
        return 3

    module.main = fake_main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module_name, module)
    assert cli.main([command, "--port", "8787", "--help"]) == 3
    assert seen == [["--port", "8787", "--help"]]
