"""One trading instance per account and dex, by an exclusive lock held for the process's life.

Caps, the tracker's view of positions and the hard stop's counters all live in one process: two
bots trading the same account each stay under their caps while the account goes over them. The
lock is an `fcntl.flock` on a file in the state directory; the kernel releases it when the
process ends however it ends (kill -9 included), so a stale file never blocks a restart. The file
holds the holder's pid so a refusal can name it; it is never removed (removing a lock file lets a
third process lock a new file while the second still holds the old one).
"""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hip3.clock import utc_now

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


class InstanceLocked(Exception):
    """Another process holds the lock; the message names it and the lock file."""


def lock_path(state_dir: Path, account: str, dex: str) -> Path:
    safe_dex = _UNSAFE.sub("_", dex) if dex else "validator"
    return state_dir / f"hip3-{account.lower()}-{safe_dex}.lock"


@contextmanager
def instance_lock(state_dir: Path, account: str, dex: str) -> Iterator[Path]:
    """Hold the lock for (account, dex) inside the block; raises `InstanceLocked` if taken,
    `OSError` if the lock file cannot be created."""
    path = lock_path(state_dir, account, dex)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", errors="replace").strip() or "unknown process"
            raise InstanceLocked(
                f"another hip3 instance already trades account {account} on dex {dex!r}: {holder} "
                f"holds {path}; stop it first (one instance per account and dex)"
            ) from None
        os.ftruncate(fd, 0)
        started = utc_now().isoformat(timespec="seconds")
        os.pwrite(fd, f"pid {os.getpid()} (started {started})\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the flock


def running_instances(state_dir: Path) -> list[str]:
    """Who holds a lock in `state_dir` right now ("pid N (started …) on <file>"); [] if nobody."""
    holders: list[str] = []
    for path in sorted(state_dir.glob("hip3-*.lock")):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 200, 0).decode("utf-8", errors="replace").strip() or "unknown process"
                holders.append(f"{holder} on {path.name}")
        finally:
            os.close(fd)
    return holders
