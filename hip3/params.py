"""How a task declares its parameters: once, as one frozen attrs class that is also its TOML section.

A parameter class is written `@frozen(field_transformer=parameters("section"))`; each field's type carries its limits as
`Annotated` metadata (`Bps`, `Usd`, `Secs`, or `Annotated[Decimal, Gt(0), Le(1000)]`) and its default
and one-line description come from `param(default, "what it is")`. From that one declaration:

* `hip3.service.config` structures the TOML section into the class (cattrs), checking every value
  against the same limits and naming the key path of each problem;
* building the class directly (tests, the demo, the simulator's bot) converts numbers the same way
  (ints and strings to `Decimal`, ints to float seconds) and enforces the same limits;
* rules across fields of one section live in the class's `problems()` method and run in both cases;
* `config/example.toml` and the README's reference table are checked against it by a test.
"""

from __future__ import annotations

import os
import re
import sys
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import attrs

__all__ = [
    "Bound",
    "Check",
    "ParamError",
    "Reason",
    "Warn",
    "param",
    "param_decimal",
    "parameters",
]


class ParamError(ValueError):
    """One or more parameter problems, each line already naming its key path."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


# Per-value checks (Annotated metadata) ------------------------------------------------------------


class Check:
    """A per-value rule: returns the (possibly normalised) value or raises ValueError(message)."""

    def __call__(self, value: Any) -> Any:
        raise NotImplementedError


@attrs.frozen
class Bound(Check):
    """`value <op> limit` must hold; the message reads like `must be > 0, got -5` (plus a reason)."""

    op: Literal[">", ">=", "<", "<="]
    limit: Decimal | int | float
    why: str = ""

    def __call__(self, value: Any) -> Any:
        ok = {
            ">": value > self.limit,
            ">=": value >= self.limit,
            "<": value < self.limit,
            "<=": value <= self.limit,
        }[self.op]
        if not ok:
            reason = f" ({self.why})" if self.why else ""
            raise ValueError(f"must be {self.op} {self.limit}, got {value}{reason}")
        return value


def Gt(limit: Decimal | int | float, why: str = "") -> Bound:
    return Bound(">", limit, why)


def Ge(limit: Decimal | int | float, why: str = "") -> Bound:
    return Bound(">=", limit, why)


def Le(limit: Decimal | int | float, why: str = "") -> Bound:
    return Bound("<=", limit, why)


@attrs.frozen
class Reason:
    """Why a value's limits are what they are (shown in the reference table)."""

    text: str


@attrs.frozen
class Warn:
    """A legal but unusual value: `hip3.service.config.unusual_values` logs a WARNING at startup.

    `when(value)` says whether the value is unusual; `text` says why it deserves a second look.
    """

    when: Callable[[Any], bool]
    text: str


_ADDRESS_RE = re.compile(r"0x[0-9a-fA-F]{40}")


@attrs.frozen
class EthAddress(Check):
    """0x + 40 hex digits; normalised to lowercase (the exchange reports addresses in lowercase)."""

    def __call__(self, value: Any) -> Any:
        if not _ADDRESS_RE.fullmatch(value):
            raise ValueError(f"must be 0x followed by 40 hex digits, got {len(value)} characters")
        return value.lower()


@attrs.frozen
class UrlScheme(Check):
    """A URL with one of the given schemes, or "" for the network's default."""

    schemes: tuple[str, ...]

    def __call__(self, value: Any) -> Any:
        if value == "":
            return value
        scheme, sep, rest = value.partition("://")
        if not sep or scheme.lower() not in self.schemes or not rest:
            wanted = " or ".join(f"{s}://" for s in self.schemes)
            raise ValueError(f'must be a URL starting with {wanted} (or "" for the default), got {value!r}')
        return value


@attrs.frozen
class NonEmpty(Check):
    def __call__(self, value: Any) -> Any:
        if not value or str(value) == ".":
            raise ValueError("must not be empty")
        return value


@attrs.frozen
class CoinName(Check):
    """A coin name as the dex lists it, without the `dex:` prefix, or "*" for every market."""

    def __call__(self, value: Any) -> Any:
        if not value or value != value.strip():
            raise ValueError(f"not a coin name: {value!r}")
        if ":" in value:
            raise ValueError(f'write the coin without the dex prefix ("{value.split(":", 1)[1]}")')
        return value


@attrs.frozen
class DexName(Check):
    def __call__(self, value: Any) -> Any:
        if not re.fullmatch(r"[A-Za-z0-9_]+", value):
            raise ValueError(f'must be a dex name like "xyz" (letters, digits, _), got {value!r}')
        return value


# Value types with their limits ------------------------------------------------------------------

Usd = Annotated[Decimal, Gt(0)]
#: Upper bound on caps and loss limits: a typo guard (1e12 passes a plain "> 0").
MAX_USD = Decimal(1_000_000)
CapUsd = Annotated[
    Decimal,
    Gt(0),
    Le(MAX_USD, "a typo guard: more than USD 1,000,000 is beyond what this bot is built to risk"),
]
NonNegativeUsd = Annotated[Decimal, Ge(0)]
PositiveDecimal = Annotated[Decimal, Gt(0)]
Bps = Annotated[Decimal, Ge(0)]
PositiveBps = Annotated[Decimal, Gt(0)]
Secs = Annotated[float, Gt(0)]
SecsOrOff = Annotated[float, Ge(0)]  # 0 = off
Count = Annotated[int, Ge(1)]
CountOrOff = Annotated[int, Ge(0)]
Fraction = Annotated[Decimal, Gt(0), Le(1)]
Address = Annotated[str, EthAddress()]
Url = Annotated[str, UrlScheme(("http", "https"))]
WsUrl = Annotated[str, UrlScheme(("ws", "wss"))]
#: A file path; relative ones are resolved against the config file's directory by the loader.
FilePath = Annotated[Path, NonEmpty()]


# Declaring a parameter ---------------------------------------------------------------------------

DOC = "hip3.doc"


def param(default: Any = attrs.NOTHING, doc: str = "", *, factory: Callable[[], Any] | None = None) -> Any:
    """A parameter field: its default and a one-line description (the README table shows it)."""
    if factory is not None:
        return attrs.field(factory=factory, metadata={DOC: doc})
    return attrs.field(default=default, metadata={DOC: doc})


def param_decimal(value: Decimal | int | float | str) -> Decimal:
    """Ints, Decimals, numeric strings and floats (through their text, so 0.1 stays 0.1)."""
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected a number, got {value!r}")
    else:
        try:
            result = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValueError(f"expected a number, got {value!r}") from None
    if not result.is_finite():
        raise ValueError(f"expected a finite number, got {value!r}")
    return result


def _to_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValueError(f"expected a number, got {value!r}")
    return float(value)


def _to_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {value!r}")
    return value


def _to_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def _to_path(value: Any) -> Path:
    if not isinstance(value, str | os.PathLike):
        raise ValueError(f"expected a path, got {value!r}")
    if str(value) in ("", "."):
        raise ValueError("must not be empty")
    return Path(value)


def _to_str(value: Any) -> str:
    if isinstance(value, os.PathLike):
        return os.fspath(value)  # type: ignore[no-any-return]
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def checks_of(type_: Any) -> list[Any]:
    """The Annotated metadata of a field type (Checks, Reasons, Warns), outermost type only."""
    return list(type_.__metadata__) if get_origin(type_) is Annotated else []


def _converter_for(type_: Any) -> Callable[[Any], Any]:
    """A function that turns a directly passed value into the field's type and applies its checks."""
    origin = get_origin(type_)
    if origin is Annotated:
        inner = _converter_for(get_args(type_)[0])
        checks = [m for m in type_.__metadata__ if isinstance(m, Check)]

        def annotated(value: Any) -> Any:
            result = inner(value)
            for check in checks:
                result = check(result)
            return result

        return annotated
    if origin in (typing.Union, types.UnionType):
        options = [a for a in get_args(type_) if a is not type(None)]
        inner = _converter_for(options[0]) if len(options) == 1 else (lambda v: v)
        return lambda value: None if value is None else inner(value)
    if origin is Literal:
        allowed = get_args(type_)

        def literal(value: Any) -> Any:
            if isinstance(value, bool) or value not in allowed:
                raise ValueError(f"must be one of {', '.join(map(repr, allowed))}; got {value!r}")
            return value

        return literal
    if origin is tuple:
        item = _converter_for(get_args(type_)[0])
        return lambda value: tuple(item(v) for v in value)
    if origin is not None and isinstance(origin, type) and issubclass(origin, Mapping):
        item = _converter_for(get_args(type_)[1])
        return lambda value: types.MappingProxyType({str(k): item(v) for k, v in dict(value).items()})
    simple: dict[Any, Callable[[Any], Any]] = {
        Decimal: param_decimal,
        float: _to_float,
        int: _to_int,
        bool: _to_bool,
        str: _to_str,
        Path: _to_path,
    }
    return simple.get(type_, lambda value: value)


def _named(section: str, name: str, convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def converter(value: Any) -> Any:
        try:
            return convert(value)
        except ParamError:
            raise
        except (ValueError, TypeError) as exc:
            raise ParamError([f"{section}.{name}: {exc}"]) from None

    return converter


FieldTransformer = Callable[[type, list["attrs.Attribute[Any]"]], list["attrs.Attribute[Any]"]]


def parameters(section: str) -> FieldTransformer:
    """Use as `@frozen(field_transformer=parameters("section"))` (see the module docstring).

    Every field gets a converter built from its type: numbers become the declared type and the
    `Annotated` checks apply, each error naming `section.field`. A class may define
    `problems(self) -> list[str]` for rules across its fields (lines with their key paths, see
    `must_be_le`); they run whenever an instance is built.
    """

    def transform(cls: type, fields: list[attrs.Attribute[Any]]) -> list[attrs.Attribute[Any]]:
        module = sys.modules[cls.__module__]
        hints = typing.get_type_hints(cls, globalns=vars(module), include_extras=True)
        out = []
        for f in fields:
            hint = hints[f.name]
            if attrs.has(hint):
                out.append(f.evolve(type=hint))
            else:
                out.append(f.evolve(type=hint, converter=_named(section, f.name, _converter_for(hint))))
        rules = getattr(cls, "problems", None)
        if rules is not None:

            def __attrs_post_init__(self: Any) -> None:
                found = list(rules(self))
                if found:
                    raise ParamError(found)

            cls.__attrs_post_init__ = __attrs_post_init__  # type: ignore[attr-defined]
        cls.__hip3_section__ = section  # type: ignore[attr-defined]
        return out

    return transform


def must_be_le(low_path: str, low: Any, high_path: str, high: Any) -> Iterable[str]:
    if low > high:
        yield f"{low_path}: must be <= {high_path} ({high}), got {low}"


def must_be_lt(low_path: str, low: Any, high_path: str, high: Any) -> Iterable[str]:
    if low >= high:
        yield f"{low_path}: must be < {high_path} ({high}), got {low}"
