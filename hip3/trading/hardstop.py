"""The hard stop: a latch that stops new entries when something has gone badly wrong.

Triggers (the first one wins; its reason and time are kept):
  * the day's realized PnL minus fees (UTC day) reaches −`max_daily_loss_usd`;
  * more than `max_rejects` non-benign order rejects within `reject_window_secs`;
  * `max_flatten_failures` consecutive failed flattens in one market.

A latched hard stop blocks entries only: exits and flattens still flow, so the bot can get flat.

The latch is persisted to `state_file` (JSON, written atomically, mode 0600) so that a restart —
systemd restarts the bot on failure — does not silently clear it; `HardStop.load` restores it.
Anything the bot would not have written (unreadable, not JSON, a field of the wrong type, a
non-finite or absurd PnL) loads as latched: fail closed. There is no automatic release: a human
resets it with ``hip3 reset-hard-stop --config PATH``, which calls `reset_hard_stop`, after
finding out what happened.

The disk can refuse. At startup `load` writes a latched "spare" state beside the state file; a
latch whose full state cannot be written (disk full) renames the spare over the state file, which
needs no new space, so a restart still finds it latched. A latch that reaches no disk at all stays
latched in memory, is logged CRITICAL and shown in the status line, and is retried. If startup
cannot arm the spare, the bot cannot vouch for a later latch and starts latched.

Daily PnL updates are written by `run_hard_stop_persistence` in a worker thread, coalesced, so the
event loop never waits for an fsync; the latch itself is decided in memory first and written at
once (it happens at most once per run).

Beside the day's PnL the file keeps a running mark per dex: until when that dex's bot had seen
(and counted) every fill. A restart counts the fills after it (`hip3.service.downtime`). Bots of
other dexes sharing the file keep each other's marks (a mark only moves forward; a re-read file
adds the others' newer ones).

Several processes may share one state file (one per dex on the same account): `latched` re-reads
the file when its stat signature changed, so a latch written by another process blocks entries
here too, and a PnL write never overwrites a latch found on disk.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from collections import deque
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import trio
from attrs import frozen

from hip3.clock import utc_now
from hip3.core import MarketKey
from hip3.params import CapUsd, Count, FilePath, Secs, param, parameters

log = logging.getLogger(__name__)

#: Reject messages that are normal for an IOC taker and say nothing about the bot's health.
#: Matched as case-insensitive prefixes (the venue appends " asset=N"); the orderUpdates status
#: names for the same outcomes are accepted too.
BENIGN_REJECT_PREFIXES = (
    "order could not immediately match",
    "order must have minimum value of",
    "reduce only order would increase position",
    "order has zero size",
    "ioccancelrejected",
    "mintradentlrejected",
    "reduceonlyrejected",
    # An entry that reached the exchange after its expiresAfter: refused as designed (it was late).
    "action already expired",
)


def is_benign_reject(message: str) -> bool:
    """True for rejects an IOC taker expects (no match, under minimum, reduce-only race, zero size)."""
    return message.strip().lower().startswith(BENIGN_REJECT_PREFIXES)


#: Rejects saying the signer or the account cannot trade at all: every further order would fail too.
_ACCOUNT_REFUSALS = re.compile(
    r"user or api wallet \S+ does not exist|must deposit before performing actions"
)


def is_account_refusal(message: str) -> bool:
    return _ACCOUNT_REFUSALS.search(message.lower()) is not None


@frozen(field_transformer=parameters("hard_stop"))
class HardStopParams:
    """`[hard_stop]`: the latch's triggers (none can be turned off) and where the latch is kept."""

    max_daily_loss_usd: CapUsd = param(
        Decimal(50), "latch when today's realized loss (UTC day) reaches this (USD)"
    )
    max_rejects: Count = param(5, "latch after more non-benign order rejects than this within the window")
    reject_window_secs: Secs = param(3600.0, "window for counting rejects")
    max_flatten_failures: Count = param(3, "latch after this many consecutive failed flattens in one market")
    state_file: FilePath = param(Path("var/hard_stop.json"), "the latch survives restarts in this file")


class HardStop:
    """The latch plus the counters that feed it. Every `record_*` returns True if it just latched."""

    def __init__(self, params: HardStopParams, *, wall_clock: Callable[[], datetime] = utc_now) -> None:
        self.params = params
        self._wall_clock = wall_clock
        self.reason: str | None = None
        self.latched_at: float | None = None  # trio time, when latched in this process
        self.latched_wall: str | None = None  # ISO-8601 UTC, survives restarts
        self.pnl_day: date | None = None
        self.daily_net_pnl = Decimal(0)
        #: dex -> wall-clock ms: the last time the bot of that dex was running with its fills in
        #: sync; fills after it were not counted (a restart counts them).
        self.running: dict[str, int] = {}
        self._rejects: deque[float] = deque()
        self._flatten_failures: dict[str, int] = {}
        #: False while the latest state (above all a latch) has not reached the disk.
        self.persisted = True
        self._dirty = False
        self._wakeup: trio.Event | None = None  # set while `run_hard_stop_persistence` runs
        self._seen: tuple[int, int, int] | None = None  # stat signature of the file as last read/written
        self._changes = 0  # state changes handed to the writer so far
        self._changes_written = 0  # of those, how many a completed write holds
        self._written: trio.Event | None = None  # set (and dropped) after each completed write

    @classmethod
    def load(
        cls, params: HardStopParams, *, wall_clock: Callable[[], datetime] = utc_now, arm: bool = True
    ) -> HardStop:
        """Restore from `params.state_file` and (with `arm`, when trading) arm the spare; a missing
        file is a clear hard stop, anything the bot would not have written is a latched one, and
        so is a disk that cannot take a latch."""
        stop = cls(params, wall_clock=wall_clock)
        path = params.state_file
        stop._seen = _signature(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            text = None
        except OSError as exc:
            stop._latch_in_memory(f"hard-stop state file {path} unreadable: {exc.strerror}", None)
            text = None
        if text is not None:
            try:
                stop._restore(json.loads(text))
            except (ValueError, InvalidOperation) as exc:
                stop._latch_in_memory(
                    f"hard-stop state file {path} is corrupt ({exc}); reset it by hand", None
                )
        if stop.latched:
            log.critical("hard stop restored from %s: %s — entries blocked until reset", path, stop.reason)
            return stop
        if not arm:
            return stop
        try:
            write_atomically(_spare_path(path), json.dumps(_spare_state(wall_clock()), indent=2) + "\n")
        except OSError as exc:
            stop._latch_in_memory(
                f"cannot write hard-stop state beside {path} ({exc.strerror or exc}): the bot cannot "
                "vouch that a latch would survive a restart; free the disk, then restart",
                None,
            )
            log.critical("HARD STOP: %s", stop.reason)
        return stop

    def _restore(self, data: Any) -> None:
        """Take the saved state; raises ValueError for anything `to_json` would not have written."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        latched = data.get("latched")
        if latched is not False:
            if latched is not True:
                raise ValueError(f"latched: expected true or false, got {latched!r}")
            self.reason = str(data.get("reason") or "unknown (restored)")
            self.latched_wall = str(data.get("latched_wall") or "") or None
        running = data.get("running")
        if running is not None:
            marks = _running_marks(running)
            if marks is None:
                raise ValueError(f"running: expected {{dex: milliseconds, ...}}, got {running!r}")
            self.running = marks
        daily = data.get("daily")
        if daily is None:
            return
        if not isinstance(daily, dict):
            raise ValueError(f"daily: expected an object, got {daily!r}")
        day, net = daily.get("day"), daily.get("net_pnl", "0")
        if day is None:
            return
        if not isinstance(day, str) or not isinstance(net, str):
            raise ValueError(f"daily: expected day and net_pnl as strings, got {day!r}, {net!r}")
        pnl = Decimal(net)
        if not pnl.is_finite() or abs(pnl) >= MAX_PNL_USD:
            raise ValueError(f"daily.net_pnl: not a sane amount: {net!r}")
        self.pnl_day = date.fromisoformat(day)
        self.daily_net_pnl = pnl

    # -----------------------------------------------------------------------------------------
    # State

    @property
    def latched(self) -> bool:
        """True once latched here, or once another process wrote a latch to the same state file."""
        if self.reason is None:
            self._check_disk()
        return self.reason is not None

    def describe(self) -> str:
        """The latch for status lines; says so when it has not reached the disk."""
        if self.reason is None:
            return "not latched"
        if not self.persisted:
            return f"{self.reason} (NOT PERSISTED: a restart would not know it)"
        return self.reason

    def _check_disk(self) -> None:
        """Adopt a latch another process wrote; costs one stat unless the file changed."""
        signature = _signature(self.params.state_file)
        if signature == self._seen:
            return
        self._seen = signature
        if signature is None:
            return
        try:
            data = json.loads(self.params.state_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return  # a file being replaced; the next look sees the new one
        if isinstance(data, dict):
            # Other dexes' bots on the same file: keep their newer marks when writing ours.
            for dex, ms in (_running_marks(data.get("running")) or {}).items():
                if ms > self.running.get(dex, -1):
                    self.running[dex] = ms
        if isinstance(data, dict) and data.get("latched") is True:
            self.reason = str(data.get("reason") or "unknown (latched by another process)")
            self.latched_wall = str(data.get("latched_wall") or "") or None
            log.critical(
                "HARD STOP seen in %s (another process): %s — new entries blocked; exits still flow",
                self.params.state_file,
                self.reason,
            )

    def allows(self, *, reduce_only: bool) -> bool:
        """Entries are blocked while latched; reduce-only exits and flattens always flow."""
        return reduce_only or not self.latched

    def trigger(self, reason: str, now: float | None = None) -> bool:
        """Latch with `reason` unless already latched (the first reason wins). True if it latched now."""
        if self.latched:
            return False
        self._latch_in_memory(reason, now)
        log.critical("HARD STOP: %s — new entries blocked; exits still flow", reason)
        self._save_latch()
        return True

    # -----------------------------------------------------------------------------------------
    # Triggers

    def record_pnl(self, realized: Decimal, fees: Decimal, day: date, now: float | None = None) -> bool:
        """Add one realized PnL amount and the fees paid for it (both increments, USD) to `day`'s total.

        A new UTC day starts the total from zero. Latches when the total ≤ −max_daily_loss_usd.
        An amount for a day before the current one (a fill of the previous run recovered just after
        midnight) counts towards the current day: it must never restart today's total from zero.
        """
        if self.pnl_day is not None and day < self.pnl_day:
            log.warning(
                "PnL %s (fees %s) of %s reported on %s: counted towards today's loss",
                realized,
                fees,
                day,
                self.pnl_day,
            )
            day = self.pnl_day
        if self.pnl_day != day:
            self.pnl_day = day
            self.daily_net_pnl = Decimal(0)
        self.daily_net_pnl += realized - fees
        limit = self.params.max_daily_loss_usd
        if limit > 0 and self.daily_net_pnl <= -limit:
            return self.trigger(f"daily loss ${-self.daily_net_pnl} on {day} reached limit ${limit}", now)
        self._persist_soon()
        return False

    def mark_running(self, dex: str, wall_ms: int) -> None:
        """The bot of `dex` is running and has seen (and counted) every fill up to `wall_ms`."""
        self.running[dex] = wall_ms
        self._persist_soon()

    def last_running_ms(self, dex: str) -> int | None:
        """When the bot of `dex` last marked itself running; None when unknown."""
        return self.running.get(dex)

    def record_reject(self, message: str, now: float) -> bool:
        """Count a non-benign order reject at trio time `now`; benign ones are ignored. A reject
        saying the key or the account cannot trade at all latches at once, saying so."""
        if is_benign_reject(message):
            return False
        if is_account_refusal(message):
            return self.trigger(
                f"the exchange refuses this key or account (agent approval revoked or expired, or no "
                f"deposit?): {message}",
                now,
            )
        window = self.params.reject_window_secs
        self._rejects.append(now)
        while self._rejects and now - self._rejects[0] > window:
            self._rejects.popleft()
        limit = self.params.max_rejects
        if limit > 0 and len(self._rejects) > limit:
            return self.trigger(
                f"{len(self._rejects)} order rejects within {window:g} s (limit {limit}); last: {message}",
                now,
            )
        return False

    def record_flatten_failure(self, market: MarketKey | str, reason: str, now: float | None = None) -> bool:
        key = str(market)
        count = self._flatten_failures.get(key, 0) + 1
        self._flatten_failures[key] = count
        limit = self.params.max_flatten_failures
        if limit > 0 and count >= limit:
            return self.trigger(f"{count} consecutive flatten failures in {key}; last: {reason}", now)
        return False

    def record_flatten_success(self, market: MarketKey | str) -> None:
        self._flatten_failures.pop(str(market), None)

    def flatten_failures(self, market: MarketKey | str) -> int:
        return self._flatten_failures.get(str(market), 0)

    # -----------------------------------------------------------------------------------------
    # Persistence

    def _latch_in_memory(self, reason: str, now: float | None) -> None:
        self.reason = reason
        self.latched_at = now
        self.latched_wall = self._wall_clock().isoformat()

    def to_json(self) -> dict[str, Any]:
        return {
            "latched": self.latched,
            "reason": self.reason,
            "latched_wall": self.latched_wall,
            "daily": {
                "day": self.pnl_day.isoformat() if self.pnl_day else None,
                "net_pnl": str(self.daily_net_pnl),
            },
            "running": dict(sorted(self.running.items())),
        }

    def _persist_soon(self) -> None:
        """Hand the state to the writer task, or write it now when none runs (tests, tools)."""
        self._changes += 1
        self._dirty = True
        if self._wakeup is not None:
            self._wakeup.set()
        else:
            self._save()

    def _save(self) -> None:
        """Write the state now; a failure is logged, never raised (the latch holds in memory)."""
        try:
            self._write()
        except OSError as exc:
            self.persisted = False
            log.error("could not write hard-stop state to %s: %s", self.params.state_file, exc)
        else:
            self._dirty = False

    def _save_latch(self) -> None:
        """Write a new latch at once; on a full disk the armed spare stands in for it."""
        path = self.params.state_file
        try:
            self._write()
            self._dirty = False
            return
        except OSError as exc:
            problem = exc
        self._dirty = True
        try:
            os.replace(_spare_path(path), path)
        except OSError:
            self.persisted = False
            log.critical(
                "HARD STOP NOT PERSISTED: could not write hard-stop state to %s: %s; entries stay "
                "blocked in this process, but a restart would not know — stop the bot and free the disk",
                path,
                problem,
            )
        else:
            log.critical(
                "could not write hard-stop state to %s (%s): stored a latch without its reason "
                "instead; retrying the full state",
                path,
                problem,
            )
        if self._wakeup is not None:
            self._wakeup.set()

    def _render(self) -> str:
        return json.dumps(self.to_json(), indent=2) + "\n"

    def _write(self) -> None:
        """Write the state now; a latch another process wrote is adopted first, never cleared."""
        _ = self.latched  # re-reads the file if it changed since we last saw it
        changes = self._changes
        write_atomically(self.params.state_file, self._render())
        self._seen = _signature(self.params.state_file)
        self.persisted = True
        self._note_written(changes)

    def _note_written(self, changes: int) -> None:
        self._changes_written = max(self._changes_written, changes)
        if self._written is not None:
            self._written.set()
            self._written = None

    async def wait_written(self) -> None:
        """Return once the state as it is now is on disk. A disk that refuses keeps this waiting
        (the writer retries): callers bound it."""
        target = self._changes
        while self._changes_written < target:
            if self._written is None:
                self._written = trio.Event()
            await self._written.wait()

    def flush(self) -> None:
        """Write pending state now (at shutdown, after the writer task has stopped)."""
        if self._dirty or not self.persisted:
            if self.latched:
                self._save_latch()
            else:
                self._save()
        if self.latched and not self.persisted:
            log.critical("HARD STOP NOT PERSISTED at exit: %s", self.reason)


#: A daily PnL beyond this is not something the bot wrote (USD).
MAX_PNL_USD = Decimal(10) ** 12
#: Seconds between attempts to write state the disk refused.
RETRY_SECS = 5.0


def _running_marks(value: Any) -> dict[str, int] | None:
    """The running marks as saved ({dex: ms}); None for anything the bot would not have written."""
    if not isinstance(value, dict):
        return None
    if not all(isinstance(d, str) and type(ms) is int and ms >= 0 for d, ms in value.items()):
        return None
    return dict(value)


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_ino, info.st_mtime_ns, info.st_size)


def _spare_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.latched-spare")


def _spare_state(armed: datetime) -> dict[str, Any]:
    return {
        "latched": True,
        "reason": (
            f"a hard stop latched after {armed.isoformat()} (pid {os.getpid()}) but its state could "
            "not be written in full (disk full?); see that run's log for the reason"
        ),
        "latched_wall": None,
        "daily": {"day": None, "net_pnl": "0"},
    }


async def run_hard_stop_persistence(
    stop: HardStop, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Write the hard stop's state whenever it changed, in a worker thread, coalescing updates.

    A write the disk refuses is retried every `RETRY_SECS`; the latch never waits for it.
    """
    stop._wakeup = trio.Event()
    task_status.started()
    try:
        while True:
            await stop._wakeup.wait()
            stop._wakeup = trio.Event()
            while stop._dirty:
                stop._dirty = False
                latched = stop.latched  # decided here, on the loop, before the thread runs
                changes = stop._changes
                text = stop._render()
                try:
                    seen = await trio.to_thread.run_sync(
                        _write_in_thread, stop.params.state_file, text, latched
                    )
                except OSError as exc:
                    stop._dirty = True
                    stop.persisted = False
                    level = logging.CRITICAL if latched else logging.ERROR
                    log.log(
                        level,
                        "could not write hard-stop state to %s: %s; retrying",
                        stop.params.state_file,
                        exc,
                    )
                    await trio.sleep(RETRY_SECS)
                    continue
                if seen is not None:
                    stop._seen = seen
                    stop._note_written(changes)
                if stop.latched == latched:
                    stop.persisted = True
                else:  # latched meanwhile (here or on disk): write the latch too
                    stop._dirty = True
    finally:
        stop._wakeup = None


def _write_in_thread(path: Path, text: str, latched: bool) -> tuple[int, int, int] | None:
    """The worker thread's write; returns the file's new signature, or None when it did not write
    because a latch is on disk (unlatched state never replaces one; the loop adopts it)."""
    if not latched and _disk_says_latched(path):
        return None
    write_atomically(path, text)
    return _signature(path)


def _disk_says_latched(path: Path) -> bool:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return False
    except (OSError, ValueError):
        return True
    return not isinstance(data, dict) or data.get("latched") is not False


def write_atomically(path: Path, text: str) -> None:
    """Write `text` to a temp file beside `path`, fsync it, then rename over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def reset_hard_stop(state_file: str | os.PathLike[str]) -> bool:
    """Clear a hard stop by removing its state file (the ``hip3 reset-hard-stop`` command).

    Run it only with the bot stopped and after understanding why it latched: a running bot keeps
    its latch in memory until restarted. Also clears the day's recorded PnL. Returns True if a
    file was removed, False if there was none.
    """
    try:
        Path(state_file).unlink()
    except FileNotFoundError:
        return False
    return True
