"""READY transitions: every condition needed, disconnect clears the session, transitions reported once."""

from __future__ import annotations

from hip3.core import MarketKey
from hip3.market.ready import ReadyState

GOLD = MarketKey("xyz", "GOLD", 110002)
NVDA = MarketKey("xyz", "NVDA", 110003)
TSLA = MarketKey("xyz", "TSLA", 110001)
MARKETS = [TSLA, GOLD, NVDA]


def all_market_data(ready: ReadyState) -> list[bool]:
    changes = []
    for m in MARKETS:
        changes.append(ready.on_bbo(m))
        changes.append(ready.on_ctx(m))
    return changes


def bring_up(ready: ReadyState) -> None:
    ready.on_positions_synced()
    ready.on_connected()
    ready.on_caught_up()
    ready.on_ack("userFills")
    ready.on_ack("orderUpdates")
    all_market_data(ready)


def test_starts_not_ready_and_says_why() -> None:
    ready = ReadyState(MARKETS)
    assert not ready.is_ready
    assert ready.why_not() == (
        "not connected; waiting for market data: xyz:GOLD, xyz:NVDA, xyz:TSLA; userFills not acked; "
        "orderUpdates not acked; missed fills not caught up; positions not synced"
    )


def test_ready_when_everything_is_in_and_the_last_step_reports_the_change() -> None:
    ready = ReadyState(MARKETS)
    assert not ready.on_positions_synced()
    assert not ready.on_connected()
    assert not ready.on_caught_up()
    assert not ready.on_ack("userFills")
    assert not ready.on_ack("orderUpdates")
    assert ready.why_not() == "waiting for market data: xyz:GOLD, xyz:NVDA, xyz:TSLA"
    changes = all_market_data(ready)
    assert changes == [False, False, False, False, False, True]  # only the last context flips READY
    assert ready.is_ready
    assert ready.why_not() == "ready"


def test_bbo_alone_is_not_market_data() -> None:
    ready = ReadyState([TSLA], trading=False)
    ready.on_connected()
    ready.on_bbo(TSLA)
    assert not ready.is_ready
    assert ready.why_not() == "waiting for market data: xyz:TSLA"
    assert ready.on_ctx(TSLA)
    assert ready.is_ready


def test_every_market_needs_data() -> None:
    ready = ReadyState(MARKETS)
    bring_up(ready)
    ready.on_disconnected()
    ready.on_connected()
    ready.on_caught_up()
    ready.on_ack("userFills")
    ready.on_ack("orderUpdates")
    ready.on_bbo(TSLA)
    ready.on_ctx(TSLA)
    ready.on_ctx(GOLD)
    assert ready.why_not() == "waiting for market data: xyz:GOLD, xyz:NVDA"


def test_user_channel_acks_are_needed_in_trading_mode() -> None:
    ready = ReadyState(MARKETS)
    ready.on_positions_synced()
    ready.on_connected()
    ready.on_caught_up()
    all_market_data(ready)
    ready.on_ack("bbo")  # market-channel acks don't count
    ready.on_ack("orderUpdates")
    assert ready.why_not() == "userFills not acked"
    assert ready.on_ack("userFills")
    assert not ready.on_ack("userFills")  # repeated: no change


def test_observation_mode_needs_only_connection_and_market_data() -> None:
    ready = ReadyState(MARKETS, trading=False)
    assert not ready.on_connected()
    assert all_market_data(ready)[-1]
    assert ready.is_ready


def test_disconnect_blocks_until_ready_again() -> None:
    ready = ReadyState(MARKETS)
    bring_up(ready)
    assert ready.is_ready
    assert ready.on_disconnected()  # reported once
    assert not ready.on_disconnected()
    assert not ready.is_ready
    assert ready.why_not() == (
        "not connected; waiting for market data: xyz:GOLD, xyz:NVDA, xyz:TSLA; userFills not acked; "
        "orderUpdates not acked; missed fills not caught up"
    )  # the startup position sync is not undone by a disconnect
    assert not ready.on_connected()
    ready.on_ack("userFills")
    ready.on_ack("orderUpdates")
    all_market_data(ready)
    assert ready.why_not() == "missed fills not caught up"
    assert ready.on_caught_up()
    assert ready.is_ready


def test_reconnect_without_a_disconnect_event_still_starts_over() -> None:
    ready = ReadyState(MARKETS)
    bring_up(ready)
    assert ready.on_connected()  # data and acks from the old connection no longer count
    assert not ready.is_ready


def test_positions_must_be_synced_at_startup() -> None:
    ready = ReadyState(MARKETS)
    ready.on_connected()
    ready.on_caught_up()
    ready.on_ack("userFills")
    ready.on_ack("orderUpdates")
    all_market_data(ready)
    assert ready.why_not() == "positions not synced"
    assert ready.on_positions_synced()


def test_unknown_markets_are_ignored() -> None:
    ready = ReadyState([TSLA], trading=False)
    ready.on_connected()
    other = MarketKey("xyz", "AAPL", 110009)
    assert not ready.on_bbo(other) and not ready.on_ctx(other)
    assert not ready.is_ready


def test_long_lists_of_missing_markets_are_summarised() -> None:
    markets = [MarketKey("xyz", f"M{i:02d}", 110000 + i) for i in range(42)]
    ready = ReadyState(markets, trading=False)
    ready.on_connected()
    assert (
        ready.why_not()
        == "waiting for market data: xyz:M00, xyz:M01, xyz:M02, xyz:M03, xyz:M04, xyz:M05 and 36 more"
    )
