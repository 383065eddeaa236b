"""sd_notify against a real datagram socket standing in for systemd: READY once, STATUS on change,
WATCHDOG at half the interval from the event loop (none while the loop is blocked), STOPPING."""

from __future__ import annotations

import logging
import time

import pytest
import trio
import trio.testing

from hip3.service.sdnotify import (
    MAX_STATUS_CHARS,
    Notifier,
    notifier_from_env,
    run_service_notify,
    run_watchdog,
    socket_address,
    watchdog_interval,
)

from .systemd_standin import notify_socket


def test_socket_address_forms() -> None:
    assert socket_address("@hip3/notify") == "\0hip3/notify"
    assert socket_address("/run/systemd/notify") == "/run/systemd/notify"
    with pytest.raises(ValueError, match="NOTIFY_SOCKET"):
        socket_address("vsock:2:1234")


def test_watchdog_interval_from_environment() -> None:
    assert watchdog_interval({}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}, pid=7) == 30.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "7"}, pid=7) == 30.0
    # the watchdog was asked of another process (e.g. a wrapper that started us)
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "8"}, pid=7) is None
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}, pid=7) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}, pid=7) is None


def test_silent_without_notify_socket() -> None:
    assert notifier_from_env({}) is None
    assert notifier_from_env({"NOTIFY_SOCKET": ""}) is None


@pytest.mark.parametrize("abstract", [True, False], ids=["abstract", "path"])
def test_messages_reach_the_socket(abstract: bool) -> None:
    with notify_socket(abstract=abstract) as systemd:
        notifier = notifier_from_env({"NOTIFY_SOCKET": systemd.env})
        assert notifier is not None
        assert notifier.ready("READY; signals 0\npositions []")
        assert notifier.watchdog()
        assert notifier.status("x" * 1000)
        assert notifier.stopping("stopping")
        notifier.close()
        got = systemd.drain()
    assert got[0] == {"READY": "1", "STATUS": "READY; signals 0 positions []"}
    assert got[1] == {"WATCHDOG": "1"}
    assert len(got[2]["STATUS"]) == MAX_STATUS_CHARS
    assert got[3] == {"STOPPING": "1", "STATUS": "stopping"}


def test_an_absent_systemd_is_logged_once_and_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    notifier = Notifier("\0hip3-test-nobody-listens-here")
    with caplog.at_level(logging.WARNING, logger="hip3.service.sdnotify"):
        assert not notifier.watchdog()
        assert not notifier.watchdog()
    notifier.close()
    assert len([r for r in caplog.records if "cannot send" in r.getMessage()]) == 1


async def test_ready_once_status_on_change_stopping(mock_clock: trio.testing.MockClock) -> None:
    state = {"ready": False, "status": "not ready (not connected)"}
    stopping = trio.Event()
    with notify_socket() as systemd:
        notifier = Notifier(socket_address(systemd.env))
        async with trio.open_nursery() as nursery:
            await nursery.start(
                lambda task_status: run_service_notify(
                    notifier,
                    is_ready=lambda: state["ready"],
                    status=lambda: state["status"],
                    stopping=stopping,
                    watchdog_secs=None,
                    task_status=task_status,
                )
            )

            async def step(seconds: float = 1.0) -> list[dict[str, str]]:
                mock_clock.jump(seconds)
                await trio.testing.wait_all_tasks_blocked()
                return systemd.drain()

            assert systemd.drain() == [{"STATUS": "not ready (not connected)"}]
            assert await step() == []  # unchanged: nothing sent
            state["status"] = "not ready (waiting for market data: xyz:TSLA)"
            assert await step() == [{"STATUS": "not ready (waiting for market data: xyz:TSLA)"}]
            state["ready"], state["status"] = True, "READY; signals 0"
            assert await step() == [{"READY": "1", "STATUS": "READY; signals 0"}]
            # READY is said once; a later loss of READY and its return are status lines only
            state["ready"], state["status"] = False, "not ready (not connected)"
            assert await step() == [{"STATUS": "not ready (not connected)"}]
            state["ready"], state["status"] = True, "READY; signals 1"
            assert await step() == [{"STATUS": "READY; signals 1"}]
            stopping.set()
            await trio.testing.wait_all_tasks_blocked()
            got = systemd.drain()
            assert got[0]["STOPPING"] == "1"
            # without a watchdog the task is done after STOPPING
        notifier.close()


async def test_watchdog_at_half_the_interval(mock_clock: trio.testing.MockClock) -> None:
    with notify_socket() as systemd:
        notifier = Notifier(socket_address(systemd.env))
        stopping = trio.Event()
        async with trio.open_nursery() as nursery:
            await nursery.start(
                lambda task_status: run_service_notify(
                    notifier,
                    is_ready=lambda: True,
                    status=lambda: "READY",
                    stopping=stopping,
                    watchdog_secs=4.0,
                    task_status=task_status,
                )
            )
            pings_per_second = []
            for _ in range(10):
                mock_clock.jump(1.0)
                await trio.testing.wait_all_tasks_blocked()
                pings_per_second.append(sum("WATCHDOG" in m for m in systemd.drain()))
            # the pings go on through shutdown (settling can take a while) until the task is cancelled
            stopping.set()
            await trio.testing.wait_all_tasks_blocked()
            assert systemd.with_key("STOPPING")
            for _ in range(4):
                mock_clock.jump(1.0)
                await trio.testing.wait_all_tasks_blocked()
                pings_per_second.append(sum("WATCHDOG" in m for m in systemd.drain()))
            nursery.cancel_scope.cancel()
        notifier.close()
    # one at start (drained with the first second), then one every 2 s = half of WatchdogSec=4
    assert pings_per_second == [1, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1]


async def test_no_watchdog_pings_while_the_event_loop_is_blocked() -> None:
    """The pings come from a task on the loop: a loop stuck in synchronous code sends none, so systemd
    would kill the process. (A ping thread would go on pinging here and this test would fail.)"""
    interval = 0.04  # WatchdogSec=40ms: a ping every 20 ms
    with notify_socket() as systemd:
        notifier = Notifier(socket_address(systemd.env))
        async with trio.open_nursery() as nursery:
            await nursery.start(run_watchdog, notifier, interval)
            with trio.fail_after(5):
                while len(systemd.with_key("WATCHDOG")) < 3:
                    await trio.sleep(0.01)
            # the loop blocks: a synchronous call that holds it for ~4 ping intervals
            systemd.drain()
            time.sleep(0.1)
            during_the_stall = systemd.drain()
            # the loop runs again: so do the pings
            before = len(systemd.with_key("WATCHDOG"))
            with trio.fail_after(5):
                while len(systemd.with_key("WATCHDOG")) == before:
                    await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
        notifier.close()
    assert during_the_stall == []
