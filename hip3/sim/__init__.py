"""hip3.sim — a Hyperliquid-compatible HIP-3 exchange on loopback (`hip3 sim`)."""

from hip3.sim.accounts import ThrowawayAccount, create_throwaway_account
from hip3.sim.config import SimConfig, SimConfigError, load_sim_config
from hip3.sim.engine import Engine
from hip3.sim.faults import Faults
from hip3.sim.server import Sim, open_sim

__all__ = [
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
