"""The shipped systemd units: the directives the bot relies on, and `systemd-analyze verify` (where installed)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
UNITS = ["hip3.service", "hip3@.service"]
INSTALLED_EXEC = "/opt/hip3/venv/bin/hip3"


def directives(text: str) -> dict[str, list[str]]:
    """`Section.Key` -> every value given (systemd allows repeating keys)."""
    out: dict[str, list[str]] = {}
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.setdefault(f"{section}.{key}", []).append(value)
    return out


@pytest.mark.parametrize("unit", UNITS)
def test_unit_has_what_the_bot_relies_on(unit: str) -> None:
    d = directives((SCRIPTS / unit).read_text())
    assert d["Service.Type"] == ["notify"]
    assert d["Service.Restart"] == ["on-failure"]
    assert float(d["Service.WatchdogSec"][0]) > 0
    assert d["Service.EnvironmentFile"]
    assert d["Service.StateDirectory"]
    assert d["Service.RestartPreventExitStatus"] == ["2"]  # a refused config is not retried
    assert d["Service.ExecStart"][0].startswith(INSTALLED_EXEC + " run --config ")
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
        "SystemCallFilter": "@system-service",
    }.items():
        assert value in d[f"Service.{key}"], key
    assert d["Install.WantedBy"] == ["multi-user.target"]


def test_template_keeps_instances_apart() -> None:
    d = directives((SCRIPTS / "hip3@.service").read_text())
    assert "%i" in d["Service.ExecStart"][0]
    assert "%i" in d["Service.EnvironmentFile"][0]
    assert "%i" in d["Service.StateDirectory"][0]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
@pytest.mark.parametrize("unit", [*UNITS, "hip3@xyz.service"])
def test_systemd_analyze_verify(unit: str, tmp_path: Path) -> None:
    # verify checks that ExecStart's program exists: point it at this venv's `hip3`.
    here = Path(sys.executable).parent / "hip3"
    assert here.exists()
    source = "hip3@.service" if unit.startswith("hip3@") else unit
    (tmp_path / unit).write_text((SCRIPTS / source).read_text().replace(INSTALLED_EXEC, str(here)))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # verify exits 0 on unknown keys and bad values, only warning about them: no output at all is the pass.
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), (
        result.stdout + result.stderr
    )
