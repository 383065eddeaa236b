"""The hard stop: a latch that stops new entries when something has gone badly wrong.

Triggers (the first one wins; its reason and time are kept):
  * the day's realized PnL minus fees (UTC day) reaches −`max_daily_loss_usd`;
  * more than `max_rejects` non-benign order rejects within `reject_window_secs`;
  * `max_flatten_failures` consecutive failed flattens in one market.
A limit of 0 turns its trigger off.

A latched hard stop blocks entries only: exits and flattens still flow, so the bot can get flat.

The latch is persisted to `state_file` (JSON, written atomically) so that a restart — systemd
restarts the bot on failure — does not silently clear it; `HardStop.load` restores it. An
unreadable state file loads as latched (fail closed). There is no automatic release: a human
resets it with ``hip3 reset-hard-stop --config PATH``, which calls `reset_hard_stop`, after
finding out what happened.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections import deque
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from attrs import field, frozen

from hip3.core import MarketKey
from hip3.params import non_negative, param_decimal

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
)


def is_benign_reject(message: str) -> bool:
    """True for rejects an IOC taker expects (no match, under minimum, reduce-only race, zero size)."""
    return message.strip().lower().startswith(BENIGN_REJECT_PREFIXES)


_NON_NEGATIVE = non_negative("hard_stop")


@frozen
class HardStopParams:
    """`[hard_stop]` config keys; 0 turns a trigger off."""

    max_daily_loss_usd: Decimal = field(default=Decimal(50), converter=param_decimal, validator=_NON_NEGATIVE)
    max_rejects: int = field(default=5, converter=int, validator=_NON_NEGATIVE)
    reject_window_secs: float = field(default=3600.0, converter=float, validator=_NON_NEGATIVE)
    max_flatten_failures: int = field(default=3, converter=int, validator=_NON_NEGATIVE)
    state_file: Path = field(default=Path("var/hard_stop.json"), converter=Path)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class HardStop:
    """The latch plus the counters that feed it. Every `record_*` returns True if it just latched."""

    def __init__(self, params: HardStopParams, *, wall_clock: Callable[[], datetime] = _utc_now) -> None:
        self.params = params
        self._wall_clock = wall_clock
        self.reason: str | None = None
        self.latched_at: float | None = None  # trio time, when latched in this process
        self.latched_wall: str | None = None  # ISO-8601 UTC, survives restarts
        self.pnl_day: date | None = None
        self.daily_net_pnl = Decimal(0)
        self._rejects: deque[float] = deque()
        self._flatten_failures: dict[str, int] = {}

    @classmethod
    def load(cls, params: HardStopParams, *, wall_clock: Callable[[], datetime] = _utc_now) -> HardStop:
        """Restore from `params.state_file`; a missing file is a clear hard stop, a corrupt one a latched one."""
        stop = cls(params, wall_clock=wall_clock)
        path = params.state_file
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return stop
        except OSError as exc:
            stop._latch_in_memory(f"hard-stop state file {path} unreadable: {exc.strerror}", None)
            return stop
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            if data.get("latched"):
                stop.reason = str(data.get("reason") or "unknown (restored)")
                stop.latched_wall = str(data.get("latched_wall") or "") or None
            daily = data.get("daily")
            if isinstance(daily, dict) and daily.get("day"):
                stop.pnl_day = date.fromisoformat(str(daily["day"]))
                stop.daily_net_pnl = Decimal(str(daily.get("net_pnl", "0")))
        except (ValueError, InvalidOperation) as exc:
            stop._latch_in_memory(f"hard-stop state file {path} is corrupt ({exc}); reset it by hand", None)
        if stop.latched:
            log.critical("hard stop restored from %s: %s — entries blocked until reset", path, stop.reason)
        return stop

    # -----------------------------------------------------------------------------------------
    # State

    @property
    def latched(self) -> bool:
        return self.reason is not None

    def allows(self, *, reduce_only: bool) -> bool:
        """Entries are blocked while latched; reduce-only exits and flattens always flow."""
        return reduce_only or not self.latched

    def trigger(self, reason: str, now: float | None = None) -> bool:
        """Latch with `reason` unless already latched (the first reason wins). True if it latched now."""
        if self.latched:
            return False
        self._latch_in_memory(reason, now)
        log.critical("HARD STOP: %s — new entries blocked; exits still flow", reason)
        self._save()
        return True

    # -----------------------------------------------------------------------------------------
    # Triggers

    def record_pnl(self, realized: Decimal, fees: Decimal, day: date, now: float | None = None) -> bool:
        """Add one realized PnL amount and the fees paid for it (both increments, USD) to `day`'s total.

        A new UTC day starts the total from zero. Latches when the total ≤ −max_daily_loss_usd.
        """
        if self.pnl_day != day:
            self.pnl_day = day
            self.daily_net_pnl = Decimal(0)
        self.daily_net_pnl += realized - fees
        limit = self.params.max_daily_loss_usd
        if limit > 0 and self.daily_net_pnl <= -limit:
            return self.trigger(f"daily loss ${-self.daily_net_pnl} on {day} reached limit ${limit}", now)
        self._save()
        return False

    def record_reject(self, message: str, now: float) -> bool:
        """Count a non-benign order reject at trio time `now`; benign ones are ignored."""
        if is_benign_reject(message):
            return False
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
        }

    def _save(self) -> None:
        """Write the state atomically; a failure is logged, never raised (the latch holds in memory)."""
        try:
            write_atomically(self.params.state_file, json.dumps(self.to_json(), indent=2) + "\n")
        except OSError as exc:
            log.error("could not write hard-stop state to %s: %s", self.params.state_file, exc)


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
