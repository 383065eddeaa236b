"""Crash and restart end to end (scripts/kill9.py): the bot in its own process, SIGKILLed at random
points and restarted, against the simulator in this process. A longer run: scripts/kill9.py."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import trio

KILL9_PATH = Path(__file__).resolve().parents[2] / "scripts" / "kill9.py"
ITERATIONS = 8
SEED = 7


def load_kill9() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hip3_kill9_script", KILL9_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # attrs resolves the module's annotations through sys.modules
    spec.loader.exec_module(module)
    return module


kill9 = load_kill9()


async def test_sigkill_at_random_points_then_restart_keeps_every_invariant() -> None:
    with trio.fail_after(100):  # about 3 s per iteration; bounded whatever happens
        result = await kill9.run_kill9(ITERATIONS, SEED)
    report = result.report()
    for invariant in result.invariants:
        assert invariant.ok, report
        assert invariant.checks > 0, report
    # it must have exercised something, or the invariants say nothing
    assert result.summary["iterations (kill -9 + restart)"] == ITERATIONS, report
    assert result.summary["killed right after an order reached the simulator"] >= 1, report
    assert result.summary["bot orders received by the simulator"] >= ITERATIONS, report


def test_an_invariant_fails_on_a_false_check() -> None:
    inv = kill9.Invariant("x")
    inv.check(True, "fine")
    assert inv.ok
    inv.check(False, "bad")
    assert not inv.ok and inv.failures == ["bad"] and inv.checks == 2
