"""`hip3 sim [--config PATH] [--port N] [--seed N] [--watch S]`: run the simulator alone."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from decimal import Decimal

import attrs
import trio

from hip3.core import Side
from hip3.service.logs import setup_logging
from hip3.sim.accounts import create_throwaway_account
from hip3.sim.config import SimConfig, SimConfigError, load_sim_config
from hip3.sim.engine import Engine
from hip3.sim.server import Sim, open_sim


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hip3 sim", description="Run a Hyperliquid-compatible HIP-3 exchange on loopback."
    )
    parser.add_argument("--config", metavar="PATH", help="simulator TOML (default: the shipped markets.toml)")
    parser.add_argument("--port", type=int, help="port to listen on (default: from the config, 3001)")
    parser.add_argument("--seed", type=int, help="market model seed (default: from the config)")
    parser.add_argument(
        "--replay",
        nargs="+",
        metavar="FILE",
        help="serve these recordings (gzip JSON lines, oldest first) as market data instead of the model",
    )
    parser.add_argument(
        "--speed", type=float, default=1.0, help="replay this many times faster than recorded (default 1)"
    )
    parser.add_argument(
        "--mainnet-signatures",
        action="store_true",
        help="accept mainnet-signed actions instead of testnet-signed ones (the default)",
    )
    parser.add_argument(
        "--watch", type=float, default=0.0, metavar="S", help="print oracle/bbo per market every S seconds"
    )
    return parser


def market_lines(engine: Engine) -> list[str]:
    """One line per market: oracle, mark, best bid/ask and how far the book sits from the oracle."""
    lines = []
    for coin, market in engine.markets.items():
        bid, ask = market.best(Side.BUY), market.best(Side.SELL)
        oracle = market.oracle_px
        edges = []
        if ask is not None:
            edges.append((oracle - ask.limit_px) / oracle * 10000)
        if bid is not None:
            edges.append((bid.limit_px - oracle) / oracle * 10000)
        edge = max(edges) if edges else Decimal(0)
        lines.append(
            f"{coin:<14} oracle {oracle:>10} mark {market.mark_px:>10} "
            f"bid {bid.limit_px if bid else '-':>10} ask {ask.limit_px if ask else '-':>10} "
            f"edge {edge:+6.1f} bps"
        )
    return lines


def _banner(sim: Sim, lines: list[str]) -> str:
    return "\n".join(
        [
            f"hip3 sim: HIP-3 dex {sim.config.dex!r} (perp dex index {sim.config.perp_dex_index}), "
            f"{len(sim.config.markets)} markets, seed {sim.config.seed}, "
            f"{'mainnet' if sim.config.is_mainnet else 'testnet'}-signed actions",
            f"  info      {sim.info_url}",
            f"  exchange  {sim.exchange_url}",
            f"  websocket {sim.ws_url}",
            *(
                [f"  replaying {', '.join(sim.config.replay_paths)} at x{sim.config.replay_speed:g}"]
                if sim.config.replay_paths
                else []
            ),
            *lines,
            "Ctrl-C to stop.",
        ]
    )


async def _run(config: SimConfig, port: int, watch: float) -> None:
    # Ctrl-C / SIGTERM cancel the run cleanly instead of surfacing as KeyboardInterrupt mid-task.
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def stop_on_signal() -> None:
                async for _ in signals:
                    nursery.cancel_scope.cancel()
                    return

            nursery.start_soon(stop_on_signal)
            await _serve(config, port, watch)


async def _serve(config: SimConfig, port: int, watch: float) -> None:
    async with open_sim(config, port=port) as sim:
        lines: list[str] = []
        if config.accounts:
            for acct in config.accounts:
                agents = ", ".join(acct.agents) or "(none: sign with the master key)"
                lines.append(f"  account   master {acct.address} balance {acct.balance} agents {agents}")
        else:
            throwaway = create_throwaway_account(sim.engine)
            lines += [
                f"  master    {throwaway.master}   (query info / subscribe with this address; 10000 USDC)",
                f"  agent     {throwaway.agent}   (approved API wallet: sign with it)",
                f"  agent key {throwaway.agent_key}   THROWAWAY key generated for this run only",
            ]
        print(_banner(sim, lines), flush=True)
        if watch > 0:
            while True:
                await trio.sleep(watch)
                print("\n".join(market_lines(sim.engine)), "", sep="\n", flush=True)
        await trio.sleep_forever()


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        config = load_sim_config(args.config)
    except SimConfigError as exc:
        print(f"hip3 sim: {exc}", file=sys.stderr)
        return 2
    if args.seed is not None:
        config = config.with_seed(args.seed)
    if args.mainnet_signatures:
        config = attrs.evolve(config, is_mainnet=True)
    if args.replay:
        missing = [p for p in args.replay if not os.path.isfile(p)]
        if missing:
            print(f"hip3 sim: --replay: no such file: {missing[0]}", file=sys.stderr)
            return 2
        try:
            config = config.with_replay(args.replay, args.speed)
        except SimConfigError as exc:
            print(f"hip3 sim: --speed: {exc}", file=sys.stderr)
            return 2
    port = config.port if args.port is None else args.port
    if not 0 <= port <= 65535:
        print(f"hip3 sim: --port: expected 0..65535, got {port}", file=sys.stderr)
        return 2
    setup_logging("INFO")
    try:
        trio.run(_run, config, port, args.watch)
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"hip3 sim: cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print("hip3 sim: stopped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
