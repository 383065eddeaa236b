"""`hip3 sim` runs alone, prints URLs and addresses, and stops cleanly (exit 0) on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from hip3.sim.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_bad_config_exits_2(tmp_path: Path, capsys: object) -> None:
    path = tmp_path / "x.toml"
    path.write_text("[nonsense]\n")
    assert main(["--config", str(path)]) == 2


def test_runs_prints_and_stops_on_ctrl_c() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "hip3.sim.cli", "--port", "0", "--seed", "3"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            if not line:
                break
            lines.append(line)
            if line.startswith("Ctrl-C"):
                break
        text = "".join(lines)
        assert "seed 3" in text and "testnet-signed actions" in text
        info_url = next(w for line in lines for w in line.split() if w.endswith("/info"))
        assert "ws://127.0.0.1:" in text and "/exchange" in text
        assert "master    0x" in text and "agent     0x" in text and "THROWAWAY" in text
        reply = httpx.post(info_url, json={"type": "perpDexs"}, timeout=5)
        assert reply.json()[1]["name"] == "xyz"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
