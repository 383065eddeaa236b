"""The position tracker: the only owner of positions, reservations and the fill ledger.

`Tracker` holds the rules as plain synchronous methods; `run_tracker` runs one in a task and hands
out a `TrackerHandle` for everyone else.
"""

from hip3.trading.tracker.book import PostResult, Tracker, TrackerStats
from hip3.trading.tracker.ledger import Delta, Ledger, OrderLedger, TidMemory
from hip3.trading.tracker.task import TrackerHandle, TrackerRequestError, TrackerStopped, run_tracker

__all__ = [
    "Delta",
    "Ledger",
    "OrderLedger",
    "PostResult",
    "TidMemory",
    "Tracker",
    "TrackerHandle",
    "TrackerRequestError",
    "TrackerStats",
    "TrackerStopped",
    "run_tracker",
]
