"""The exit code after a stop says whether the account is known to be flat."""

from __future__ import annotations

from hip3.core import Cloid, MarketKey
from hip3.service.app import EXIT_NOT_SETTLED, EXIT_OK, exit_code_after_shutdown
from hip3.trading.exits import ShutdownOutcome

TSLA = MarketKey("xyz", "TSLA", 110001)


def test_unresolved_orders_exit_3_whatever_the_flatten_setting() -> None:
    outcome = ShutdownOutcome(flat=False, unresolved=(Cloid.random(),))
    assert EXIT_NOT_SETTLED == 3
    assert exit_code_after_shutdown(outcome, flatten_on_shutdown=True) == EXIT_NOT_SETTLED
    assert exit_code_after_shutdown(outcome, flatten_on_shutdown=False) == EXIT_NOT_SETTLED


def test_positions_left_exit_3_only_when_they_should_have_been_flattened() -> None:
    outcome = ShutdownOutcome(flat=False, positions_left=(TSLA,))
    assert exit_code_after_shutdown(outcome, flatten_on_shutdown=True) == EXIT_NOT_SETTLED
    assert exit_code_after_shutdown(outcome, flatten_on_shutdown=False) == EXIT_OK


def test_flat_or_observation_exits_0() -> None:
    assert exit_code_after_shutdown(ShutdownOutcome(flat=True), flatten_on_shutdown=True) == EXIT_OK
    assert exit_code_after_shutdown(None, flatten_on_shutdown=True) == EXIT_OK
