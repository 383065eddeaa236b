"""`hip3 replay FILE… --config PATH`: a recording through the bot's rules, a journal and a summary.

Exit codes: 0 done, 2 usage or configuration error (naming the option or key path).
"""

from __future__ import annotations

import argparse
import itertools
import logging
import sys
import tomllib
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import trio
import trio.testing

from hip3.core import MarketKey, MarketSpec
from hip3.replay.engine import Caps, Replay, ReplayResult
from hip3.replay.fills import FillModel
from hip3.replay.summary import summary_text, sweep_line
from hip3.service.config import Config, ConfigError, config_from_mapping
from hip3.service.journal import Journal, prepare_journal
from hip3.sim.recording import RecordedFrame, RecordingStats, read_recording

EXIT_OK, EXIT_USAGE = 0, 2
log = logging.getLogger("hip3.replay")


class UsageError(Exception):
    pass


# -- markets from the recording ---------------------------------------------------------------


def _decimals(text: Any) -> int:
    try:
        value = Decimal(str(text))
    except InvalidOperation:
        return 0
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def recorded_markets(
    paths: Sequence[Path], cfg: Config, sz_decimals: Mapping[str, int]
) -> dict[MarketKey, MarketSpec]:
    """The configured dex's markets that appear in the recording, with their size decimals.

    A recording carries no meta: a market's lot is `--sz-decimals`, else the finest one the
    recorded numbers allow. A perp's prices have at most 6 − szDecimals decimals, so the finest
    price seen bounds szDecimals from above; displayed sizes bound it from below. The finer lot is
    taken: a lot too coarse would round small orders to nothing, one too fine only lets sizes
    through a little more precisely than the exchange would.
    """
    size_places: dict[str, int] = {}
    price_places: dict[str, int] = {}
    for item in read_recording(paths, RecordingStats()):
        if not isinstance(item, RecordedFrame) or not isinstance(item.data, dict):
            continue
        coin = item.data.get("coin")
        if not isinstance(coin, str):
            continue
        sizes, prices = size_places.setdefault(coin, 0), price_places.setdefault(coin, 0)
        if item.channel == "bbo" and isinstance(item.data.get("bbo"), list):
            for level in item.data["bbo"]:
                if isinstance(level, dict):
                    sizes = max(sizes, _decimals(level.get("sz")))
                    prices = max(prices, _decimals(level.get("px")))
        elif item.channel == "activeAssetCtx" and isinstance(item.data.get("ctx"), dict):
            prices = max(prices, _decimals(item.data["ctx"].get("oraclePx")))
        size_places[coin], price_places[coin] = sizes, prices
    wanted = None if cfg.markets.all_coins else {c.split(":")[-1] for c in cfg.markets.coins}
    specs: dict[MarketKey, MarketSpec] = {}
    for index, name in enumerate(sorted(size_places)):
        dex, _, coin = name.rpartition(":")
        if dex != cfg.markets.dex or (wanted is not None and coin not in wanted):
            continue
        key = MarketKey(dex, coin, 110000 + index)
        finest = min(6, max(size_places[name], 6 - price_places[name]))
        specs[key] = MarketSpec(key, sz_decimals.get(coin, sz_decimals.get(name, finest)))
    return specs


# -- fees ---------------------------------------------------------------------------------------


def fee_function(cfg: Config, fees: Mapping[str, Decimal], table: Any = None) -> Any:
    """Taker bps per market: `--fee COIN=BPS`, else `--fee BPS`, else what the live bot would use.

    The live bot's figure is its scanner's fee table when it keeps one (per market, from the
    exchange's meta, which a recording lacks: the table's rule for an asset without meta), else
    the config's flat HIP-3 rate.
    """
    flat = getattr(cfg.detector, "effective_taker_fee_bps", None)

    def taker_bps(market: MarketKey) -> Decimal:
        given = fees.get(market.coin, fees.get(market.name, fees.get("*")))
        if given is not None:
            return given
        if table is not None:
            return Decimal(table.taker_bps(market))
        return Decimal(flat) if flat is not None else Decimal(9)

    return taker_bps


# -- one run -----------------------------------------------------------------------------------


def build_replay(
    cfg: Config,
    specs: Mapping[MarketKey, MarketSpec],
    model: FillModel,
    fees: Mapping[str, Decimal],
    journal: Journal | None,
) -> Replay:
    # The live bot's own constructor of the detector task's state (gates, detector, sizing).
    from hip3.service.app import signal_scanner

    scanner = signal_scanner(cfg, specs)
    table = getattr(scanner, "fees", None)  # the live scanner's fee table, when it keeps one
    taker_bps_of = fee_function(cfg, fees, table)
    if table is not None and fees:
        # Fees given on the command line are the market's fees for the entry threshold too.
        for market in specs:
            table.overrides[market] = taker_bps_of(market)
        table.apply_assets({})
    return Replay(
        specs,
        scanner,
        caps=Caps(
            cfg.position.max_notional_per_market,
            cfg.position.max_total_notional,
            cfg.position.max_concurrent_positions,
        ),
        max_slippage_bps=cfg.executor.max_slippage_bps,
        flatten_slippage_bps=cfg.exits.flatten_slippage_bps,
        exit_params=cfg.exits,
        fill_model=model,
        taker_bps_of=taker_bps_of,
        journal=journal,
    )


def replay_once(
    paths: Sequence[Path],
    cfg: Config,
    specs: Mapping[MarketKey, MarketSpec],
    model: FillModel,
    fees: Mapping[str, Decimal],
    journal: Journal | None = None,
) -> ReplayResult:
    replay = build_replay(cfg, specs, model, fees, journal)

    async def main() -> ReplayResult:
        return await replay.run(read_recording(paths))

    return trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


# -- arguments --------------------------------------------------------------------------------


def _pairs(values: Sequence[str], what: str, convert: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for text in values:
        key, sep, value = text.partition("=")
        if not sep:
            key, value = "*", text
        try:
            out[key.strip()] = convert(value.strip())
        except (ValueError, InvalidOperation):
            raise UsageError(f"{what}: cannot read {text!r}") from None
    return out


def _fee(text: str) -> Decimal:
    value = Decimal(text)
    if not value.is_finite() or value < 0:
        raise ValueError(text)
    return value


def _toml_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}", parse_float=Decimal)["v"]
    except tomllib.TOMLDecodeError:
        return text


def sweep_settings(sets: Sequence[str]) -> list[list[tuple[str, Any, str]]]:
    """Each --set KEY=V1,V2 → its values; the cartesian product of all of them, in order."""
    axes: list[list[tuple[str, Any, str]]] = []
    for text in sets:
        key, sep, values = text.partition("=")
        parts = key.strip().split(".")
        if not sep or len(parts) != 2 or not all(parts) or not values.strip():
            raise UsageError(f"--set: expected SECTION.KEY=V1[,V2...], got {text!r}")
        axes.append([(key.strip(), _toml_value(v.strip()), v.strip()) for v in values.split(",")])
    return [list(combo) for combo in itertools.product(*axes)] if axes else [[]]


def config_with(raw: Mapping[str, Any], setting: Sequence[tuple[str, Any, str]]) -> Config:
    data = {k: dict(v) if isinstance(v, dict) else v for k, v in raw.items()}
    for key, value, _ in setting:
        section, name = key.split(".")
        table = data.setdefault(section, {})
        if not isinstance(table, dict):
            raise ConfigError([f"{section}: expected a table [{section}]"])
        table[name] = value
    return config_from_mapping(data)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hip3 replay",
        description="Replay a market-data recording through the bot's gates, detector, sizing and exits.",
    )
    p.add_argument("files", nargs="+", help="recording files (frames-YYYY-MM-DD.jsonl.gz), oldest first")
    p.add_argument("--config", required=True, help="the bot's TOML config")
    p.add_argument("--latency-ms", type=float, default=0.0, help="signal to book (default 0)")
    p.add_argument(
        "--pull-probability", type=float, default=0.0, help="chance a stale quote is gone first (0..1)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the pull draws (default 0)")
    p.add_argument(
        "--fee", action="append", default=[], metavar="[COIN=]BPS",
        help="taker fee in bps for one market (COIN=BPS) or all (BPS); default: the config's HIP-3 rate",
    )  # fmt: skip
    p.add_argument(
        "--sz-decimals", action="append", default=[], metavar="COIN=N",
        help="a market's size decimals (default: the finest size in the recording)",
    )  # fmt: skip
    p.add_argument(
        "--set", action="append", default=[], metavar="SECTION.KEY=V1,V2",
        help="sweep a config key over values (repeatable: cartesian product); one line per setting",
    )  # fmt: skip
    p.add_argument("--journal", default=None, help="journal file to write (must not exist; no sweep)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return _run(args)
    except UsageError as exc:
        print(f"hip3 replay: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as exc:
        print(f"hip3 replay: invalid configuration {args.config}:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_USAGE


def _run(args: argparse.Namespace) -> int:
    paths = [Path(f) for f in args.files]
    for path in paths:
        if not path.is_file():
            raise UsageError(f"recording not found: {path}")
    try:
        raw = tomllib.loads(Path(args.config).read_text(encoding="utf-8"), parse_float=Decimal)
    except OSError as exc:
        raise UsageError(f"cannot read config {args.config}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{args.config}: not valid TOML: {exc}"]) from None
    try:
        model = FillModel(args.latency_ms / 1000, args.pull_probability, args.seed)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    fees = _pairs(args.fee, "--fee", _fee)
    decimals = _pairs(args.sz_decimals, "--sz-decimals", int)
    settings = sweep_settings(args.set)
    configs = [(s, config_with(raw, s)) for s in settings]
    if args.journal and len(settings) > 1:
        raise UsageError("--journal with a sweep: a journal holds one run; drop --journal or --set")
    specs = recorded_markets(paths, configs[0][1], decimals)
    if not specs:
        raise UsageError(f"the recording has no market of dex {configs[0][1].markets.dex!r} in the config")
    fee_of = build_replay(configs[0][1], specs, model, fees, None).taker_bps_of
    header = [
        f"replay of {len(paths)} file(s), markets {', '.join(str(m) for m in sorted(specs))}",
        f"fill model: latency {args.latency_ms:g} ms, pull probability {args.pull_probability:g}, "
        f"seed {args.seed}; taker fees "
        + ", ".join(f"{m.coin} {fee_of(m).normalize():f} bps" for m in sorted(specs)),
    ]
    if len(settings) > 1 or args.set:
        print("\n".join(header))
        for setting, cfg in configs:
            name = " ".join(f"{k}={shown}" for k, _, shown in setting)
            print(sweep_line(name, replay_once(paths, cfg, specs, model, fees)))
        return EXIT_OK
    journal: Journal | None = None
    if args.journal:
        if Path(args.journal).exists():
            raise UsageError(f"--journal {args.journal} exists: a replay writes a new journal")
        journal = prepare_journal(args.journal)
    try:
        result = replay_once(paths, configs[0][1], specs, model, fees, journal)
    finally:
        if journal is not None:
            journal.close()
    text = summary_text(result, header)
    if journal is not None:
        text += f"journal: {args.journal} (hip3 journal {args.journal} trips|pnl)\n"
    print(text, end="")
    return EXIT_OK


__all__ = ["main", "recorded_markets", "replay_once", "sweep_settings"]
