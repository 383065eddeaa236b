"""The position tracker: the only owner of positions, reservations and the fill ledger.

`Tracker` holds the rules as plain synchronous methods; `run_tracker` runs one in a task and hands
out a `TrackerHandle` for everyone else. Requests travel as frozen messages (`requests`).
"""

from hip3.trading.tracker.orders import Delta, Orders, TrackedOrder, TradeMemory
from hip3.trading.tracker.requests import TrackerRequest, apply_request, fold
from hip3.trading.tracker.stats import TrackerStats
from hip3.trading.tracker.task import TrackerHandle, TrackerRequestError, TrackerStopped, run_tracker
from hip3.trading.tracker.tracker import Tracker

__all__ = [
    "Delta",
    "Orders",
    "TrackedOrder",
    "Tracker",
    "TrackerHandle",
    "TrackerRequest",
    "TrackerRequestError",
    "TrackerStats",
    "TrackerStopped",
    "TradeMemory",
    "apply_request",
    "fold",
    "run_tracker",
]
