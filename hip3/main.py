"""`python -m hip3.main --config PATH [--mainnet]`: run the bot (same as `hip3 run`)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from hip3.service.cli import CONFIG_ENV_VAR, EXIT_USAGE, add_log_format_argument, run_with_config


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hip3.main", description="Run the hip3 bot.")
    parser.add_argument(
        "--config",
        default=os.environ.get(CONFIG_ENV_VAR),
        help=f"TOML config file (default: ${CONFIG_ENV_VAR})",
    )
    parser.add_argument(
        "--mainnet", action="store_true", help='confirm mode = "trading" on mainnet (real money)'
    )
    add_log_format_argument(parser)
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    return run_with_config(args.config, mainnet_confirmed=args.mainnet, log_format=args.log_format)


if __name__ == "__main__":
    sys.exit(main())
