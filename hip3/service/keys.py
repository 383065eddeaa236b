"""Loading the signing key (an API/agent wallet, or the master) without ever showing it.

The key comes from the environment variable HIP3_PRIVATE_KEY or from the file named by
`account.key_file` (which must not be readable by group/other). It is held in `SecretKey`, whose
repr/str are masked; error messages describe what is wrong with a key but never include it.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import NoReturn

from eth_account import Account

from hip3.service.config import Config
from hip3.service.logs import register_secret

ENV_VAR = "HIP3_PRIVATE_KEY"
_KEY_RE = re.compile(r"(?:0[xX])?([0-9a-fA-F]{64})")


class KeyLoadError(Exception):
    """The signing key is missing or unusable; the message never contains the key."""


class SecretKey:
    """A secp256k1 private key. `hex` is for the signer only; printing shows just the address."""

    __slots__ = ("_address", "_hex", "source")

    def __init__(self, text: str, *, source: str = "key") -> None:
        match = _KEY_RE.fullmatch(text.strip())
        if match is None:
            _refuse(
                f"{source}: not a private key (expected 0x followed by 64 hex digits, got {_shape(text)})"
            )
        key_hex = "0x" + match.group(1).lower()
        try:
            address = Account.from_key(key_hex).address.lower()
        except Exception:
            _refuse(f"{source}: not a valid secp256k1 private key (out of range)")
        register_secret(key_hex)
        self._hex = key_hex
        self._address = address
        self.source = source

    @property
    def hex(self) -> str:
        """The raw key as 0x + 64 lowercase hex. Pass it to the signer; never log it."""
        return self._hex

    @property
    def address(self) -> str:
        """The signer's address (lowercase 0x + 40 hex)."""
        return str(self._address)

    def __repr__(self) -> str:
        return f"SecretKey(address={self._address}, key=<hidden>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretKey) and other._hex == self._hex

    def __hash__(self) -> int:
        return hash(self._address)

    def __reduce__(self) -> NoReturn:
        raise TypeError("SecretKey cannot be pickled")


def _refuse(message: str) -> NoReturn:
    # `from None` keeps the offending text (held by the caller's frame) out of chained tracebacks
    raise KeyLoadError(message) from None


def _shape(text: str) -> str:
    """Describe a malformed key without revealing it."""
    stripped = text.strip()
    digits = stripped[2:] if stripped[:2].lower() == "0x" else stripped
    non_hex = sum(1 for ch in digits if ch not in "0123456789abcdefABCDEF")
    parts = [
        f"{len(digits)} digits after the prefix"
        if stripped[:2].lower() == "0x"
        else f"{len(digits)} characters"
    ]
    if non_hex:
        parts.append(f"{non_hex} not hex")
    return ", ".join(parts)


def read_key_file(path: str | Path) -> str:
    """The key file's text, refusing a file that group/other can read (or that isn't a regular file)."""
    shown = str(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        _refuse(f"account.key_file {shown}: no such file")
    except OSError as exc:
        _refuse(f"account.key_file {shown}: cannot access ({exc.strerror})")
    if not stat.S_ISREG(info.st_mode):
        _refuse(f"account.key_file {shown}: not a regular file")
    if info.st_mode & 0o077:
        _refuse(
            f"account.key_file {shown}: readable by group/other (mode {stat.S_IMODE(info.st_mode):03o}); "
            f"fix with: chmod 600 {shown}"
        )
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        _refuse(f"account.key_file {shown}: cannot read ({exc.__class__.__name__})")


def load_signing_key(cfg: Config, environ: Mapping[str, str] = os.environ) -> SecretKey:
    """The signing key from HIP3_PRIVATE_KEY or account.key_file (exactly one of them must be set).

    Checks it against `account.signer_address` when that is configured.
    """
    from_env = environ.get(ENV_VAR, "")
    key_file = cfg.account.key_file
    if from_env.strip() and key_file is not None:
        _refuse(f"both {ENV_VAR} and account.key_file are set; use only one")
    if from_env.strip():
        key = SecretKey(from_env, source=ENV_VAR)
    elif key_file is not None:
        key = SecretKey(read_key_file(key_file), source=f"account.key_file {key_file}")
    else:
        _refuse(f"no signing key: set the environment variable {ENV_VAR} or account.key_file in the config")
    expected = cfg.account.signer_address
    if expected is not None and key.address != expected:
        _refuse(f"{key.source}: the key's address {key.address} is not account.signer_address {expected}")
    return key
