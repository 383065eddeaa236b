"""requirements.lock pins everything the project pulls in, at the versions this suite runs with.

A dependency added to pyproject.toml without `scripts/lock` would install unpinned on a fresh machine;
this test says so (run scripts/test, then scripts/lock).
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
#: Installed by scripts/_venv.sh beside the project for the tests (the SDK without its pins).
REFERENCE_PACKAGES = ("hyperliquid-python-sdk", "requests", "websocket-client")


def locked() -> dict[str, str]:
    pins: dict[str, str] = {}
    for raw in (ROOT / "requirements.lock").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep, f"requirements.lock: not NAME==VERSION: {raw!r}"
        pins[canonicalize_name(name)] = version.strip()
    return pins


def installed_closure(root: str, extras: tuple[str, ...]) -> set[str]:
    """`root` and everything it requires (with `extras`), transitively, as installed here."""
    seen: set[str] = set()
    todo: list[tuple[str, tuple[str, ...]]] = [(root, extras)]
    while todo:
        name, wanted = todo.pop()
        key = canonicalize_name(name)
        if key in seen and not wanted:
            continue
        seen.add(key)
        for text in metadata.requires(name) or []:
            req = Requirement(text)
            environments = [{"extra": e} for e in ("", *wanted)]
            if req.marker is None or any(req.marker.evaluate(env) for env in environments):
                todo.append((req.name, tuple(req.extras)))
    return seen


def test_the_lock_pins_every_installed_dependency_at_its_version() -> None:
    pins = locked()
    needed = installed_closure("hip3", ("test",)) | {canonicalize_name(n) for n in REFERENCE_PACKAGES}
    needed.discard("hip3")
    missing = sorted(n for n in needed if n not in pins)
    assert not missing, f"not in requirements.lock (run scripts/lock after scripts/test): {missing}"
    differ = {n: (pins[n], metadata.version(n)) for n in needed if pins[n] != metadata.version(n)}
    assert not differ, f"requirements.lock (locked, installed) differs from the venv: {differ}"


def test_running_needs_no_test_tools() -> None:
    runtime = installed_closure("hip3", ())
    for tool in ("pytest", "mypy", "ruff", "hypothesis", "hyperliquid-python-sdk"):
        assert canonicalize_name(tool) not in runtime, f"{tool} is a runtime dependency"
