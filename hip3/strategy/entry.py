"""Entry rules as pure functions: the round-trip threshold, the structural baseline, the exit-cost
estimate and the size taken.

The round trip (issue 10.2): an entry pays the taker fee, its exit pays it again and crosses the
caught-up book's half-spread; only the edge above all that, plus a margin, is worth taking:

    threshold = (entry fee + exit fee + expected exit cost + min_edge) × session multiplier

with a per-market all-in override (`threshold_bps`) replacing the sum. `Threshold` keeps the parts
so each signal can say why it traded.

A market whose book sits persistently away from the oracle (a structural gap) shows an "edge" all
the time that never closes; the system this replaced got 81.6 % of its signals from such markets
and lost money on them (original-system.md §7 item 42). Edge is therefore measured against each
market's recent median of the signed book–oracle gap (`RecentMedian`), once it has warmed up.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from decimal import Decimal

import attrs
from attrs import frozen

from hip3.core import MarketSpec, Side, Size

BPS = Decimal(10_000)
ONE = Decimal(1)
#: Size is capped a little under the notional limit: the tracker values orders at the limit
#: price, which the executor may move by the slippage bound.
NOTIONAL_CAP_BUFFER = Decimal("0.99")


def _fmt(value: Decimal) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") if value != value.to_integral() else f"{value:.0f}"


@frozen
class Threshold:
    """The entry threshold of one market and side, in bps, with its parts."""

    entry_fee_bps: Decimal
    exit_fee_bps: Decimal
    exit_cost_bps: Decimal
    margin_bps: Decimal
    session_multiplier: Decimal = ONE
    override_bps: Decimal | None = None  # a configured all-in threshold replaces the sum

    @property
    def fees_bps(self) -> Decimal:
        return self.entry_fee_bps + self.exit_fee_bps

    @property
    def cost_bps(self) -> Decimal:
        """What a round trip costs (fees and exit), without the margin."""
        return self.fees_bps + self.exit_cost_bps

    @property
    def total_bps(self) -> Decimal:
        base = self.override_bps if self.override_bps is not None else self.cost_bps + self.margin_bps
        return base * self.session_multiplier

    def describe(self) -> str:
        if self.override_bps is not None:
            text = f"override {_fmt(self.override_bps)}"
        else:
            text = (
                f"fees {_fmt(self.entry_fee_bps)}+{_fmt(self.exit_fee_bps)} + exit cost "
                f"{_fmt(self.exit_cost_bps)} + margin {_fmt(self.margin_bps)}"
            )
        if self.session_multiplier != ONE:
            text = f"({text}) × {_fmt(self.session_multiplier)} session"
        return f"{text} = {_fmt(self.total_bps)} bps"


@frozen
class SlowAverage:
    """A time-weighted average that forgets with time constant `tau` (seconds).

    While younger than `tau` it is the plain time average of what it has seen (so the first sample
    does not dominate the warm-up), then an exponential average. Samples at the same instant as the
    last one are ignored (a re-evaluation of the same data adds nothing).
    """

    value: Decimal | None = None
    started_at: float | None = None
    last_at: float | None = None

    def observe(self, sample: Decimal, at: float, tau_secs: float) -> SlowAverage:
        if self.value is None or self.started_at is None or self.last_at is None:
            return SlowAverage(sample, at, at)
        dt = at - self.last_at
        if dt <= 0:
            return self
        elapsed = at - self.started_at
        decay = Decimal(-dt / tau_secs).exp() if tau_secs > 0 else Decimal(0)
        weight = max(ONE - decay, Decimal(dt / elapsed))
        return attrs.evolve(self, value=self.value + weight * (sample - self.value), last_at=at)

    def age(self, now: float) -> float:
        return 0.0 if self.started_at is None else now - self.started_at

    def warmed(self, now: float, warmup_secs: float) -> bool:
        return self.value is not None and self.age(now) >= warmup_secs


#: Bound on the samples a `RecentMedian` keeps (a sample per oracle update: ~3 s apart on HIP-3).
MAX_MEDIAN_SAMPLES = 256
#: Samples a `RecentMedian` needs before it counts: the median of two is their mean, so one bad
#: sample (a book still lagging at the next update) would be half the baseline; of three it is out.
MIN_MEDIAN_SAMPLES = 3


@frozen
class RecentMedian:
    """The median of the samples seen in the last `window_secs` (at most `MAX_MEDIAN_SAMPLES`).

    A median, not a mean: an oracle spike the makers never follow gives one wild sample, and a
    handful of those must not become "structure". When every sample has left the window the
    clock of the warm-up starts again with the next one (`started_at`).

    A sample arrives with an oracle update, which is the very update a signal is taken on: the
    values are kept in order beside the samples, so a sample is a binary search and an insert,
    not a sort of the window (at 256 samples: ~45 µs sorted, a few µs this way).
    """

    samples: tuple[tuple[float, Decimal], ...] = ()  # (at, value), oldest first
    value: Decimal | None = None
    started_at: float | None = None
    ordered: tuple[Decimal, ...] = ()  # the samples' values, ascending

    def observe(self, sample: Decimal, at: float, window_secs: float) -> RecentMedian:
        if self.samples and at <= self.samples[-1][0]:
            return self  # a re-evaluation of the same instant adds nothing
        count = len(self.samples)
        expired = 0
        while expired < count and at - self.samples[expired][0] >= window_secs:
            expired += 1
        drop = max(expired, count - (MAX_MEDIAN_SAMPLES - 1))
        # Nothing left in the window (an oracle stuck or a feed gone for longer than it): the new
        # sample stands alone, and may compare the book with an oracle that stopped long ago, so
        # the measurement starts over and warms up again.
        started = self.started_at if self.started_at is not None and drop < count else at
        ordered = list(self.ordered) if drop < count else []
        if ordered:
            for _, old in self.samples[:drop]:
                del ordered[bisect_left(ordered, old)]
        insort(ordered, sample)
        mid = len(ordered) // 2
        value = ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
        return RecentMedian((*self.samples[drop:], (at, sample)), value, started, tuple(ordered))

    def age(self, now: float) -> float:
        return 0.0 if self.started_at is None else now - self.started_at

    def warmed(self, now: float, warmup_secs: float) -> bool:
        return (
            self.value is not None
            and len(self.samples) >= MIN_MEDIAN_SAMPLES
            and self.age(now) >= warmup_secs
        )


def signed_gap_bps(oracle: Decimal, mid: Decimal) -> Decimal:
    """Where the book sits against the oracle: (mid − oracle) / oracle × 10⁴ (> 0: book above)."""
    return (mid - oracle) / oracle * BPS


def edge_above_baseline(side: Side, raw_edge_bps: Decimal, baseline_gap_bps: Decimal | None) -> Decimal:
    """The edge left after the market's structural gap.

    A book that always sits 30 bps above the oracle makes every bid look like a sell edge: those
    30 bps are taken off. The gap is never added to an edge: an ask above the oracle but under
    where the book has been sitting is not bought. A book can lead a slow oracle for minutes; when
    the oracle catches up in one step, that "usual place" is gone and such a buy rides to the
    time stop.
    """
    if baseline_gap_bps is None:
        return raw_edge_bps
    structural = baseline_gap_bps if side is Side.SELL else -baseline_gap_bps
    return raw_edge_bps - max(Decimal(0), structural)


def brackets(bid: Decimal, ask: Decimal, fair: Decimal) -> bool:
    """The book has caught up: the fair price lies between bid and ask."""
    return bid <= fair <= ask


def half_spread_bps(bid: Decimal, ask: Decimal) -> Decimal:
    mid = (bid + ask) / 2
    return (ask - bid) / 2 / mid * BPS


def take_size(
    level_px: Decimal,
    level_sz: Decimal,
    spec: MarketSpec,
    *,
    max_notional: Decimal,
    min_book_notional: Decimal,
    min_order_notional: Decimal,
) -> Size | str:
    """The size taken from the stale level, or why nothing is taken.

    A thin book is the opportunity: take the whole displayed level, up to the market's notional
    cap. Nothing when the level itself is smaller than `min_book_notional`, or when what can be
    taken is under the minimum order notional (an order bigger than the level would reach past it
    into the book that is not stale).
    """
    if level_px <= 0 or level_sz <= 0:
        return "empty level"
    level_notional = level_px * level_sz
    if level_notional < min_book_notional:
        return f"level ${level_notional:.0f} < min_book_notional ${min_book_notional}"
    size = spec.round_size(min(level_sz, max_notional * NOTIONAL_CAP_BUFFER / level_px))
    if size <= 0 or size * level_px < min_order_notional:
        return f"takeable ${size * level_px:.2f} < min_order_notional ${min_order_notional}"
    return size
