"""An in-memory WebSocket server for `open_ws_session(connect=server.connect)`.

Each client connection is a pair of unbounded trio memory channels; the test drives the server
side (`FakeServerConn`) by hand: read what the client sent, answer, close.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import trio


class FakeClosed(Exception):
    """The other side of a fake connection is gone (trio-websocket raises ConnectionClosed)."""


class FakeClientConn:
    def __init__(
        self, to_server: trio.MemorySendChannel[str], from_server: trio.MemoryReceiveChannel[str]
    ) -> None:
        self._to_server = to_server
        self._from_server = from_server

    async def send_message(self, message: str) -> None:
        try:
            await self._to_server.send(message)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise FakeClosed("send on a closed connection") from None

    async def get_message(self) -> str:
        try:
            return await self._from_server.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise FakeClosed("closed by server") from None

    def get_message_nowait(self) -> str:
        """A frame the server already sent, or trio.WouldBlock (like a socket buffer read)."""
        try:
            return self._from_server.receive_nowait()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise trio.WouldBlock from None

    async def aclose(self) -> None:
        await self._to_server.aclose()
        await self._from_server.aclose()


class FakeServerConn:
    def __init__(
        self, to_client: trio.MemorySendChannel[str], from_client: trio.MemoryReceiveChannel[str]
    ) -> None:
        self._to_client = to_client
        self._from_client = from_client
        self.opened_at = trio.current_time()
        self.closed_by_client = False
        #: (trio time, decoded message) for every client message read so far.
        self.received: list[tuple[float, Any]] = []

    async def send(self, message: Any) -> None:
        """Send a dict as JSON, or a str as-is (the greeting, garbage)."""
        text = message if isinstance(message, str) else orjson.dumps(message).decode()
        try:
            await self._to_client.send(text)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise FakeClosed("client is gone") from None

    async def receive(self) -> Any:
        """Next client message, decoded; raises FakeClosed when the client closed the connection."""
        try:
            text = await self._from_client.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            self.closed_by_client = True
            raise FakeClosed("closed by client") from None
        message = orjson.loads(text)
        self.received.append((trio.current_time(), message))
        return message

    async def receive_kind(self, method: str) -> Any:
        """Skip client messages until one with this `method` (e.g. skip pings)."""
        while True:
            message = await self.receive()
            if message.get("method") == method:
                return message

    async def close(self) -> None:
        await self._to_client.aclose()


class FakeWsServer:
    def __init__(self) -> None:
        self._accept_send, self._accept_receive = trio.open_memory_channel[FakeServerConn](math.inf)
        #: trio time of every connection attempt, refused or not.
        self.attempts: list[float] = []
        #: refuse this many upcoming connection attempts.
        self.refuse = 0
        self.refuse_forever = False

    @asynccontextmanager
    async def connect(self, url: str) -> AsyncIterator[FakeClientConn]:
        self.attempts.append(trio.current_time())
        if self.refuse_forever or self.refuse > 0:
            self.refuse = max(0, self.refuse - 1)
            raise OSError("connection refused (fake)")
        c2s_send, c2s_receive = trio.open_memory_channel[str](math.inf)
        s2c_send, s2c_receive = trio.open_memory_channel[str](math.inf)
        await self._accept_send.send(FakeServerConn(s2c_send, c2s_receive))
        client = FakeClientConn(c2s_send, s2c_receive)
        try:
            yield client
        finally:
            await client.aclose()

    async def accept(self) -> FakeServerConn:
        return await self._accept_receive.receive()
