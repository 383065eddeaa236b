"""A datagram socket standing in for systemd's notify socket (what `Type=notify` listens on)."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import trio


class NotifySocket:
    """Bound AF_UNIX datagram socket; `env` is what systemd would put into NOTIFY_SOCKET."""

    def __init__(self, sock: socket.socket, env: str) -> None:
        self.sock = sock
        self.env = env
        self.messages: list[dict[str, str]] = []

    def drain(self) -> list[dict[str, str]]:
        """Every datagram received so far and not yet drained, parsed into fields (no waiting)."""
        got: list[dict[str, str]] = []
        while True:
            try:
                data = self.sock.recv(4096)
            except BlockingIOError:
                break
            fields = dict(line.split("=", 1) for line in data.decode().split("\n"))
            got.append(fields)
        self.messages.extend(got)
        return got

    async def wait_for(self, key: str, timeout: float = 10.0, poll: float = 0.02) -> dict[str, str]:
        """The first message (already received or arriving within `timeout` s) holding `key`."""
        with trio.move_on_after(timeout):
            while True:
                self.drain()
                for message in self.messages:
                    if key in message:
                        return message
                await trio.sleep(poll)
        raise AssertionError(f"no {key} message within {timeout:g} s; got {self.messages}")

    def with_key(self, key: str) -> list[dict[str, str]]:
        self.drain()
        return [m for m in self.messages if key in m]


@contextmanager
def notify_socket(*, abstract: bool = True, directory: str = "/tmp") -> Iterator[NotifySocket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.setblocking(False)
    name = f"hip3-test-notify-{secrets.token_hex(6)}"
    path = None
    try:
        if abstract:
            sock.bind("\0" + name)
            env = "@" + name
        else:
            # A short absolute path: AF_UNIX paths are limited to 107 bytes, pytest's tmp_path can be longer.
            path = f"{directory}/{name}.sock"
            sock.bind(path)
            env = path
        yield NotifySocket(sock, env)
    finally:
        sock.close()
        if path is not None:
            with suppress(FileNotFoundError):
                os.unlink(path)
