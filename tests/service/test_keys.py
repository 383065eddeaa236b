"""Signing key loading and secret redaction: the key never shows up in errors, reprs or logs."""

from __future__ import annotations

import io
import logging
import os
import pickle
import secrets
from collections.abc import Iterator
from pathlib import Path

import coincurve
import orjson
import pytest
from eth_utils import keccak

from hip3.service.config import Config, config_from_text
from hip3.service.keys import ENV_VAR, KeyLoadError, SecretKey, load_signing_key, read_key_file
from hip3.service.logs import REDACTED, _clear_secrets_for_tests, register_secret, setup_logging


@pytest.fixture(autouse=True)
def _fresh_secrets() -> Iterator[None]:
    _clear_secrets_for_tests()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    _clear_secrets_for_tests()


def address_of(key_hex: str) -> str:
    """Ethereum address computed independently of eth_account: keccak(uncompressed pubkey)[-20:]."""
    public = coincurve.PrivateKey(bytes.fromhex(key_hex.removeprefix("0x"))).public_key.format(
        compressed=False
    )
    return "0x" + keccak(public[1:])[-20:].hex()


def cfg_with(**account: str) -> Config:
    lines = "".join(f'{k} = "{v}"\n' for k, v in account.items())
    return config_from_text(f"[account]\n{lines}")


def write_key(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_key_from_env() -> None:
    raw = secrets.token_hex(32)
    key = load_signing_key(cfg_with(), environ={ENV_VAR: "0x" + raw})
    assert key.hex == "0x" + raw
    assert key.address == address_of(raw)
    assert key.source == ENV_VAR


@pytest.mark.parametrize("form", ["bare", "upper", "0X", "spaces"])
def test_key_formats_accepted(form: str) -> None:
    raw = secrets.token_hex(32)
    text = {"bare": raw, "upper": "0x" + raw.upper(), "0X": "0X" + raw, "spaces": f"  0x{raw}\n"}[form]
    key = load_signing_key(cfg_with(), environ={ENV_VAR: text})
    assert key.hex == "0x" + raw and key.address == address_of(raw)


def test_key_from_file(tmp_path: Path) -> None:
    raw = secrets.token_hex(32)
    path = write_key(tmp_path / "signing.key", f"0x{raw}\n")
    key = load_signing_key(cfg_with(key_file=str(path)), environ={})
    assert key.hex == "0x" + raw and key.address == address_of(raw)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_readable_key_file_refused(tmp_path: Path, mode: int) -> None:
    raw = secrets.token_hex(32)
    path = write_key(tmp_path / "signing.key", "0x" + raw, mode)
    with pytest.raises(KeyLoadError) as info:
        load_signing_key(cfg_with(key_file=str(path)), environ={})
    message = str(info.value)
    assert str(path) in message and f"chmod 600 {path}" in message and "group/other" in message
    assert raw not in message


def test_missing_key_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(KeyLoadError, match="no such file"):
        read_key_file(tmp_path / "absent")
    with pytest.raises(KeyLoadError, match="not a regular file"):
        read_key_file(tmp_path)


def test_no_key_says_how_to_set_one() -> None:
    with pytest.raises(KeyLoadError) as info:
        load_signing_key(cfg_with(), environ={ENV_VAR: "  "})
    assert ENV_VAR in str(info.value) and "account.key_file" in str(info.value)


def test_both_sources_refused(tmp_path: Path) -> None:
    path = write_key(tmp_path / "k", "0x" + secrets.token_hex(32))
    with pytest.raises(KeyLoadError, match="use only one"):
        load_signing_key(cfg_with(key_file=str(path)), environ={ENV_VAR: "0x" + secrets.token_hex(32)})


def test_signer_address_checked() -> None:
    raw = secrets.token_hex(32)
    good = cfg_with(signer_address=address_of(raw).upper().replace("0X", "0x"))
    assert load_signing_key(good, environ={ENV_VAR: raw}).address == address_of(raw)
    other = cfg_with(signer_address="0x" + "11" * 20)
    with pytest.raises(KeyLoadError) as info:
        load_signing_key(other, environ={ENV_VAR: raw})
    assert "signer_address" in str(info.value) and raw not in str(info.value)


@pytest.mark.parametrize(
    "make",
    [
        lambda raw: "0x" + raw[:-1],  # 63 digits
        lambda raw: "0x" + raw + "a",  # 65 digits
        lambda raw: "0x" + raw[:-1] + "g",  # not hex
        lambda raw: raw[:20] + " " + raw[20:],  # broken in two
        lambda raw: "0x" + "0" * 64,  # zero is not a valid secp256k1 key
        lambda raw: "0x" + "f" * 64,  # above the curve order
    ],
)
def test_malformed_key_refused_without_echo(make, caplog: pytest.LogCaptureFixture, capsys) -> None:  # type: ignore[no-untyped-def]
    raw = secrets.token_hex(32)
    bad = make(raw)
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(KeyLoadError) as info:
            load_signing_key(cfg_with(), environ={ENV_VAR: bad})
    message = str(info.value)
    assert message.startswith(ENV_VAR + ": not a")
    body = bad.removeprefix("0x").strip()
    for fragment in (body, body[:16], body[-16:]):
        assert fragment not in message
        assert fragment not in repr(info.value)
        assert fragment not in caplog.text
    out = capsys.readouterr()
    assert body[:16] not in out.out + out.err
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_secret_key_repr_hides_key() -> None:
    raw = secrets.token_hex(32)
    key = SecretKey("0x" + raw)
    for text in (repr(key), str(key), f"{key}", f"{key!r}", repr([key]), repr({"k": key})):
        assert raw not in text and "hidden" in text and key.address in text
    with pytest.raises(TypeError):
        pickle.dumps(key)
    assert key == SecretKey(raw) and key != SecretKey(secrets.token_hex(32))


# Logging -------------------------------------------------------------------------------------------


def test_loaded_key_is_redacted_from_logs() -> None:
    stream = io.StringIO()
    setup_logging("DEBUG", json=False, stream=stream)
    raw = secrets.token_hex(32)
    load_signing_key(cfg_with(), environ={ENV_VAR: raw})  # registers the key for redaction
    log = logging.getLogger("hip3.test")
    log.info("leaked 0x%s here", raw)
    log.warning("upper %s", raw.upper())
    try:
        raise RuntimeError(f"boom {raw}")
    except RuntimeError:
        log.exception("failed")
    text = stream.getvalue()
    assert raw not in text.lower()
    assert text.count(REDACTED) == 3
    assert "hip3.test: leaked [REDACTED] here" in text


def test_plain_format_has_time_level_logger() -> None:
    stream = io.StringIO()
    setup_logging("INFO", json=False, stream=stream)
    logging.getLogger("hip3.market.feed").info("hello %d", 5)
    logging.getLogger("hip3.market.feed").debug("hidden")
    line = stream.getvalue().strip()
    assert line.endswith("INFO    hip3.market.feed: hello 5")
    assert line[:4].isdigit() and line[10] == "T" and line.split(" ")[0].endswith("Z")


def test_json_lines_with_extras_and_redaction() -> None:
    stream = io.StringIO()
    setup_logging("INFO", json=True, stream=stream)
    secret = "0x" + secrets.token_hex(32)
    register_secret(secret)
    logging.getLogger("hip3.x").info("order %s", "ok", extra={"market": "xyz:TSLA", "token": secret})
    entry = orjson.loads(stream.getvalue())
    assert entry["level"] == "INFO" and entry["logger"] == "hip3.x" and entry["msg"] == "order ok"
    assert entry["market"] == "xyz:TSLA" and entry["token"] == REDACTED
    assert "ts" in entry


def test_setup_logging_replaces_its_handler_and_rejects_bad_level() -> None:
    setup_logging("INFO", stream=io.StringIO())
    setup_logging("INFO", stream=io.StringIO())
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_hip3_handler", False)]
    assert len(ours) == 1
    with pytest.raises(ValueError, match="LOUD"):
        setup_logging("LOUD")


def test_short_secret_refused() -> None:
    with pytest.raises(ValueError):
        register_secret("abc")
