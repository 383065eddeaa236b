"""The metrics endpoint's address setting and its small HTTP server (the scrape itself is tested end to end
in tests/e2e/test_metrics.py)."""

from __future__ import annotations

import pytest
import trio
from prometheus_client import CollectorRegistry, Counter

from hip3.histogram import Histogram
from hip3.service.config import ConfigError, config_from_mapping
from hip3.service.config_schema import parse_listen
from hip3.service.metrics import MAX_REQUEST_BYTES, serve_metrics


def test_listen_forms() -> None:
    assert parse_listen("") is None
    assert parse_listen("9464") == ("127.0.0.1", 9464)  # a bare port stays on loopback
    assert parse_listen("0.0.0.0:9464") == ("0.0.0.0", 9464)
    assert parse_listen("[::1]:9464") == ("::1", 9464)
    for bad in ("localhost:http", ":9464", "99999", "127.0.0.1:"):
        with pytest.raises(ValueError):
            parse_listen(bad)


def test_a_bad_listen_names_the_key() -> None:
    with pytest.raises(ConfigError) as info:
        config_from_mapping({"metrics": {"listen": "localhost:http"}})
    assert any(p.startswith("metrics.listen: ") for p in info.value.problems), info.value.problems
    assert config_from_mapping({}).metrics.listen == ""  # off unless asked for


def test_histogram_buckets_are_cumulative_upper_bounds() -> None:
    h = Histogram((0.01, 0.1, 1.0))
    for v in (0.005, 0.01, 0.05, 0.5, 3.0):
        h.observe(v)
    assert h.cumulative() == [(0.01, 2), (0.1, 3), (1.0, 4), (float("inf"), 5)]
    assert h.count == 5 and h.sum == pytest.approx(3.565)


async def request(port: int, raw: bytes) -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(raw)
        data = b""
        with trio.fail_after(5):
            while chunk := await stream.receive_some(65536):
                data += chunk
    return data


async def test_server_answers_get_head_and_refuses_the_rest() -> None:
    registry = CollectorRegistry()
    Counter("hip3_test_things", "things", registry=registry).inc(3)
    async with trio.open_nursery() as nursery:
        host, port = await nursery.start(serve_metrics, registry, "127.0.0.1", 0)
        assert host == "127.0.0.1" and port > 0
        got = await request(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        head, _, body = got.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.0 200 OK")
        assert b"hip3_test_things_total 3.0" in body
        head_only = await request(port, b"HEAD /metrics HTTP/1.1\r\n\r\n")
        assert head_only.endswith(b"\r\n\r\n") and f"Content-Length: {len(body)}".encode() in head_only
        assert (await request(port, b"POST /metrics HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.0 405")
        assert (await request(port, b"GET /admin HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.0 404")
        # an oversized request head is dropped without an answer (closed, or reset over unread data)
        try:
            answer = await request(port, b"GET /" + b"x" * (2 * MAX_REQUEST_BYTES))
        except trio.BrokenResourceError:
            answer = b""
        assert answer == b""
        # and the server still answers afterwards
        assert (await request(port, b"GET /metrics HTTP/1.0\r\n\r\n")).startswith(b"HTTP/1.0 200 OK")
        nursery.cancel_scope.cancel()
