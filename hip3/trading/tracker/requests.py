"""Everything the tracker can be asked, as frozen messages, and the one function that applies them.

The tracker task receives nothing else, so the list of (trio time, request) it received is a
complete record: `fold` applies such a record to a fresh `Tracker` and reaches the same state.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from attrs import frozen

from hip3.core import Cloid
from hip3.trading.messages import Correction, PositionEvent, ReserveRequest
from hip3.trading.reports import AccountSnapshot, FillReport, OrderNotFound, OrderReport, PostOutcome
from hip3.trading.tracker.tracker import Tracker


@frozen
class Reserve:
    """Check and record a reservation in one step (answers a `ReserveDecision`)."""

    request: ReserveRequest


@frozen
class RecordPostOutcome:
    cloid: Cloid
    outcome: PostOutcome


@frozen
class RecordFills:
    fills: tuple[FillReport, ...]


@frozen
class RecordOrderReports:
    reports: tuple[OrderReport, ...]


@frozen
class ResolveOrder:
    """The executor's orderStatus lookup for one order it could not settle otherwise."""

    report: OrderReport | OrderNotFound


@frozen
class ListStaleReservations:
    """Answers the cloids of open reservations older than `older_than` seconds."""

    older_than: float


@frozen
class Abandon:
    cloid: Cloid
    reason: str


@frozen
class BeginFetch:
    """Answers the fence to hand back with a snapshot fetched after this request."""


@frozen
class ApplySnapshot:
    """Answers the corrections made (the position events include them)."""

    fence: int
    snapshot: AccountSnapshot
    dex: str | None = None


@frozen
class Evict:
    """Forget tids and finished orders older than the tracker's memory."""


TrackerRequest = (
    Reserve
    | RecordPostOutcome
    | RecordFills
    | RecordOrderReports
    | ResolveOrder
    | ListStaleReservations
    | Abandon
    | BeginFetch
    | ApplySnapshot
    | Evict
)


def apply_request(tracker: Tracker, request: TrackerRequest, now: float) -> tuple[Any, list[PositionEvent]]:
    """Apply one request at trio time `now`: (the answer for the caller, the position events)."""
    match request:
        case Reserve(request=req):
            return tracker.reserve(req, now)
        case RecordPostOutcome(cloid=cloid, outcome=outcome):
            return None, tracker.apply_post_result(cloid, outcome, now)
        case RecordFills(fills=fills):
            return None, tracker.apply_fills(fills, now)
        case RecordOrderReports(reports=reports):
            return None, tracker.apply_order_reports(reports, now)
        case ResolveOrder(report=report):
            return None, tracker.order_resolved(report, now)
        case ListStaleReservations(older_than=older_than):
            return tracker.stale_reservations(now, older_than), []
        case Abandon(cloid=cloid, reason=reason):
            return None, tracker.abandon(cloid, now, reason)
        case BeginFetch():
            return tracker.begin_fetch(), []
        case ApplySnapshot(fence=fence, snapshot=snapshot, dex=dex):
            events = tracker.apply_snapshot(fence, snapshot, now, dex=dex)
            return [e for e in events if isinstance(e, Correction)], events
        case Evict():
            tracker.evict(now)
            return None, []
    raise TypeError(f"not a tracker request: {request!r}")


def fold(tracker: Tracker, record: Iterable[tuple[float, TrackerRequest]]) -> Tracker:
    """Apply a recorded sequence of (trio time, request) to `tracker`, in order; returns it.

    A request the tracker refused as malformed changed nothing when it was recorded; it is skipped
    here the same way.
    """
    for now, request in record:
        try:
            apply_request(tracker, request, now)
        except Exception:
            continue
    return tracker
