"""Risk: pure per-market gates, the hard-stop latch, and the READY state."""

from hip3.risk.gates import GateLog, GateParams, GateState, GateVerdict, evaluate_gates
from hip3.risk.hardstop import HardStop, HardStopParams, is_benign_reject, reset_hard_stop
from hip3.risk.ready import ReadyState

__all__ = [
    "GateLog",
    "GateParams",
    "GateState",
    "GateVerdict",
    "HardStop",
    "HardStopParams",
    "ReadyState",
    "evaluate_gates",
    "is_benign_reject",
    "reset_hard_stop",
]
