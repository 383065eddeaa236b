"""Client-side budgets for the exchange's per-IP limits, on trio's clock.

`RollingLimiter` keeps the cost spent in the last `window` seconds and makes a caller wait
(`trio.sleep_until`) until enough of it has aged out. Used for the REST weight budget
(1200/min) and the WebSocket message budget (2000 client messages/min).
"""

from __future__ import annotations

from collections import deque

import trio


class RollingLimiter:
    def __init__(self, capacity: int, window: float = 60.0) -> None:
        if capacity <= 0:
            raise ValueError(f"capacity must be > 0, got {capacity}")
        self.capacity = capacity
        self.window = window
        self._spent: deque[tuple[float, int]] = deque()  # (time, cost), oldest first
        self._total = 0

    def _expire(self, now: float) -> None:
        while self._spent and self._spent[0][0] + self.window <= now:
            _, cost = self._spent.popleft()
            self._total -= cost

    def used(self) -> int:
        """Cost spent in the current window."""
        self._expire(trio.current_time())
        return self._total

    async def acquire(self, cost: int = 1) -> None:
        """Wait until `cost` fits in the window, then spend it. A cost above capacity waits for an empty window."""
        cost = max(0, cost)
        need = min(cost, self.capacity)
        while True:
            now = trio.current_time()
            self._expire(now)
            if self._total + need <= self.capacity:
                break
            # Wait until enough old spending ages out: find the entry whose expiry frees room.
            freed = 0
            wake = now
            for at, spent in self._spent:
                freed += spent
                wake = at + self.window
                if self._total - freed + need <= self.capacity:
                    break
            await trio.sleep_until(wake)
        self.charge(cost)

    def charge(self, cost: int) -> None:
        """Record cost already incurred without waiting (e.g. weight that depends on the answer's size)."""
        if cost <= 0:
            return
        self._spent.append((trio.current_time(), cost))
        self._total += cost
