"""hip3.sim — a Hyperliquid-compatible HIP-3 exchange on loopback (`hip3 sim`).

`open_sim(config)` runs it inside the caller's trio context and yields a `Sim`:

* `sim.engine` — exchange state (accounts, books, fills); `set_oracle`, `set_book`, `halt`,
  `resume_trading`, `fund`, `approve_agent`, `set_user_fees(address, cross=, add=,
  referral_discount=, staking_discount=)`.
* Fees are per asset, as on the real dex: each `[[markets]]` entry has `deployer_fee_scale` and
  `growth_mode`, served in `meta(dex)` as `deployerFeeScale` and `growthMode: "enabled"` (absent
  when off). A fill pays notional × the account's base rate (`userFees` `userCrossRate` taker,
  `userAddRate` maker, × (1 − referral discount) × (1 − staking discount)) × the asset's multiplier
  `scale + max(scale, 1)`, × 0.1 in growth mode (`hip3.sim.fees`). Defaults: TSLA, NVDA, SILVER in
  growth mode (0.9 bp taker at tier 0), GOLD, PLATINUM 9 bp, HOOD scale 0.5 (6.75 bp) with a
  structural gap (its book sits 30 bps above the oracle all the time).
* `sim.dislocations()` — the ground truth for scoring a run: a tuple of frozen
  `hip3.sim.dislocations.Dislocation` records in the order they opened, one per stretch of time
  in which a market's best ask sat below fair value (or its best bid above) by more than the
  round-trip cost. Fields: `coin`, `side` (the taker side that captures it), `opened_ms`,
  `closed_ms` (None while open; exchange ms, the clock of fills), `cost_bps` (two taker fees at
  the base rates + the exit through the caught-up book + `model.dislocation_exit_cost_bps`), `best_edge_bps` / `best_ms` / `best_px` /
  `best_sz` (the best edge, when, at what price and displayed size), `oracle_px`, `fair_px`
  (oracle shifted by the structural gap, so a persistent gap is not a dislocation), `taken`
  ((taker, size) pairs that took the stale side while it was open; `taken_by(user)`), `pulled`
  (stale quotes the makers pulled before a taker reached them); `is_open`, `duration_ms`.
  Observed once per block and after every action; nothing is recorded for a market in an
  internal-pricing session (the oracle follows the book there).
* Market truths: makers pull a stale quote before a taker's order reaches it with
  `model.stale_quote_pull_probability` (cancels run before IOCs within a block);
  `activeAssetCtx` is pushed about once a second per coin, changed or not; `bbo` once per block
  (`model.stream_tick`) when it changed; `sim.model.set_internal_pricing(on, coins=None)` (or
  `model.internal_pricing`) makes the oracle follow the book; an expired `expiresAfter` is refused
  with "Action already expired"; orders on a halted asset get "Trading is halted.".
* `sim.faults` — runtime fault switches (`hip3.sim.faults.Faults`, incl. `action_delay`: an
  action waits before it executes, so an `expiresAfter` can pass); `sim.disconnect_all()`.
* Foreign account activity: `sim.liquidate(user, coin, px=None)` (fills without a cloid, with a
  `liquidation` field, and a `user`-channel liquidation event; open orders there
  `liquidatedCanceled`), `sim.manual_close(user, coin, sz=None)` (a web-app market close, no cloid),
  `sim.foreign_order(user, coin, is_buy=, sz=, px=None, tif="Ioc", reduce_only=False, cloid=None)`
  (another client's order with its own cloid, seeded). The same and more over HTTP for a
  simulator in its own process: `POST /control` with `{"op": ...}` (`hip3.sim.ops`).
* Replay: `config.with_replay(paths, speed)` (`[replay] paths/speed`, `hip3 sim --replay FILE…
  --speed X`) serves recordings instead of the model: gzip JSON lines `{"t": ms, "frame": raw WS
  text}` or `{"t": ms, "gap": reason}` with `bbo`, `activeAssetCtx`, optional `trades`/`l2Book`,
  applied with their original spacing ÷ speed; oracle, mark and book come from them, so orders
  fill against the recorded book (`hip3.sim.replay`); `sim.replay.finished` is set at the end.
"""

from hip3.sim.accounts import ThrowawayAccount, create_throwaway_account
from hip3.sim.config import SimConfig, SimConfigError, load_sim_config
from hip3.sim.dislocations import Dislocation
from hip3.sim.engine import Engine
from hip3.sim.faults import Faults
from hip3.sim.server import Sim, open_sim

__all__ = [
    "Dislocation",
    "Engine",
    "Faults",
    "Sim",
    "SimConfig",
    "SimConfigError",
    "ThrowawayAccount",
    "create_throwaway_account",
    "load_sim_config",
    "open_sim",
]
