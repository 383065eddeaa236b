"""The `hip3` command: run, check-config, reset-hard-stop, journal, record, report, sim,
demo.

Exit codes: 0 ok, 2 configuration or usage error; otherwise whatever the bot returns.
Every check that can refuse a start runs before the bot's modules are imported.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from hip3.service.config import Config, ConfigError, config_to_text, load_config, unusual_values
from hip3.service.instance_lock import running_instances
from hip3.service.keys import ENV_VAR, KeyLoadError, load_signing_key
from hip3.service.masking import mask_secrets

EXIT_OK = 0
EXIT_USAGE = 2
CONFIG_ENV_VAR = "HIP3_CONFIG"


def _err(*lines: str, stream: TextIO | None = None) -> None:
    out = stream if stream is not None else sys.stderr
    for line in lines:
        print(mask_secrets(line), file=out)


def _load(path: str) -> Config | None:
    """The validated config, or None after printing every problem to stderr."""
    try:
        return load_config(path)
    except ConfigError as exc:
        _err(f"hip3: invalid configuration {path}:", *(f"  {p}" for p in exc.problems))
        return None


def mainnet_refusal(cfg: Config, *, mainnet_confirmed: bool) -> str | None:
    """Why the bot must not start, or None. Trading on mainnet needs --mainnet on the command line."""
    if cfg.is_trading and cfg.is_mainnet and not mainnet_confirmed:
        return (
            'refusing to start: mode = "trading" on mainnet places real orders with real money; '
            "add --mainnet to the command line to confirm"
        )
    return None


def run_with_config(
    config_path: str | None, *, mainnet_confirmed: bool, log_format: str | None = None
) -> int:
    """Validate, check the key, then hand over to `hip3.service.app.run_bot` under trio."""
    if not config_path:
        _err(f"hip3: no config file: pass --config PATH or set {CONFIG_ENV_VAR}")
        return EXIT_USAGE
    cfg = _load(config_path)
    if cfg is None:
        return EXIT_USAGE
    refusal = mainnet_refusal(cfg, mainnet_confirmed=mainnet_confirmed)
    if refusal is not None:
        _err(f"hip3: {refusal}")
        return EXIT_USAGE
    if cfg.is_trading:
        try:
            load_signing_key(cfg)
        except KeyLoadError as exc:
            _err(f"hip3: {exc}")
            return EXIT_USAGE

    from hip3.service.logs import setup_logging

    setup_logging(cfg.logging.level, log_format=log_format or cfg.logging.effective_format)

    import trio

    from hip3.service.app import run_bot  # lazy: nothing above needs the trading stack

    try:
        run = functools.partial(run_bot, cfg, mainnet_confirmed=mainnet_confirmed)
        if live_status_wanted(log_format or cfg.logging.effective_format):
            from hip3.service.live_status import run_with_live_status

            return trio.run(run_with_live_status, run)
        return trio.run(run)
    except KeyboardInterrupt:
        _err("hip3: interrupted")
        return 130
    except Exception:
        # A task died: log the traceback through the redacting handler (not Python's default
        # printer) and exit non-zero so systemd restarts the bot.
        logging.getLogger("hip3").critical("hip3 stopped by an unexpected error", exc_info=True)
        return 1


def live_status_wanted(log_format: str) -> bool:
    """The refreshing status table only for a person at a terminal reading text logs."""
    from hip3.service.logs import resolve_format

    return sys.stderr.isatty() and resolve_format(log_format, sys.stderr) == "text"


def _key_status(cfg: Config) -> tuple[str, str | None]:
    """A comment line describing the signing key, and a problem if trading can't get one."""
    try:
        key = load_signing_key(cfg)
    except KeyLoadError as exc:
        if cfg.is_trading:
            return f"# signing key: unavailable ({exc})", str(exc)
        return f"# signing key: not loaded (not needed in observation mode): {exc}", None
    return f"# signing key: from {key.source}, signer address {key.address}", None


def check_config(path: str) -> int:
    cfg = _load(path)
    if cfg is None:
        return EXIT_USAGE
    status, problem = _key_status(cfg)
    # A key pasted into any value is shown masked, never as given.
    print(mask_secrets(f"# effective configuration of {path} (defaults filled in)"))
    print(mask_secrets(status))
    print(mask_secrets(config_to_text(cfg)), end="")
    for line in unusual_values(cfg):
        _err(f"hip3: warning: {line}")
    if problem is not None:
        _err(f"hip3: invalid configuration {path}:", f"  {problem}")
        return EXIT_USAGE
    refusal = mainnet_refusal(cfg, mainnet_confirmed=False)
    if refusal is not None:
        print("# note: trading on mainnet; `hip3 run` will require --mainnet")
    return EXIT_OK


def reset_hard_stop(path: str) -> int:
    cfg = _load(path)
    if cfg is None:
        return EXIT_USAGE
    state_file = Path(cfg.hard_stop.state_file)
    running = running_instances(state_file.parent)
    if running:
        # A running bot keeps its latch in memory and would write it back: stop it first.
        _err(f"hip3: refusing to reset the hard stop while hip3 runs: {'; '.join(running)}; stop it first")
        return EXIT_USAGE
    try:
        previous = state_file.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        print(f"hard stop is not latched: no state file at {state_file} (nothing to do)")
        return EXIT_OK
    except OSError as exc:
        _err(f"hip3: cannot read hard-stop state {state_file}: {exc.strerror}")
        return EXIT_USAGE
    try:
        state_file.unlink()
    except OSError as exc:
        _err(f"hip3: cannot remove hard-stop state {state_file}: {exc.strerror}")
        return EXIT_USAGE
    print(f"removed hard-stop state {state_file}; the bot will start unlatched")
    print(f"previous state: {previous.strip()[:2000]}")
    return EXIT_OK


JOURNAL_QUESTIONS = ("orders", "fills", "trips", "pnl", "rejects", "corrections", "hard-stops", "restarts")


def journal_answer(path: str, question: str, *, limit: int, as_csv: bool) -> int:
    from hip3.service.journal_report import ReportError, answer

    if limit <= 0:
        _err(f"hip3: --limit must be > 0, got {limit}")
        return EXIT_USAGE
    try:
        print(answer(Path(path), question, limit=limit, as_csv=as_csv), end="")
    except ReportError as exc:
        _err(f"hip3: {exc}")
        return EXIT_USAGE
    return EXIT_OK


def record_command(
    config_path: str | None,
    out: str,
    *,
    seconds: float | None,
    max_mb: float,
    min_free_mb: float,
    trades: bool,
    l2book: bool,
    log_format: str | None,
) -> int:
    """`hip3 record`: market-data frames into OUT (no key needed: it places no orders)."""
    if not config_path:
        _err(f"hip3: no config file: pass --config PATH or set {CONFIG_ENV_VAR}")
        return EXIT_USAGE
    if max_mb <= 0 or min_free_mb < 0 or (seconds is not None and seconds <= 0):
        _err("hip3: --max-mb must be > 0, --min-free-mb >= 0 and --seconds > 0")
        return EXIT_USAGE
    cfg = _load(config_path)
    if cfg is None:
        return EXIT_USAGE
    from hip3.service.logs import setup_logging

    setup_logging(cfg.logging.level, log_format=log_format or cfg.logging.effective_format)
    import trio

    from hip3.service.record import record

    return trio.run(
        functools.partial(
            record,
            cfg,
            Path(out),
            seconds=seconds,
            max_bytes=int(max_mb * 1e6),
            min_free_bytes=int(min_free_mb * 1e6),
            trades=trades,
            l2book=l2book,
        )
    )


def report_command(journal: str, out: str) -> int:
    """`hip3 report`: one self-contained HTML page about a journal."""
    try:
        from hip3.service.report import ReportError, write_report
    except ModuleNotFoundError as exc:
        _err(f"hip3: `hip3 report` needs {exc.name}: pip install 'hip3[report]'")
        return EXIT_USAGE
    try:
        page = write_report(Path(journal), Path(out))
    except ReportError as exc:
        _err(f"hip3: {exc}")
        return EXIT_USAGE
    print(page)
    return EXIT_OK


def _delegate(name: str, rest: list[str]) -> int:
    """`hip3 sim ...` -> hip3.sim.cli.main(rest); `hip3 demo ...` -> hip3.service.demo.main(rest)."""
    module_name = {"sim": "hip3.sim.cli", "replay": "hip3.replay.cli"}.get(name, "hip3.service.demo")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not module_name.startswith(exc.name):
            raise
        _err(f"hip3: `hip3 {name}` is not available ({module_name} is not installed)")
        return EXIT_USAGE
    result = module.main(rest)
    return int(result or 0)


def add_log_format_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-format",
        choices=("json", "text", "auto"),
        default=None,
        help="log lines as JSON, text, or auto: text on a terminal, JSON otherwise "
        "(default: [logging] format, itself auto)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hip3", description="Hyperliquid HIP-3 oracle-dislocation taker (Trio)."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    default_config = os.environ.get(CONFIG_ENV_VAR)

    run = commands.add_parser("run", help="run the bot")
    run.add_argument(
        "--config", default=default_config, help=f"TOML config file (default: ${CONFIG_ENV_VAR})"
    )
    run.add_argument(
        "--mainnet", action="store_true", help='confirm mode = "trading" on mainnet (real money)'
    )
    add_log_format_argument(run)

    check = commands.add_parser(
        "check-config", help="validate a config and print the effective values (secrets masked)"
    )
    check.add_argument("path", help="TOML config file")

    reset = commands.add_parser("reset-hard-stop", help="remove the latched hard-stop state file")
    reset.add_argument(
        "--config", default=default_config, help="TOML config file naming hard_stop.state_file"
    )

    journal = commands.add_parser(
        "journal", help="answer questions from a journal file (orders, fills, trips, pnl, ...)"
    )
    journal.add_argument("path", help="the journal file ([journal] path)")
    journal.add_argument("question", choices=JOURNAL_QUESTIONS, help="what to show")
    journal.add_argument("--limit", type=int, default=50, help="at most this many rows (newest)")
    journal.add_argument("--csv", action="store_true", help="CSV on stdout instead of a table")

    rec = commands.add_parser(
        "record", help="record the market-data frames of the configured markets (for replay and the sim)"
    )
    rec.add_argument("--config", default=default_config, help="TOML config file (network and markets)")
    rec.add_argument("--out", required=True, help="folder for frames-YYYY-MM-DD.jsonl.gz (one per UTC day)")
    rec.add_argument("--seconds", type=float, default=None, help="stop by itself after this long")
    rec.add_argument(
        "--max-mb", type=float, default=10_000, help="stop when the folder's recordings exceed this"
    )
    rec.add_argument("--min-free-mb", type=float, default=1_000, help="stop when the disk has less free")
    rec.add_argument("--trades", action="store_true", help="also record the trades channel")
    rec.add_argument("--l2book", action="store_true", help="also record l2Book (much larger)")
    add_log_format_argument(rec)

    rep = commands.add_parser("report", help="write an HTML report (plots and tables) of a journal")
    rep.add_argument("journal", help="a journal file (live or replay)")
    rep.add_argument("--out", required=True, help="folder to write report.html into")

    commands.add_parser("sim", help="run the local exchange simulator (hip3 sim --help)", add_help=False)
    commands.add_parser("demo", help="run the demo (hip3 demo --help)", add_help=False)
    commands.add_parser(
        "replay", help="replay a recording through the bot's rules (hip3 replay --help)", add_help=False
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    # sim/demo own their arguments; hand them over untouched
    if args_list and args_list[0] in ("sim", "demo", "replay"):
        return _delegate(args_list[0], args_list[1:])
    try:
        args = _parser().parse_args(args_list)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    match args.command:
        case "run":
            return run_with_config(args.config, mainnet_confirmed=args.mainnet, log_format=args.log_format)
        case "check-config":
            return check_config(args.path)
        case "reset-hard-stop":
            if not args.config:
                _err(f"hip3: no config file: pass --config PATH or set {CONFIG_ENV_VAR}")
                return EXIT_USAGE
            return reset_hard_stop(args.config)
        case "journal":
            return journal_answer(args.path, args.question, limit=args.limit, as_csv=args.csv)
        case "report":
            return report_command(args.journal, args.out)
        case "record":
            return record_command(
                args.config,
                args.out,
                seconds=args.seconds,
                max_mb=args.max_mb,
                min_free_mb=args.min_free_mb,
                trades=args.trades,
                l2book=args.l2book,
                log_format=args.log_format,
            )
    return EXIT_USAGE


__all__ = ["ENV_VAR", "check_config", "main", "mainnet_refusal", "reset_hard_stop", "run_with_config"]


if __name__ == "__main__":
    sys.exit(main())
