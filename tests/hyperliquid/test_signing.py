"""L1 signing: the official SDK's test vectors (reference §1.5), the SDK itself on random actions,
signer recovery, and nonces."""

from __future__ import annotations

import itertools
import secrets
from decimal import Decimal
from typing import Any

import msgpack
import pytest
from eth_account import Account
from eth_utils import keccak as eth_keccak
from hyperliquid.utils import signing as sdk
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hip3.clock import use_wall_clock
from hip3.hyperliquid import wire
from hip3.hyperliquid.signing import (
    AGENT_TYPEHASH,
    DOMAIN_SEPARATOR,
    KECCAK_BACKEND,
    NonceManager,
    SignatureError,
    Signer,
    _keccak_backends,
    action_hash,
    address_of,
    l1_digest,
    recover_l1_signer,
    sign_l1_action,
)

# All SDK vectors use this key (reference §1.5).
KEY = "0x0123456789012345678901234567890123456789012345678901234567890123"
KEY_ADDRESS = "0x14791697260E4c9A71f18484C9f997B308e59325"
VAULT = "0x1719884eb866cb12b2287399b15f7db5e7d775ea"

ORDER_C = {
    "type": "order",
    "orders": [{"a": 1, "b": True, "p": "100", "s": "100", "r": False, "t": {"limit": {"tif": "Gtc"}}}],
    "grouping": "na",
}
ORDER_D = {
    "type": "order",
    "orders": [
        {
            "a": 1,
            "b": True,
            "p": "100",
            "s": "100",
            "r": False,
            "t": {"limit": {"tif": "Gtc"}},
            "c": "0x00000000000000000000000000000001",
        }
    ],
    "grouping": "na",
}
ORDER_F = {
    "type": "order",
    "orders": [
        {
            "a": 1,
            "b": True,
            "p": "100",
            "s": "100",
            "r": False,
            "t": {"trigger": {"isMarket": True, "triggerPx": "103", "tpsl": "sl"}},
        }
    ],
    "grouping": "na",
}
DUMMY = {"type": "dummy", "num": 100000000000}  # float_to_int_for_hashing(1000)
HIP3_ORDER = {
    "type": "order",
    "orders": [{"a": 110000, "b": True, "p": "1", "s": "20", "r": False, "t": {"limit": {"tif": "Gtc"}}}],
    "grouping": "na",
}
HIP3_CANCEL = {"type": "cancel", "cancels": [{"a": 110000, "o": 123456789}]}


def sig(r: str, s: str, v: int) -> dict[str, Any]:
    return {"r": r, "s": s, "v": v}


# (name, action, nonce, vault, expires_after, mainnet signature, testnet signature) — verbatim from §1.5.
VECTORS = [
    (
        "b dummy",
        DUMMY,
        0,
        None,
        None,
        sig(
            "0x53749d5b30552aeb2fca34b530185976545bb22d0b3ce6f62e31be961a59298",
            "0x755c40ba9bf05223521753995abb2f73ab3229be8ec921f350cb447e384d8ed8",
            27,
        ),
        sig(
            "0x542af61ef1f429707e3c76c5293c80d01f74ef853e34b76efffcb57e574f9510",
            "0x17b8b32f086e8cdede991f1e2c529f5dd5297cbe8128500e00cbaf766204a613",
            28,
        ),
    ),
    (
        "c order",
        ORDER_C,
        0,
        None,
        None,
        sig(
            "0xd65369825a9df5d80099e513cce430311d7d26ddf477f5b3a33d2806b100d78e",
            "0x2b54116ff64054968aa237c20ca9ff68000f977c93289157748a3162b6ea940e",
            28,
        ),
        sig(
            "0x82b2ba28e76b3d761093aaded1b1cdad4960b3af30212b343fb2e6cdfa4e3d54",
            "0x6b53878fc99d26047f4d7e8c90eb98955a109f44209163f52d8dc4278cbbd9f5",
            27,
        ),
    ),
    (
        "d order with cloid",
        ORDER_D,
        0,
        None,
        None,
        sig(
            "0x41ae18e8239a56cacbc5dad94d45d0b747e5da11ad564077fcac71277a946e3",
            "0x3c61f667e747404fe7eea8f90ab0e76cc12ce60270438b2058324681a00116da",
            27,
        ),
        sig(
            "0xeba0664bed2676fc4e5a743bf89e5c7501aa6d870bdb9446e122c9466c5cd16d",
            "0x7f3e74825c9114bc59086f1eebea2928c190fdfbfde144827cb02b85bbe90988",
            28,
        ),
    ),
    (
        "e vault",
        DUMMY,
        0,
        VAULT,
        None,
        sig(
            "0x3c548db75e479f8012acf3000ca3a6b05606bc2ec0c29c50c515066a326239",
            "0x4d402be7396ce74fbba3795769cda45aec00dc3125a984f2a9f23177b190da2c",
            28,
        ),
        sig(
            "0xe281d2fb5c6e25ca01601f878e4d69c965bb598b88fac58e475dd1f5e56c362b",
            "0x7ddad27e9a238d045c035bc606349d075d5c5cd00a6cd1da23ab5c39d4ef0f60",
            27,
        ),
    ),
    (
        "f tpsl order",
        ORDER_F,
        0,
        None,
        None,
        sig(
            "0x98343f2b5ae8e26bb2587daad3863bc70d8792b09af1841b6fdd530a2065a3f9",
            "0x6b5bb6bb0633b710aa22b721dd9dee6d083646a5f8e581a20b545be6c1feb405",
            27,
        ),
        sig(
            "0x971c554d917c44e0e1b6cc45d8f9404f32172a9d3b3566262347d0302896a2e4",
            "0x206257b104788f80450f8e786c329daa589aa0b32ba96948201ae556d5637eac",
            28,
        ),
    ),
    (
        "j createSubAccount",
        {"type": "createSubAccount", "name": "example"},
        0,
        None,
        None,
        sig(
            "0x51096fe3239421d16b671e192f574ae24ae14329099b6db28e479b86cdd6caa7",
            "0xb71f7d293af92d3772572afb8b102d167a7cef7473388286bc01f52a5c5b423",
            27,
        ),
        sig(
            "0xa699e3ed5c2b89628c746d3298b5dc1cca604694c2c855da8bb8250ec8014a5b",
            "0x53f1b8153a301c72ecc655b1c315d64e1dcea3ee58921fd7507e35818fcc1584",
            28,
        ),
    ),
    (
        "k subAccountTransfer",
        {
            "type": "subAccountTransfer",
            "subAccountUser": "0x1d9470d4b963f552e6f671a81619d395877bf409",
            "isDeposit": True,
            "usd": 10,
        },
        0,
        None,
        None,
        sig(
            "0x43592d7c6c7d816ece2e206f174be61249d651944932b13343f4d13f306ae602",
            "0x71a926cb5c9a7c01c3359ec4c4c34c16ff8107d610994d4de0e6430e5cc0f4c9",
            28,
        ),
        sig(
            "0xe26574013395ad55ee2f4e0575310f003c5bb3351b5425482e2969fa51543927",
            "0xefb08999196366871f919fd0e138b3a7f30ee33e678df7cfaf203e25f0a4278",
            28,
        ),
    ),
    (
        "l scheduleCancel",
        {"type": "scheduleCancel"},
        0,
        None,
        None,
        sig(
            "0x6cdfb286702f5917e76cd9b3b8bf678fcc49aec194c02a73e6d4f16891195df9",
            "0x6557ac307fa05d25b8d61f21fb8a938e703b3d9bf575f6717ba21ec61261b2a0",
            27,
        ),
        sig(
            "0xc75bb195c3f6a4e06b7d395acc20bbb224f6d23ccff7c6a26d327304e6efaeed",
            "0x342f8ede109a29f2c0723bd5efb9e9100e3bbb493f8fb5164ee3d385908233df",
            28,
        ),
    ),
    (
        "l scheduleCancel with time",
        {"type": "scheduleCancel", "time": 123456789},
        0,
        None,
        None,
        sig(
            "0x609cb20c737945d070716dcc696ba030e9976fcf5edad87afa7d877493109d55",
            "0x16c685d63b5c7a04512d73f183b3d7a00da5406ff1f8aad33f8ae2163bab758b",
            28,
        ),
        sig(
            "0x4e4f2dbd4107c69783e251b7e1057d9f2b9d11cee213441ccfa2be63516dc5bc",
            "0x706c656b23428c8ba356d68db207e11139ede1670481a9e01ae2dfcdb0e1a678",
            27,
        ),
    ),
    (
        "local expiresAfter",
        ORDER_C,
        1700000000000,
        None,
        1700000060000,
        sig(
            "0xa07e4477eb151bb6024ff6134f29c69204b32b6224c13a9fbadd8ad7df697b8c",
            "0x15652fe061dc2f613dde90926462a114e57e069b73ba264d98adb813734adea7",
            27,
        ),
        sig(
            "0x2ca554750316ce9bad3bc4aa1159de382dc9ef899006e26e6ac227ea7bd96426",
            "0x1ff5c702a4732a1bdb303a11f58f5de005cad195adf03b2477c5998be80b8d5d",
            27,
        ),
    ),
    (
        "local HIP-3 order",
        HIP3_ORDER,
        1700000000000,
        None,
        None,
        sig(
            "0x3f1717c55d473bfca45779475fa8efd46f9b6c10a450b486bfc61123d0ea4014",
            "0x462949447b4ab7e32bfe989dc422f5ea5a260ef0f6a0d9aea73b420a3cfafaca",
            27,
        ),
        sig(
            "0x5a7b341d708d7409651c49e53e41c7c63206c07f7d70576345b07a587fb3a5ea",
            "0x6a30af392f4343cf9fbb3751f5f8c31c129215707d2f1c5a4f5b1806f5408cbd",
            27,
        ),
    ),
    (
        "local HIP-3 cancel",
        HIP3_CANCEL,
        1700000000000,
        None,
        None,
        sig(
            "0x502573164029c50c73b96920c50c925b7445399030fd28c7c74d07a5ea46f14b",
            "0x58286003b2d2cfeb82ebc1c47ddf2574c9bb4da401e97b39818df246ff3ea7b",
            28,
        ),
        sig(
            "0x56d3aa25f3e7861497d1990ab10e11939e5cec4addf5825b99b74d4cff45e8e4",
            "0x3d4356385ddbd89e59cb85f56f4e8b944a82018e641fd3b16dbb29c0d854ab87",
            27,
        ),
    ),
]


@pytest.mark.parametrize("is_mainnet", [True, False], ids=["mainnet", "testnet"])
@pytest.mark.parametrize(
    ("action", "nonce", "vault", "expires_after", "mainnet_sig", "testnet_sig"),
    [v[1:] for v in VECTORS],
    ids=[v[0] for v in VECTORS],
)
def test_sdk_vectors(
    action: dict[str, Any],
    nonce: int,
    vault: str | None,
    expires_after: int | None,
    mainnet_sig: dict[str, Any],
    testnet_sig: dict[str, Any],
    is_mainnet: bool,
) -> None:
    expected = mainnet_sig if is_mainnet else testnet_sig
    got = sign_l1_action(
        KEY, action, nonce, is_mainnet=is_mainnet, vault_address=vault, expires_after=expires_after
    )
    assert got == expected
    assert type(got["v"]) is int
    signer = recover_l1_signer(
        action, nonce, got, is_mainnet=is_mainnet, vault_address=vault, expires_after=expires_after
    )
    assert signer == KEY_ADDRESS.lower()


@pytest.mark.parametrize(
    ("action", "nonce", "expires_after", "connection_id"),
    [
        (
            {
                "type": "order",
                "orders": [
                    {
                        "a": 4,
                        "b": True,
                        "p": "1670.1",
                        "s": "0.0147",
                        "r": False,
                        "t": {"limit": {"tif": "Ioc"}},
                    }
                ],
                "grouping": "na",
            },
            1677777606040,
            None,
            "0fcbeda5ae3c4950a548021552a4fea2226858c4453571bf3f24ba017eac2908",
        ),
        (ORDER_C, 0, None, "884f2c32bb6dbdd65f6033e32fb28c0cb6f5b345db0f6471fd3366d85c9252c1"),
        (ORDER_D, 0, None, "0ba500cedd8f4ba6ded620a0b1cd04f124d9ba745e2e2893fcc763bcc1444af5"),
        (
            ORDER_C,
            1700000000000,
            1700000060000,
            "0792f0d788465669c3ff7809bb0e3797dff08f3c78090387a9bdb9e57623530f",
        ),
        (HIP3_ORDER, 1700000000000, None, "af0c4c74dfbd94a769ff5d1ad6fde6fedffba9767c5292fd57ddf43813f73afa"),
        (
            HIP3_CANCEL,
            1700000000000,
            None,
            "eac0958ce8844ab4d825078383063bee0a40ab60762e2e79670e0435fb311b4d",
        ),
    ],
    ids=["a phantom agent", "c", "d cloid", "expiresAfter", "HIP-3 order", "HIP-3 cancel"],
)
def test_connection_id_vectors(
    action: dict[str, Any], nonce: int, expires_after: int | None, connection_id: str
) -> None:
    assert action_hash(action, None, nonce, expires_after).hex() == connection_id


def test_msgpack_intermediates() -> None:
    order_a = wire.order_action(
        [wire.order_wire(4, True, Decimal("1670.1"), Decimal("0.0147"), False, "Ioc")]
    )
    assert msgpack.packb(order_a).hex() == (
        "83a474797065a56f72646572a66f72646572739186a16104a162c3a170a6313637302e31a173a6302e30313437a172c2"
        "a17481a56c696d697481a3746966a3496f63a867726f7570696e67a26e61"
    )
    order_c = wire.order_action([wire.order_wire(1, True, 100, 100, False, "Gtc")])
    assert msgpack.packb(order_c).hex() == (
        "83a474797065a56f72646572a66f72646572739186a16101a162c3a170a3313030a173a3313030a172c2a17481a56c696d"
        "697481a3746966a3477463a867726f7570696e67a26e61"
    )
    # HIP-3 asset ids need uint32; 10**11 needs uint64 (reference §1.2, §1.5).
    assert bytes.fromhex("ce0001adb0") in msgpack.packb(HIP3_ORDER)
    assert msgpack.packb(100000000000).hex() == "cf000000174876e800"


def test_digest_vectors_and_constants() -> None:
    assert DOMAIN_SEPARATOR.hex() == "d79297fcdf2ffcd4ae223d01edaa2ba214ff8f401d7c9300d995d17c82aa4040"
    assert AGENT_TYPEHASH.hex() == "26f05c2f7239b6983075e58321292d77b3aa173d19b27257ac96ab362570f508"
    cid = bytes.fromhex("884f2c32bb6dbdd65f6033e32fb28c0cb6f5b345db0f6471fd3366d85c9252c1")
    assert l1_digest(cid, is_mainnet=True).hex() == (
        "a5cfed1f2d7948de30aecacc7fea3c5e05c1e759020e96239847879b906f801e"
    )
    assert l1_digest(cid, is_mainnet=False).hex() == (
        "606be2d25f68768f876dc04a2c3c86ceafd2d6a3c3cbb963454462d6734ebfa6"
    )
    with pytest.raises(ValueError, match="32 bytes"):
        l1_digest(cid[:31], is_mainnet=True)


def test_every_keccak_backend_agrees() -> None:
    # Ethereum keccak-256 test values; each backend found on this machine must give them.
    backends = _keccak_backends()
    assert backends, "no keccak backend"
    assert backends[0][0] == KECCAK_BACKEND
    for name, fn in backends:
        assert fn(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470", name
        assert fn(b"abc").hex() == "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45", name
        assert fn(b"\x00" * 200) == eth_keccak(b"\x00" * 200), name


def test_address_of() -> None:
    assert address_of(KEY) == KEY_ADDRESS.lower()
    assert address_of(KEY[2:]) == KEY_ADDRESS.lower()
    key = "0x" + secrets.token_hex(32)
    assert address_of(key) == Account.from_key(key).address.lower()


def test_bad_private_key_message_never_shows_the_key() -> None:
    bad = "0x" + "ab" * 31 + "zz"
    with pytest.raises(ValueError) as info:
        address_of(bad)
    assert "ab" * 31 not in str(info.value)
    with pytest.raises(ValueError, match="valid secp256k1 key"):
        Signer("0x" + "00" * 32)
    key = "0x" + secrets.token_hex(32)
    signer = Signer(key)
    assert key[2:] not in repr(signer)
    assert signer.address in repr(signer)


def test_bad_hash_inputs_are_clear() -> None:
    with pytest.raises(ValueError, match="nonce"):
        action_hash(ORDER_C, None, -1, None)
    with pytest.raises(ValueError, match="nonce"):
        action_hash(ORDER_C, None, 2**64, None)
    with pytest.raises(ValueError, match="vault_address"):
        action_hash(ORDER_C, "0x1234", 0, None)
    with pytest.raises(ValueError, match="expires_after"):
        action_hash(ORDER_C, None, 0, True)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="msgpack"):
        action_hash({"type": "order", "p": Decimal(1)}, None, 0, None)


# ---------------------------------------------------------------------------------------------
# random actions against the SDK itself

hex_key = st.integers(min_value=1, max_value=2**256 - 2**129).map(
    lambda n: "0x" + n.to_bytes(32, "big").hex()
)
assets = st.one_of(st.integers(0, 300), st.integers(110000, 189999), st.integers(0, 2**32 - 1))
decimals = st.builds(
    lambda units, exp: Decimal(units).scaleb(-exp), st.integers(1, 10**12), st.integers(0, 8)
)
cloids = st.one_of(st.none(), st.binary(min_size=16, max_size=16).map(lambda b: "0x" + b.hex()))
addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
u64 = st.integers(0, 2**64 - 1)

order_wires = st.builds(
    wire.order_wire,
    asset=assets,
    is_buy=st.booleans(),
    price=decimals,
    size=decimals,
    reduce_only=st.booleans(),
    tif=st.sampled_from(["Ioc", "Gtc", "Alo"]),
    cloid=cloids,
)
actions = st.one_of(
    st.builds(
        wire.order_action,
        orders=st.lists(order_wires, min_size=1, max_size=3),
        grouping=st.sampled_from(["na", "normalTpsl", "positionTpsl"]),
        builder=st.one_of(
            st.none(), st.builds(lambda b, f: {"b": b, "f": f}, addresses, st.integers(0, 100))
        ),
    ),
    st.builds(wire.cancel_action, st.lists(st.tuples(assets, u64), min_size=1, max_size=3)),
    st.builds(
        wire.cancel_by_cloid_action,
        st.lists(
            st.tuples(assets, st.binary(min_size=16, max_size=16).map(lambda b: "0x" + b.hex())), min_size=1
        ),
    ),
    st.builds(wire.schedule_cancel_action, st.one_of(st.none(), u64)),
    st.just({"type": "noop"}),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    key=hex_key,
    action=actions,
    nonce=u64,
    vault=st.one_of(st.none(), addresses),
    expires_after=st.one_of(st.none(), u64),
    is_mainnet=st.booleans(),
)
def test_random_actions_match_sdk(
    key: str,
    action: dict[str, Any],
    nonce: int,
    vault: str | None,
    expires_after: int | None,
    is_mainnet: bool,
) -> None:
    wallet = Account.from_key(key)
    expected = sdk.sign_l1_action(wallet, action, vault, nonce, expires_after, is_mainnet)
    got = sign_l1_action(
        key, action, nonce, is_mainnet=is_mainnet, vault_address=vault, expires_after=expires_after
    )
    assert got == expected
    # The SDK's own recovery and ours agree on the signer.
    recovered = sdk.recover_agent_or_user_from_l1_action(action, got, vault, nonce, expires_after, is_mainnet)
    assert recovered.lower() == wallet.address.lower()
    assert (
        recover_l1_signer(
            action, nonce, got, is_mainnet=is_mainnet, vault_address=vault, expires_after=expires_after
        )
        == wallet.address.lower()
    )


# ---------------------------------------------------------------------------------------------
# recovery


def _fresh_key() -> str:
    return "0x" + secrets.token_hex(32)


def test_recover_accepts_padded_and_unpadded() -> None:
    # Vector (b) mainnet has a 63-digit r: the SDK's unpadded form and NK's padded form both verify.
    _, action, nonce, _, _, mainnet_sig, _ = VECTORS[0]
    assert len(mainnet_sig["r"]) == 65
    padded = {
        "r": "0x" + mainnet_sig["r"][2:].rjust(64, "0"),
        "s": "0x" + mainnet_sig["s"][2:].rjust(64, "0"),
        "v": mainnet_sig["v"],
    }
    for signature in (mainnet_sig, padded, {**padded, "r": padded["r"].upper().replace("0X", "0x")}):
        assert recover_l1_signer(action, nonce, signature, is_mainnet=True) == KEY_ADDRESS.lower()


@settings(max_examples=30, deadline=None)
@given(action=actions, nonce=u64)
def test_tampering_changes_the_recovered_signer(action: dict[str, Any], nonce: int) -> None:
    key = _fresh_key()
    address = address_of(key)
    signature = sign_l1_action(key, action, nonce, is_mainnet=True)
    assert recover_l1_signer(action, nonce, signature, is_mainnet=True) == address
    assert recover_l1_signer(action, (nonce + 1) % 2**64, signature, is_mainnet=True) != address
    assert recover_l1_signer(action, nonce, signature, is_mainnet=False) != address
    assert recover_l1_signer(action, nonce, signature, is_mainnet=True, vault_address=VAULT) != address
    assert recover_l1_signer(action, nonce, signature, is_mainnet=True, expires_after=nonce) != address
    tampered = {**action, "type": action["type"] + "x"}
    assert recover_l1_signer(tampered, nonce, signature, is_mainnet=True) != address


def test_tampered_price_or_key_order_changes_signer() -> None:
    key = _fresh_key()
    address = address_of(key)
    action = wire.order_action([wire.order_wire(110003, True, "465.13", "0.25", False, "Ioc")])
    signature = sign_l1_action(key, action, 1, is_mainnet=True)
    higher = wire.order_action([wire.order_wire(110003, True, "465.14", "0.25", False, "Ioc")])
    assert recover_l1_signer(higher, 1, signature, is_mainnet=True) != address
    reordered = {"orders": action["orders"], "type": "order", "grouping": "na"}
    assert recover_l1_signer(reordered, 1, signature, is_mainnet=True) != address
    # ... and canonical_action restores the order the signature covers.
    assert recover_l1_signer(wire.canonical_action(reordered), 1, signature, is_mainnet=True) == address


@pytest.mark.parametrize(
    ("signature", "message"),
    [
        ({"r": "0x1", "s": "0x1"}, "signature.v"),
        ({"r": "0x1", "s": "0x1", "v": 29}, "signature.v"),
        ({"r": "0x1", "s": "0x1", "v": "27"}, "signature.v"),
        ({"r": "0x1", "s": "0x1", "v": True}, "signature.v"),
        ({"r": "0x1", "s": "0x1", "v": 27.0}, "signature.v"),
        ({"r": "12", "s": "0x1", "v": 27}, "signature.r"),
        ({"r": "0xzz", "s": "0x1", "v": 27}, "signature.r"),
        ({"r": 1, "s": "0x1", "v": 27}, "signature.r"),
        ({"r": "0x0", "s": "0x1", "v": 27}, "signature.r"),
        ({"r": "0x" + "f" * 64, "s": "0x1", "v": 27}, "signature.r"),
        ({"r": "0x" + "1" * 65, "s": "0x1", "v": 27}, "signature.r"),
        ({"r": "0x1", "v": 27}, "signature.s"),
        ({"r": "0x1", "s": "0x0", "v": 27}, "signature.s"),
        ("0xdeadbeef", "signature"),
    ],
)
def test_malformed_signature_raises(signature: Any, message: str) -> None:
    with pytest.raises(SignatureError, match=message):
        recover_l1_signer(ORDER_C, 0, signature, is_mainnet=True)


def test_unrecoverable_signature_raises_signature_error() -> None:
    # x = 5 is not the x coordinate of any secp256k1 point, so nothing can be recovered.
    with pytest.raises(SignatureError, match="no public key"):
        recover_l1_signer(ORDER_C, 0, {"r": "0x5", "s": "0x1", "v": 27}, is_mainnet=True)


# ---------------------------------------------------------------------------------------------
# nonces


def test_nonce_follows_the_clock() -> None:
    now = [1_700_000_000_000]
    nonces = NonceManager(lambda: now[0])
    assert nonces.next() == 1_700_000_000_000
    now[0] += 5
    assert nonces.next() == 1_700_000_000_005
    assert nonces.last == 1_700_000_000_005


def test_nonce_strictly_increases_when_clock_stands_still_or_goes_back() -> None:
    now = [1_700_000_000_000]
    nonces = NonceManager(lambda: now[0])
    issued = [nonces.next() for _ in range(5)]
    assert issued == [1_700_000_000_000 + i for i in range(5)]
    now[0] -= 60_000  # wall clock stepped back a minute
    issued += [nonces.next() for _ in range(3)]
    now[0] = 1_700_000_000_002  # forward again, but still behind what we issued
    issued.append(nonces.next())
    now[0] = 1_700_000_001_000
    issued.append(nonces.next())
    assert all(b > a for a, b in itertools.pairwise(issued))
    assert issued[-1] == 1_700_000_001_000


@settings(max_examples=100)
@given(st.lists(st.integers(0, 2**50), min_size=1, max_size=50))
def test_nonce_strictly_increasing_for_any_clock(readings: list[int]) -> None:
    it = iter(readings)
    nonces = NonceManager(lambda: next(it))
    issued = [nonces.next() for _ in readings]
    assert all(b > a for a, b in itertools.pairwise(issued))
    assert all(n >= r for n, r in zip(issued, readings, strict=True))


def test_default_nonce_follows_the_wall_clock_seam() -> None:
    with use_wall_clock(lambda: 1_763_000_000_123):
        nonces = NonceManager()
        assert nonces.next() == 1_763_000_000_123
        assert nonces.next() == 1_763_000_000_124  # same ms: still strictly increasing
