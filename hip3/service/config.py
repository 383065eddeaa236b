"""TOML file -> validated, frozen `Config` (shape and defaults in `hip3.service.config_schema`).

Every problem is collected and reported as one line naming its key path, e.g.
`position.max_notional_per_market: must be > 0, got -5` or `markets.coinz: unknown key`.
Values are never echoed when they look like a private key.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin
from urllib.parse import urlsplit, urlunsplit

import attrs
import cattrs
from cattrs.errors import (
    AttributeValidationNote,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)

from hip3.params import DOC, Bound, Check, ParamError, Warn, checks_of, must_be_le
from hip3.service.config_schema import (
    DEFAULT_URLS,
    AccountConfig,
    Config,
    JournalConfig,
    LoggingConfig,
    MarketsConfig,
    MetricsConfig,
    NetworkConfig,
)
from hip3.service.masking import looks_like_a_key

__all__ = [
    "AccountConfig",
    "Config",
    "ConfigError",
    "JournalConfig",
    "LoggingConfig",
    "MarketsConfig",
    "MetricsConfig",
    "NetworkConfig",
    "config_from_mapping",
    "config_from_text",
    "config_to_text",
    "load_config",
]


class ConfigError(Exception):
    """The configuration is unusable; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


# Showing offending values ------------------------------------------------------------------------

_SECRET_LIKE = re.compile(r"[0-9a-fA-F]{64}")


def show_value(value: object) -> str:
    """A value as it would appear in TOML, short, and never a private key."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        if _SECRET_LIKE.search(value):
            return "a string that looks like a private key (not shown)"
        text = json.dumps(value)
        return text if len(text) <= 60 else text[:57] + '..."'
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, Decimal) and not value.is_finite():
        return "nan" if value.is_nan() else ("-inf" if value < 0 else "inf")
    if isinstance(value, int | float | Decimal):
        return str(value)
    return f"a {type(value).__name__}"


# Strict structuring hooks: TOML's types, no silent coercion (cattrs' defaults would turn 5 into "5").


def _structure_decimal(value: object, _type: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise ValueError(f"expected a number, got {show_value(value)}")
    try:
        # str() first so a float written as 0.1 stays 0.1
        result = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"expected a number, got {show_value(value)}") from None
    if not result.is_finite():
        raise ValueError(f"expected a finite number, got {show_value(value)}")
    return result


def _structure_int(value: object, _type: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {show_value(value)}")
    return value


def _structure_float(value: object, _type: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValueError(f"expected a number, got {show_value(value)}")
    result = float(value)
    if not math.isfinite(result):
        raise ValueError(f"expected a finite number, got {show_value(value)}")
    return result


def _structure_bool(value: object, _type: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {show_value(value)}")
    return value


def _structure_str(value: object, _type: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {show_value(value)}")
    return value


def _structure_path(value: object, _type: object) -> Path:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {show_value(value)}")
    return Path(value)


def _is_literal(t: Any) -> bool:
    origin: object = get_origin(t)
    return origin is Literal


def _structure_literal_factory(type_: Any) -> Callable[[object, object], object]:
    options = get_args(type_)
    shown = [json.dumps(o) for o in options]
    wanted = " or ".join(shown) if len(shown) <= 2 else "one of " + ", ".join(shown) + ";"

    def hook(value: object, _type: object) -> object:
        if isinstance(value, bool) or value not in options:
            raise ValueError(f"must be {wanted} got {show_value(value)}".replace('" got', '", got'))
        return value

    return hook


def _is_checked_annotated(type_: Any) -> bool:
    return get_origin(type_) is Annotated and any(isinstance(m, Check) for m in type_.__metadata__)


def _annotated_factory(converter: cattrs.Converter) -> Callable[[Any], Callable[[object, object], object]]:
    def factory(type_: Any) -> Callable[[object, object], object]:
        base = get_args(type_)[0]
        checks = [m for m in type_.__metadata__ if isinstance(m, Check)]

        def hook(value: object, _type: object) -> object:
            result = converter.structure(value, base)
            for check in checks:
                result = check(result)
            return result

        return hook

    return factory


def _note(exc: Exception, index: int | str, type_: Any) -> Exception:
    exc.__notes__ = [*getattr(exc, "__notes__", []), IterableValidationNote(f"@ {index!r}", index, type_)]
    return exc


def _is_variadic_tuple(type_: Any) -> bool:
    args = get_args(type_)
    return get_origin(type_) is tuple and len(args) == 2 and args[1] is Ellipsis


def _tuple_factory(converter: cattrs.Converter) -> Callable[[Any], Callable[[object, object], object]]:
    def factory(type_: Any) -> Callable[[object, object], object]:
        item_type = get_args(type_)[0]

        def hook(value: object, _type: object) -> tuple[object, ...]:
            if not isinstance(value, list):
                raise ValueError(f"expected an array, got {show_value(value)}")
            items, errors = [], []
            for i, item in enumerate(value):
                try:
                    items.append(converter.structure(item, item_type))
                except Exception as exc:
                    errors.append(_note(exc, i, item_type))
            if errors:
                raise IterableValidationError("invalid array items", errors, type_)
            return tuple(items)

        return hook

    return factory


def _is_str_mapping(type_: Any) -> bool:
    origin = get_origin(type_)
    return origin in (Mapping, dict) or (isinstance(origin, type) and issubclass(origin, Mapping))


def _mapping_factory(converter: cattrs.Converter) -> Callable[[Any], Callable[[object, object], object]]:
    def factory(type_: Any) -> Callable[[object, object], object]:
        value_type = get_args(type_)[1]

        def hook(value: object, _type: object) -> dict[str, object]:
            if not isinstance(value, dict):
                raise ValueError(f"expected a table, got {show_value(value)}")
            result, errors = {}, []
            for key, item in value.items():
                try:
                    result[key] = converter.structure(item, value_type)
                except Exception as exc:
                    errors.append(_note(exc, key, value_type))
            if errors:
                raise IterableValidationError("invalid table values", errors, type_)
            return result

        return hook

    return factory


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    converter.register_structure_hook(Decimal, _structure_decimal)
    converter.register_structure_hook(int, _structure_int)
    converter.register_structure_hook(float, _structure_float)
    converter.register_structure_hook(bool, _structure_bool)
    converter.register_structure_hook(str, _structure_str)
    converter.register_structure_hook(Path, _structure_path)
    converter.register_structure_hook_factory(_is_literal, _structure_literal_factory)
    converter.register_structure_hook_factory(_is_variadic_tuple, _tuple_factory(converter))
    converter.register_structure_hook_factory(_is_str_mapping, _mapping_factory(converter))
    converter.register_structure_hook_factory(_is_checked_annotated, _annotated_factory(converter))
    return converter


_CONVERTER = _make_converter()


# Turning cattrs' exception trees into "key.path: message" lines ----------------------------------


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    shown = key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)
    return f"{path}.{shown}" if path else shown


def _unknown_key_line(path: str, key: str, known: Iterable[str]) -> str:
    line = f"{_join(path, key)}: unknown key"
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.7)
    if close:
        return line + f' (did you mean "{close[0]}"?)'
    lowered = key.lower()
    if any(word in lowered for word in ("key", "secret", "mnemonic", "seed")):
        return line + " (never put a key in the config: set HIP3_PRIVATE_KEY or account.key_file)"
    return line


def _problems_from(exc: BaseException, path: str) -> list[str]:
    if isinstance(exc, ParamError):
        return list(exc.problems)
    if isinstance(exc, ClassValidationError | IterableValidationError):
        lines: list[str] = []
        for sub in exc.exceptions:
            sub_path = path
            for note in getattr(sub, "__notes__", []):
                if isinstance(note, AttributeValidationNote):
                    sub_path = _join(path, note.name)
                    break
                if isinstance(note, IterableValidationNote):
                    sub_path = _join(path, note.index)
                    break
            lines.extend(_problems_from(sub, sub_path))
        return lines
    if isinstance(exc, ForbiddenExtraKeysError):
        known = [a.name for a in attrs.fields(exc.cl)]
        return [_unknown_key_line(path, key, known) for key in sorted(exc.extra_fields)]
    if isinstance(exc, KeyError):
        return [f"{path}: required"]
    if isinstance(exc, ValueError):
        return [f"{path}: {exc}"]
    return [f"{path}: invalid ({type(exc).__name__})"]


def _structure(value: object, type_: Any, path: str) -> tuple[Any, list[str]]:
    try:
        return _CONVERTER.structure(value, type_), []
    except Exception as exc:
        return None, _problems_from(exc, path)


# Rules that span several fields -----------------------------------------------------------------


def _section_rules(name: str, section: Any) -> list[str]:
    """Rules of one section that need the TOML's key spelling; a section's own rules across its
    fields run when it is built (its `problems()`)."""
    problems: list[str] = []
    match section:
        case MarketsConfig():
            if not section.coins:
                problems.append('markets.coins: must list at least one coin, or ["*"] for every market')
            elif "*" in section.coins and len(section.coins) > 1:
                problems.append('markets.coins: "*" (every market) must be the only entry')
            else:
                seen: set[str] = set()
                for coin in section.coins:
                    if coin in seen:
                        problems.append(f"markets.coins: {coin} is listed twice")
                    seen.add(coin)
                if not section.all_coins:
                    for coin in section.threshold_bps:
                        if coin not in seen:
                            problems.append(
                                f"{_join('markets.threshold_bps', coin)}: {coin} is not in markets.coins"
                            )
    return problems


def _config_rules(cfg: Config) -> list[str]:
    problems: list[str] = []
    if cfg.is_trading and cfg.account.address is None:
        problems.append(
            'account.address: required when mode = "trading" (the master account that owns positions)'
        )
    # Fees come from the exchange at startup (checked there); a configured fee is known now.
    for coin, bps in cfg.markets.threshold_bps.items():
        fee = cfg.markets.taker_fee_bps.get(coin, cfg.detector.taker_fee_bps)
        if fee is not None and bps < 2 * fee:
            problems.append(
                f"{_join('markets.threshold_bps', coin)}: must be >= the round trip's taker fees "
                f"({2 * fee} bps = 2 x the configured {fee} bps), got {bps} (below it every round trip "
                "loses its fees)"
            )
    problems += must_be_le(
        "detector.min_order_notional",
        cfg.detector.min_order_notional,
        "position.max_notional_per_market",
        cfg.position.max_notional_per_market,
    )
    return problems


def _resolve_urls(network: NetworkConfig) -> NetworkConfig:
    defaults = DEFAULT_URLS[network.name]
    return attrs.evolve(
        network,
        info_url=network.info_url or defaults["info_url"],
        exchange_url=network.exchange_url or defaults["exchange_url"],
        ws_url=network.ws_url or defaults["ws_url"],
    )


# Public entry points ------------------------------------------------------------------------------


def config_from_mapping(raw: Mapping[str, Any], *, base_dir: Path | None = None) -> Config:
    """Validate parsed TOML; raises ConfigError listing every problem.

    With `base_dir` (the config file's directory) relative paths resolve against it; without
    (a config built in code) they stay as written.
    """
    problems: list[str] = []
    values: dict[str, Any] = {}
    fields = {a.name: a for a in attrs.fields(Config)}
    for key in raw:
        if key not in fields:
            problems.append(_unknown_key_line("", key, fields))
    failed: set[str] = set()
    for name, attribute in fields.items():
        if name not in raw:
            continue
        value = raw[name]
        if attribute.type is not None and attrs.has(attribute.type) and not isinstance(value, dict):
            problems.append(f"{name}: expected a table [{name}], got {show_value(value)}")
            failed.add(name)
            continue
        structured, found = _structure(value, attribute.type, name)
        if found:
            problems.extend(found)
            failed.add(name)
            continue
        problems.extend(_section_rules(name, structured))
        values[name] = structured
    # Rules across sections run even when a section failed (with its defaults standing in), so
    # every problem is reported at once; lines about a failed section would only repeat it.
    cfg = Config(**values)
    problems.extend(
        line for line in _config_rules(cfg) if not any(_mentions(line, section) for section in failed)
    )
    if not problems:
        cfg = attrs.evolve(cfg, network=_resolve_urls(cfg.network))
        return cfg if base_dir is None else resolve_paths(cfg, base_dir)
    raise ConfigError(problems)


def resolve_paths(cfg: Config, base_dir: Path) -> Config:
    """`cfg` with every relative file path (hard-stop state, journal, key file) made absolute
    against `base_dir`. A key pasted where a path belongs is left alone for the key loader to refuse."""

    def resolved(path: Path) -> Path:
        return path if path.is_absolute() else base_dir / path

    key_file = cfg.account.key_file
    if key_file is not None and not looks_like_a_key(str(key_file)):
        key_file = resolved(key_file)
    journal = cfg.journal.path
    return attrs.evolve(
        cfg,
        hard_stop=attrs.evolve(cfg.hard_stop, state_file=resolved(cfg.hard_stop.state_file)),
        journal=attrs.evolve(cfg.journal, path=str(resolved(Path(journal))) if journal else ""),
        account=attrs.evolve(cfg.account, key_file=key_file),
    )


def _mentions(line: str, section: str) -> bool:
    return line.startswith(section) or f" {section}." in line or f"({section}." in line


def config_from_text(text: str, *, source: str = "config", base_dir: Path | None = None) -> Config:
    try:
        raw = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{source}: not valid TOML: {exc}"]) from None
    return config_from_mapping(raw, base_dir=base_dir)


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML config file; raises ConfigError (one line per problem)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: config file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read config file: {exc.__class__.__name__}: {exc}"]) from None
    # Relative paths in the file mean the same whatever directory a command runs from.
    return config_from_text(text, source=str(path), base_dir=Path(path).resolve().parent)


# Effective config as TOML -------------------------------------------------------------------------


def mask_url(url: str) -> str:
    """Hide credentials a URL may carry (user:password@, query string)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = "***" if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _toml_string(text: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped, the rest as is
    (json.dumps would write a character beyond U+FFFF as a surrogate pair, which TOML refuses)."""
    out: list[str] = []
    for ch in text:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_value(value: Any, *, is_url: bool = False) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return _toml_string(mask_url(value) if is_url else value)
    if isinstance(value, Path):
        return _toml_string(str(value))
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        items = ", ".join(f"{_join('', str(k))} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + items + " }"
    raise TypeError(f"cannot show {type(value).__name__} as TOML")


def config_to_text(cfg: Config) -> str:
    """The effective config (defaults filled in) as TOML, with credentials in URLs masked."""
    lines = [f"mode = {_toml_value(cfg.mode)}"]
    if not cfg.sessions:
        lines.append("sessions = []")
    for attribute in attrs.fields(Config):
        section = getattr(cfg, attribute.name)
        if not attrs.has(type(section)):
            continue
        lines.append("")
        lines.append(f"[{attribute.name}]")
        for field in attrs.fields(type(section)):
            value = getattr(section, field.name)
            if value is None:
                lines.append(f"# {field.name} is not set")
                continue
            lines.append(f"{field.name} = {_toml_value(value, is_url=field.name.endswith('_url'))}")
    for window in cfg.sessions:
        lines += ["", "[[sessions]]"]
        for name in (
            "name",
            "start",
            "end",
            "time_zone",
            "days",
            "dex",
            "coins",
            "action",
            "threshold_multiplier",
        ):
            lines.append(f"{name} = {_toml_value(getattr(window, name))}")
    return "\n".join(lines) + "\n"


# Reference table (README) -------------------------------------------------------------------------

README_TABLE_START = "<!-- config reference: generated by scripts/config_reference.py -->"
README_TABLE_END = "<!-- end of config reference -->"


def _limits_text(type_: Any) -> str:
    if get_origin(type_) is not Annotated:
        origin = get_origin(type_)
        if origin is Literal:
            return " or ".join(json.dumps(o) for o in get_args(type_))
        args = [a for a in get_args(type_) if a is not type(None)]
        if args and len(args) < len(get_args(type_)):  # X | None
            return _limits_text(args[0])
        if origin is tuple or (isinstance(origin, type) and issubclass(origin, Mapping)):
            return _limits_text(args[-1])
        return ""
    bounds = [f"{m.op} {m.limit}" for m in type_.__metadata__ if isinstance(m, Bound)]
    return ", ".join(bounds)


def _default_text(attribute: attrs.Attribute[Any]) -> str:
    default: Any = attribute.default
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        default = default.factory()
    if default is None:
        return "not set"
    if attribute.converter is not None:
        default = attribute.converter(default)  # type: ignore[operator]
    return _toml_value(default)


def reference_table() -> str:
    """The README's config reference: one row per key, from the parameter classes themselves."""
    rows = [
        "| key | default | limits | meaning |",
        "|---|---|---|---|",
        '| `mode` | `"observation"` | `"observation"` or `"trading"` | trading places orders; observation only '
        "records signals |",
    ]
    for section in attrs.fields(Config):
        if section.type is None or not attrs.has(section.type):
            continue
        for f in attrs.fields(section.type):
            doc = f.metadata.get(DOC, "")
            limits = _limits_text(f.type)
            rows.append(
                f"| `{section.name}.{f.name}` | `{_default_text(f)}` | {limits} | {doc.replace('|', '/')} |"
            )
    return "\n".join(rows)


# Legal but unusual values ----------------------------------------------------------------------------


def unusual_values(cfg: Config) -> list[str]:
    """Values that pass validation but deserve a second look, one line each with the reason.

    `hip3 run` logs each as a WARNING at startup and `hip3 check-config` prints them.
    """
    lines: list[str] = []
    for section in attrs.fields(Config):
        if section.type is None or not attrs.has(section.type):
            continue
        values = getattr(cfg, section.name)
        for f in attrs.fields(section.type):
            value = getattr(values, f.name)
            for mark in checks_of(f.type):
                if isinstance(mark, Warn) and value is not None and mark.when(value):
                    lines.append(f"{section.name}.{f.name} = {_toml_value(value)}: {mark.text}")
        if section.name == "hard_stop" and cfg.hard_stop.max_daily_loss_usd > cfg.position.max_total_notional:
            lines.append(
                f"hard_stop.max_daily_loss_usd = {cfg.hard_stop.max_daily_loss_usd}: above "
                f"position.max_total_notional ({cfg.position.max_total_notional}); a day may lose more "
                "than everything the bot may hold at once before the hard stop latches"
            )
    return lines
