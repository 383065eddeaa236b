"""Secrets never shown (issue 12.8): a key pasted into the config, in any form, is masked by
check-config and by `hip3 run`; credentials in URLs never reach the log; the key file must be the
running user's own regular file, opened once without following a symlink, checked on what was
opened."""

from __future__ import annotations

import io
import logging
import os
import secrets
import stat
from pathlib import Path

import pytest
import trio

from hip3.service import cli
from hip3.service.keys import KeyLoadError, read_key_file
from hip3.service.logs import _clear_secrets_for_tests, setup_logging

ADDRESS = "0x" + "ab" * 20


@pytest.fixture(autouse=True)
def _fresh_secrets() -> None:
    _clear_secrets_for_tests()  # nothing registered: masking must not rely on a loaded key


def fresh_key() -> str:
    return "0x" + secrets.token_hex(32)


def forms_of(key: str) -> list[str]:
    digits = key[2:]
    return [digits.lower(), digits.upper(), str(int(digits, 16))]


def assert_nowhere(key: str, text: str) -> None:
    for form in forms_of(key):
        assert form not in text and form.lower() not in text.lower(), "the key was shown"


def config_file(tmp_path: Path, key_file_line: str, mode: str = "trading") -> Path:
    path = tmp_path / "hip3.toml"
    path.write_text(
        f'mode = "{mode}"\n[network]\nname = "testnet"\n[account]\naddress = "{ADDRESS}"\n{key_file_line}\n'
    )
    return path


@pytest.mark.parametrize(
    ("quote", "prefix"), [('"', "0x"), ("", "0x"), ('"', "")]
)  # unquoted 0x…: an integer
def test_check_config_masks_a_key_pasted_as_key_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], quote: str, prefix: str
) -> None:
    key = fresh_key()
    value = prefix + key[2:]
    path = config_file(tmp_path, f"key_file = {quote}{value}{quote}")
    code = cli.main(["check-config", str(path)])
    out = capsys.readouterr()
    assert code == 2
    assert_nowhere(key, out.out + out.err)
    assert "account.key_file" in out.err
    assert "looks like a private key" in out.out + out.err


@pytest.mark.parametrize("quote", ['"', ""])
def test_run_masks_a_key_pasted_as_key_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], quote: str
) -> None:
    key = fresh_key()
    path = config_file(tmp_path, f"key_file = {quote}{key}{quote}")
    code = cli.main(["run", "--config", str(path)])
    out = capsys.readouterr()
    assert code == 2
    assert_nowhere(key, out.out + out.err)
    assert "account.key_file" in out.err


def test_a_key_pasted_anywhere_in_the_config_is_masked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = fresh_key()
    path = tmp_path / "hip3.toml"
    path.write_text(f'mode = "observation"\n[journal]\npath = "{key}"\n[markets]\ncoins = ["{key[2:]}"]\n')
    cli.main(["check-config", str(path)])
    out = capsys.readouterr()
    assert_nowhere(key, out.out + out.err)


# ---------------------------------------------------------------------------------------------
# URLs


async def test_ws_url_credentials_never_reach_the_log(autojump_clock: trio.testing.MockClock) -> None:
    from hip3.hyperliquid.ws import open_ws_session

    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nothing listens: every connect is refused, every attempt logged
    url = f"ws://trader:hunter2secret@127.0.0.1:{port}/ws?token=tok3nvalue&x=1"
    written = io.StringIO()
    handler = setup_logging("DEBUG", stream=written)  # the bot's own logging, at its most verbose
    try:
        with trio.move_on_after(5):
            async with open_ws_session(url, backoff_initial=0.5, backoff_max=1):
                await trio.sleep(10)
    finally:
        logging.getLogger().removeHandler(handler)
    text = written.getvalue()
    assert "reconnecting" in text
    assert "hunter2secret" not in text and "tok3nvalue" not in text
    assert f"127.0.0.1:{port}/ws" in text


# ---------------------------------------------------------------------------------------------
# The key file


def write_key(path: Path, key: str, mode: int = 0o600) -> Path:
    path.write_text(key + "\n")
    os.chmod(path, mode)
    return path


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the file to another user")
def test_a_key_file_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    path = write_key(tmp_path / "key", fresh_key())
    os.chown(path, 65534, 65534)
    with pytest.raises(KeyLoadError, match="owned by uid 65534"):
        read_key_file(path)


def test_a_key_file_reached_through_a_symlink_is_refused(tmp_path: Path) -> None:
    real = write_key(tmp_path / "real.key", fresh_key())
    link = tmp_path / "key"
    link.symlink_to(real)
    with pytest.raises(KeyLoadError, match="symbolic link"):
        read_key_file(link)


def test_the_key_file_is_opened_once_and_checked_on_the_descriptor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = fresh_key()
    path = write_key(tmp_path / "key", key)
    opened: list[int] = []
    real_open = os.open

    def recording_open(p: object, flags: int, *args: object) -> int:
        opened.append(flags)
        return real_open(p, flags, *args)  # type: ignore[arg-type]

    def no_path_stat(*args: object, **kwargs: object) -> os.stat_result:
        raise AssertionError("checked a path, not the opened file")

    with monkeypatch.context() as patched:
        patched.setattr(os, "open", recording_open)
        patched.setattr(os, "stat", no_path_stat)
        patched.setattr(os, "lstat", no_path_stat)
        text = read_key_file(path)
    assert text.strip() == key
    assert len(opened) == 1 and opened[0] & os.O_NOFOLLOW


def test_a_fifo_is_refused_without_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "key"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(KeyLoadError, match="not a regular file"):
        read_key_file(fifo)
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


@pytest.mark.parametrize("json_lines", [False, True])
def test_a_key_like_value_in_any_log_line_is_masked(json_lines: bool) -> None:
    key = fresh_key()  # never registered: e.g. pasted into journal.path and logged as a path
    written = io.StringIO()
    handler = setup_logging("INFO", json_lines, stream=written)
    try:
        log = logging.getLogger("hip3.test")
        log.info("journal at %s for %s", key, ADDRESS)
        log.info("as an integer: %d", int(key, 16))
        try:
            raise ValueError(f"bad path {key[2:].upper()}")
        except ValueError:
            log.exception("failed")
    finally:
        logging.getLogger().removeHandler(handler)
    text = written.getvalue()
    assert_nowhere(key, text)
    assert text.count("looks like a private key") >= 3
    assert ADDRESS in text  # addresses (40 hex digits) stay readable


def test_masking_finds_keys_in_every_form_and_leaves_the_rest() -> None:
    from hip3.service.masking import MASK, mask_secrets

    key = fresh_key()
    for text in (key, key.upper(), key[2:], f"/etc/hip3/{key}.key", f"x={int(key, 16)}", f"path{key[2:]}"):
        masked = mask_secrets(text)
        assert MASK in masked
        assert_nowhere(key, masked)
    plain = f"account {ADDRESS} oid 9000000123 px 432.15 cloid 0x{'0123456789abcdef' * 2}"
    assert mask_secrets(plain) == plain
