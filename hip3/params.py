"""Converters and range checks shared by the tasks' parameter classes.

The config loader has already checked types and ranges with key paths; these keep a parameter
class honest when it is built directly (tests, the demo) and name the key when it is not.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs

Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


def param_decimal(value: Decimal | int | float | str) -> Decimal:
    """Ints, Decimals, numeric strings and floats (through their text, so 0.1 stays 0.1)."""
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected a number, got {value!r}")
    else:
        try:
            result = Decimal(str(value))
        except InvalidOperation:
            raise ValueError(f"expected a number, got {value!r}") from None
    if not result.is_finite():
        raise ValueError(f"expected a finite number, got {value!r}")
    return result


def non_negative(section: str) -> Validator:
    def check(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value < 0:
            raise ValueError(f"{section}.{attribute.name}: must be >= 0, got {value}")

    return check


def positive(section: str) -> Validator:
    def check(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value <= 0:
            raise ValueError(f"{section}.{attribute.name}: must be > 0, got {value}")

    return check
