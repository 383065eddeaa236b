"""A fixed-bucket histogram of durations: cheap to observe on the hot path, read by the metrics endpoint.

Buckets are upper bounds in seconds (Prometheus' `le`): a value lands in the first bucket whose bound
is >= the value; anything larger in the overflow (`+Inf`) bucket.
"""

from __future__ import annotations

from bisect import bisect_left

import attrs

#: Round trips to the exchange and signal-to-fill times: 1 ms .. 30 s.
LATENCY_BUCKETS_SECS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: How late the event loop wakes a sleeping task: 0.1 ms .. 5 s.
LAG_BUCKETS_SECS = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)


@attrs.define
class Histogram:
    bounds: tuple[float, ...] = LATENCY_BUCKETS_SECS
    counts: list[int] = attrs.field()  # one per bound, then the overflow
    sum: float = 0.0
    count: int = 0

    @counts.default
    def _zeros(self) -> list[int]:
        return [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, observations <= it) per bucket, ending with (inf, count)."""
        out: list[tuple[float, int]] = []
        running = 0
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += n
            out.append((bound, running))
        return out
