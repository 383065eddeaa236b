"""Config loading: shipped defaults, overrides, and errors that name the bad key."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from hip3.sim.config import SimConfigError, _default_text, load_sim_config


def test_shipped_defaults() -> None:
    config = load_sim_config(None)
    assert config.dex == "xyz" and config.perp_dex_index == 1
    keys = config.market_keys()
    assert [(k.coin, k.asset) for k in keys] == [
        ("TSLA", 110000),
        ("NVDA", 110001),
        ("GOLD", 110002),
        ("SILVER", 110003),
        ("PLATINUM", 110004),
        ("HOOD", 110005),
    ]
    specs = config.market_specs()
    assert specs["xyz:TSLA"].sz_decimals == 3 and specs["xyz:GOLD"].max_leverage == 20
    assert (config.user_cross_rate, config.user_add_rate) == (Decimal("0.00045"), Decimal("0.00015"))
    # growth mode and normal assets side by side, as on the real xyz dex; HOOD's book sits away
    fees = {m.coin: (m.deployer_fee_scale, m.growth_mode, m.structural_gap_bps) for m in config.markets}
    assert fees["TSLA"] == (1, True, 0) and fees["GOLD"] == (1, False, 0)
    assert fees["HOOD"] == (Decimal("0.5"), False, 30)
    assert config.accounts == ()


def test_accounts_and_agents(tmp_path: Path) -> None:
    master, agent = "0x" + "AB" * 20, "0x" + "cd" * 20
    path = tmp_path / "sim.toml"
    path.write_text(
        _default_text()
        + f'\n[[accounts]]\naddress = "{master}"\nbalance = "2500"\nleverage = 3\nagents = ["{agent}"]\n'
    )
    [acct] = load_sim_config(path).accounts
    assert acct.address == master.lower() and acct.balance == Decimal(2500) and acct.agents == (agent,)


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        ("seed = 7", "seed = 7\nbogus = 1", "exchange: unknown key 'bogus'"),
        ("maker_levels = 5", "maker_levels = 5\nspeed = 2", "model: unknown key 'speed'"),
        ("maker_levels = 5", 'maker_levels = "five"', "model.maker_levels: expected an integer"),
        ('price = "432.15"', 'price = "abc"', "markets[0].price: not a number"),
        ("sz_decimals = 3\n", "sz_decimals = 3\ncolor = 1\n", "markets[0]: unknown key 'color'"),
        ("info_429_next = 0", "info_429_next = 0\nexplode = true", "faults: unknown key 'explode'"),
        ("info_429_rate = 0.0", 'info_429_rate = "x"', "faults.info_429_rate: expected a number"),
        ('dex = "xyz"', 'dex = "XYZ!"', "exchange.dex"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, old: str, new: str, named: str) -> None:
    text = _default_text()
    assert old in text
    path = tmp_path / "sim.toml"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(SimConfigError) as err:
        load_sim_config(path)
    assert named in str(err.value)


def test_missing_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(SimConfigError, match="cannot read"):
        load_sim_config(tmp_path / "nope.toml")
    path = tmp_path / "bad.toml"
    path.write_text("[exchange\n")
    with pytest.raises(SimConfigError, match="not valid TOML"):
        load_sim_config(path)
