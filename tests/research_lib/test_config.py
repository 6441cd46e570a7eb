"""Frozen, typed configs with a hashed id, and profiles that reject unknown keys."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from research_lib.config import (
    BacktestConfig,
    ConfigError,
    MarketConfig,
    RunConfig,
    StrategyConfig,
    SweepConfig,
    load_profile,
)


def test_id_is_a_hash_of_values_not_of_spelling() -> None:
    a = MarketConfig(symbols=("BTCUSDT", "ETHUSDT"), start="2024-01-01", end=dt.date(2024, 2, 1))
    b = MarketConfig(
        end="2024-02-01", start=dt.datetime(2024, 1, 1), symbols=["BTCUSDT", "ETHUSDT"]
    )
    assert a.id == b.id
    assert len(a.id) == 64 and a.short_id == a.id[:10]
    assert a.id != MarketConfig(symbols=("BTCUSDT",), start="2024-01-01", end="2024-02-01").id
    # the same values in another config type are another config
    assert BacktestConfig().id != StrategyConfig().id


def test_configs_are_frozen_and_reject_unknown_fields() -> None:
    cfg = BacktestConfig()
    with pytest.raises(ValidationError):
        cfg.fee_bps = 1.0  # type: ignore[misc]
    with pytest.raises(ValidationError, match="fee_bsp"):
        BacktestConfig(fee_bsp=3)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"symbols": ()}, "symbols is empty"),
        ({"symbols": ("A", "A")}, "duplicates"),
        ({"start": "2024-02-01", "end": "2024-01-01"}, r"end \(2024-01-01\) must be after start"),
        ({"interval": "3h"}, "interval"),
        ({"source": "coinbase", "interval": "4h"}, "interval '4h' is not offered by .*coinbase"),
        ({"source": "coingecko", "interval": "1m"}, r"use one of \['1h', '1d'\]"),
    ],
)
def test_invalid_market_values_name_the_field(kwargs: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        MarketConfig(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fast_bars": ()}, "fast_bars is empty"),
        ({"fast_bars": (0, 4)}, "fast_bars has 0; every window must be >= 1"),
        ({"slow_bars": (24, 24)}, "slow_bars repeats a window"),
        ({"fast_bars": (50,), "slow_bars": (24, 48)}, "no pair has fast < slow"),
    ],
)
def test_invalid_sweep_grids_name_the_field(kwargs: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SweepConfig(**kwargs)


def test_sweep_grid_overrides_apply() -> None:
    run = load_profile("demo", overrides={"sweep.fast_bars": [5, 10]})
    assert run.sweep.fast_bars == (5, 10)
    assert run.sweep.id != load_profile("demo").sweep.id


def test_demo_profile_loads_and_overrides_apply() -> None:
    run = load_profile("demo")
    assert isinstance(run, RunConfig) and run.name == "demo"
    assert len(run.market.symbols) >= 5
    changed = load_profile("demo", overrides={"backtest.fee_bps": 2.5})
    assert changed.backtest.fee_bps == 2.5
    assert changed.id != run.id and changed.market.id == run.market.id


@pytest.mark.parametrize(
    ("name", "overrides", "message"),
    [
        ("nope", None, r"unknown profile 'nope'.*available profiles: \[.*'demo'"),
        ("demo", {"backtest.fee_bsp": 1}, r"unknown parameter 'backtest.fee_bsp'.*fee_bps"),
        ("demo", {"modle.lags": 1}, r"unknown parameter 'modle.lags'.*no section 'modle'"),
        ("demo", {"lags": 1}, r"override 'lags' must be <section>.<key>"),
        ("demo", {"model.lags": 0}, r"model.lags = 0"),
    ],
)
def test_profile_errors_name_the_key(name: str, overrides: dict | None, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_profile(name, overrides=overrides)
