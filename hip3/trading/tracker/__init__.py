"""The position tracker: the only owner of positions, reservations and the fill ledger.

`Tracker` holds the rules as plain synchronous methods; `run_tracker` runs one in a task and hands
out a `TrackerHandle` for everyone else. Requests travel as frozen messages (`requests`).
"""

from hip3.trading.tracker.book import Tracker, TrackerStats
from hip3.trading.tracker.ledger import Delta, Ledger, OrderLedger, TidMemory
from hip3.trading.tracker.requests import TrackerRequest, apply_request, fold
from hip3.trading.tracker.task import TrackerHandle, TrackerRequestError, TrackerStopped, run_tracker

__all__ = [
    "Delta",
    "Ledger",
    "OrderLedger",
    "TidMemory",
    "Tracker",
    "TrackerHandle",
    "TrackerRequest",
    "TrackerRequestError",
    "TrackerStats",
    "TrackerStopped",
    "apply_request",
    "fold",
    "run_tracker",
]
