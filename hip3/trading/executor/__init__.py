"""The executor: signal → round → Reserve at the tracker → sign once → post → outcome to the tracker.

`pricing` (pure order terms), `signer` (one signed body per order), `transport` (WS post with HTTP
fallback, never re-sent), `resolution` (settling unknown outcomes by asking, never re-sending),
`task` (the `Executor` and `run_executor`).
"""

from hip3.trading.executor.pricing import (
    DropReason,
    OrderTerms,
    entry_terms,
    flatten_reference_px,
    flatten_terms,
)
from hip3.trading.executor.signer import L1OrderSigner, OrderSigner
from hip3.trading.executor.task import Executor, ExecutorParams, ExecutorStats, RateLimiter, run_executor
from hip3.trading.executor.transport import Sent, send_action
from hip3.trading.reports import NotSent

__all__ = [
    "DropReason",
    "Executor",
    "ExecutorParams",
    "ExecutorStats",
    "L1OrderSigner",
    "NotSent",
    "OrderSigner",
    "OrderTerms",
    "RateLimiter",
    "Sent",
    "entry_terms",
    "flatten_reference_px",
    "flatten_terms",
    "run_executor",
    "send_action",
]
