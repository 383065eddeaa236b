from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from hip3.sim.config import SimConfig, load_sim_config
from hip3.sim.engine import Engine
from hip3.sim.server import Sim, open_sim

from .helpers import NOW_MS, SdkClient


class FakeClock:
    def __init__(self, now: int = NOW_MS) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def config() -> SimConfig:
    return load_sim_config(None)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def engine(config: SimConfig, clock: FakeClock) -> Engine:
    eng = Engine(config, clock_ms=clock)
    # A fixed, hand-checkable book: TSLA bids 100/99.9, asks 100.1/100.2/100.3.
    eng.set_oracle("TSLA", "100.1")
    eng.set_book(
        "TSLA", bids=[("100", "1"), ("99.9", "2")], asks=[("100.1", "0.5"), ("100.2", "1"), ("100.3", "2")]
    )
    return eng


@pytest.fixture
def trader(engine: Engine) -> SdkClient:
    client = SdkClient()
    engine.fund(client.address, 10000, leverage=5)
    return client


@pytest.fixture
async def sim(config: SimConfig) -> AsyncIterator[Sim]:
    async with open_sim(config) as running:
        running.engine.set_oracle("TSLA", "100.1")
        running.engine.set_book(
            "TSLA",
            bids=[("100", "1"), ("99.9", "2")],
            asks=[("100.1", "0.5"), ("100.2", "1"), ("100.3", "2")],
        )
        yield running
