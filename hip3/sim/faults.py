"""Fault switches: each can be set in the config file (`[faults]`) and flipped at run time.

`Sim.faults` is one mutable `Faults` object read by the server at the moment it needs it, so a test
can change a switch between two requests and the next request sees it.
"""

from __future__ import annotations

import random

from attrs import define, field


@define
class Faults:
    #: Every userFills / user-channel message is sent twice.
    duplicate_user_fills: bool = False
    #: Fills and order updates are published before the post/HTTP response is sent.
    fills_before_response: bool = False
    #: Seconds to hold an action's response (HTTP /exchange and WS post) after it executed.
    post_response_delay: float = 0.0
    #: WS post action responses are never sent; the action still executes.
    drop_post_responses: bool = False
    #: Seconds an action waits before it executes (a slow path to the validators): an entry whose
    #: expiresAfter passes meanwhile is refused with "Action already expired".
    action_delay: float = 0.0
    #: Close every WS connection once this many seconds after the simulator started (0 = never).
    disconnect_at: float = 0.0
    #: Random disconnects per connection per minute (0 = never).
    disconnect_rate: float = 0.0
    #: clearinghouseState is computed when asked but delivered this many seconds later.
    stale_clearinghouse_delay: float = 0.0
    #: Coins (without dex prefix) whose bbo, l2Book and activeAssetCtx streams stop.
    stalled_markets: set[str] = field(factory=set)
    #: The exchange clock jumps back by this many ms (fill times, bbo times, statusTimestamp).
    timestamps_backwards_ms: int = 0
    #: Probability per stream frame of sending a malformed frame just before it.
    malformed_frame_rate: float = 0.0
    #: Probability that a POST /info answers HTTP 429.
    info_429_rate: float = 0.0
    #: The next N POST /info requests answer HTTP 429.
    info_429_next: int = 0
    #: Source of randomness for the random faults (seeded from the sim seed).
    rng: random.Random = field(factory=lambda: random.Random(0), repr=False, eq=False)

    def take_info_429(self) -> bool:
        """Decide whether this /info request is refused with 429 (consumes one of `info_429_next`)."""
        if self.info_429_next > 0:
            self.info_429_next -= 1
            return True
        return self.info_429_rate > 0 and self.rng.random() < self.info_429_rate

    def take_malformed(self) -> bool:
        return self.malformed_frame_rate > 0 and self.rng.random() < self.malformed_frame_rate

    def is_stalled(self, coin: str) -> bool:
        bare = coin.split(":", 1)[-1]
        return bare in self.stalled_markets or coin in self.stalled_markets


#: A frame that is not valid JSON, as a broken proxy or a truncated write would produce.
MALFORMED_FRAME = '{"channel":"bbo","data":{"coin":'

FAULT_NAMES = (
    "duplicate_user_fills",
    "fills_before_response",
    "post_response_delay",
    "drop_post_responses",
    "action_delay",
    "disconnect_at",
    "disconnect_rate",
    "stale_clearinghouse_delay",
    "stalled_markets",
    "timestamps_backwards_ms",
    "malformed_frame_rate",
    "info_429_rate",
    "info_429_next",
)
