"""systemd's notify protocol (what `sd_notify(3)` does), spoken directly: no libsystemd needed.

Under `Type=notify` systemd passes `NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace) and,
with `WatchdogSec=`, `WATCHDOG_USEC` (and `WATCHDOG_PID`). The bot sends one datagram per update:
`READY=1` once it first becomes READY, `STATUS=<one line>` as its state changes, `WATCHDOG=1` at half
the watchdog interval, `STOPPING=1` when shutdown begins. Without `NOTIFY_SOCKET` nothing is sent.

The watchdog pings come from a task on the trio loop, never from a thread: a loop that is blocked or
hung sends none, so systemd kills and restarts the process.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Mapping

import trio

log = logging.getLogger("hip3.service.sdnotify")

ENV_SOCKET = "NOTIFY_SOCKET"
ENV_WATCHDOG_USEC = "WATCHDOG_USEC"
ENV_WATCHDOG_PID = "WATCHDOG_PID"
#: systemd shows STATUS= in `systemctl status`; a long line is cut there anyway.
MAX_STATUS_CHARS = 400
#: How often readiness and the status line are looked at.
STATUS_POLL_SECS = 1.0


def socket_address(value: str) -> str:
    """The AF_UNIX address for a `NOTIFY_SOCKET` value; `@name` is `\\0name` (abstract namespace)."""
    if value.startswith("@"):
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    raise ValueError(f"{ENV_SOCKET}={value!r}: only a socket path or an @abstract name is supported")


def watchdog_interval(environ: Mapping[str, str], pid: int | None = None) -> float | None:
    """systemd's watchdog timeout in seconds, or None when no watchdog is asked of this process."""
    raw = environ.get(ENV_WATCHDOG_USEC)
    if not raw:
        return None
    watched_pid = environ.get(ENV_WATCHDOG_PID)
    if watched_pid and watched_pid.strip() != str(pid if pid is not None else os.getpid()):
        return None  # meant for another process (e.g. we were started by a wrapper)
    try:
        usec = int(raw)
    except ValueError:
        log.warning("ignoring %s=%r: not a whole number of microseconds", ENV_WATCHDOG_USEC, raw)
        return None
    return usec / 1_000_000 if usec > 0 else None


def one_line(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= MAX_STATUS_CHARS else flat[: MAX_STATUS_CHARS - 1] + "…"


class Notifier:
    """One datagram socket to systemd; sends never block and never raise (a failure is logged once)."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._sock.setblocking(False)
        self._failing = False
        self.sent = 0

    def send(self, *fields: str) -> bool:
        """Send `KEY=value` fields as one message; False when systemd could not be told."""
        message = "\n".join(fields).encode()
        try:
            self._sock.sendto(message, self.address)
        except OSError as exc:
            if not self._failing:
                log.warning("systemd notify socket: cannot send (%s); will keep trying", exc)
            self._failing = True
            return False
        if self._failing:
            log.info("systemd notify socket: sending again")
        self._failing = False
        self.sent += 1
        return True

    def ready(self, status: str) -> bool:
        return self.send("READY=1", f"STATUS={one_line(status)}")

    def status(self, status: str) -> bool:
        return self.send(f"STATUS={one_line(status)}")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def stopping(self, status: str) -> bool:
        return self.send("STOPPING=1", f"STATUS={one_line(status)}")

    def close(self) -> None:
        self._sock.close()


def notifier_from_env(environ: Mapping[str, str]) -> Notifier | None:
    """A notifier for `NOTIFY_SOCKET`, or None when it is unset (not started by systemd)."""
    value = environ.get(ENV_SOCKET)
    if not value:
        return None
    try:
        return Notifier(socket_address(value))
    except (ValueError, OSError) as exc:
        log.warning("not notifying systemd: %s", exc)
        return None


async def run_watchdog(
    notifier: Notifier, timeout_secs: float, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """`WATCHDOG=1` now and then every half `timeout_secs`, from this task on the loop."""
    task_status.started()
    while True:
        notifier.watchdog()
        await trio.sleep(timeout_secs / 2)


async def run_service_notify(
    notifier: Notifier,
    *,
    is_ready: Callable[[], bool],
    status: Callable[[], str],
    stopping: trio.Event,
    watchdog_secs: float | None,
    poll_secs: float = STATUS_POLL_SECS,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Tell systemd READY once `is_ready()` first holds, the status line when it changes, STOPPING
    when `stopping` is set; keep the watchdog fed (through shutdown too) until cancelled."""
    async with trio.open_nursery() as nursery:
        if watchdog_secs is not None:
            await nursery.start(run_watchdog, notifier, watchdog_secs)
        task_status.started()
        announced_ready = False
        last_status = ""
        while not stopping.is_set():
            line = status()
            if not announced_ready and is_ready():
                notifier.ready(line)
                announced_ready = True
                log.info("told systemd: READY")
            elif line != last_status:
                notifier.status(line)
            last_status = line
            with trio.move_on_after(poll_secs):
                await stopping.wait()
        notifier.stopping("stopping: no new entries; settling in-flight orders")
