"""Every registry entry: wired to its kernel the way TA-Lib is called, causal, and the same
through numpy, polars expressions and the per-symbol frame namespace."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

import research_lib.features  # noqa: F401  (registers .ta)
from research_lib import indicators

NAMES = sorted(indicators.REGISTRY)


def ohlcv(n: int, *, seed: int = 0, scale: float = 100.0) -> dict[str, np.ndarray]:
    """A seeded random walk with consistent OHLC and positive volume."""
    rng = np.random.default_rng(seed)
    close = scale * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.r_[close[0], close[:-1]] * np.exp(rng.normal(0, 0.002, n))
    spread = np.abs(rng.normal(0, 0.004, n)) * close
    high = np.maximum(open_, close) + spread
    low = np.minimum(open_, close) - spread * rng.uniform(0, 1, n)
    volume = rng.lognormal(3, 0.5, n)
    ts = (1_704_067_200_000 + np.arange(n, dtype=np.int64) * 3_600_000).astype(np.float64)
    return {"open": open_, "high": high, "low": low, "close": close, "volume": volume, "ts": ts}


def assert_close(ours: np.ndarray, ref: np.ndarray, *, name: str) -> None:
    both = ~np.isnan(ref)
    assert np.array_equal(np.isnan(ours)[both], np.zeros(both.sum(), bool)), name
    scale = np.nanmax(np.abs(ref)) if both.any() else 1.0
    np.testing.assert_allclose(ours[both], ref[both], rtol=1e-9, atol=1e-9 * scale, err_msg=name)


@pytest.mark.parametrize("name", [n for n in NAMES if indicators.REGISTRY[n].talib], ids=str)
def test_registry_entry_matches_talib_with_default_parameters(name: str) -> None:
    spec = indicators.REGISTRY[name]
    data = ohlcv(3_000)
    params = spec.resolve((), {})
    ours = indicators.compute(name, data)
    ref = spec.talib(talib, data, *params)
    refs = ref if isinstance(ref, tuple) else (ref,)
    assert len(refs) == len(spec.outputs)
    # compare after TA-Lib's own warm-up, and after its unstable period for recursive ones
    skip = 1_000 if spec.family in ("trend", "momentum", "volatility") else 0
    for output, expected in zip(spec.outputs, refs, strict=True):
        assert_close(ours[output][skip:], np.asarray(expected)[skip:], name=f"{name}.{output}")


@settings(max_examples=20, deadline=None)
@given(name=st.sampled_from(NAMES), t=st.integers(1, 400), seed=st.integers(0, 10))
def test_every_indicator_is_causal(name: str, t: int, seed: int) -> None:
    data = ohlcv(400, seed=seed)
    full = indicators.compute(name, data)
    cut = indicators.compute(name, {k: v[:t] for k, v in data.items()})
    for output in full:
        np.testing.assert_array_equal(cut[output][-1], full[output][t - 1])


@pytest.mark.parametrize("name", NAMES, ids=str)
def test_polars_frame_namespace_equals_per_symbol_numpy(name: str) -> None:
    spec = indicators.REGISTRY[name]
    a, b = ohlcv(300, seed=1), ohlcv(200, seed=2)
    frame = pl.concat(
        [
            pl.DataFrame(a).with_columns(symbol=pl.lit("A")),
            pl.DataFrame(b).with_columns(symbol=pl.lit("B")),
        ]
    )
    added = frame.ta.__getattr__(name)()
    for output in spec.outputs:
        expected = np.concatenate(
            [indicators.compute(name, a)[output], indicators.compute(name, b)[output]]
        )
        got = added[output].to_numpy()
        np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
        np.testing.assert_array_equal(got[~np.isnan(got)], expected[~np.isnan(expected)])


def test_bad_parameters_name_the_parameter() -> None:
    with pytest.raises(ValueError, match="window_bars must be >= 2, got 1"):
        indicators.compute("rsi", ohlcv(50), window_bars=1)
    with pytest.raises(TypeError, match=r"unknown parameter\(s\) \['window'\]"):
        indicators.compute("rsi", ohlcv(50), window=3)
    with pytest.raises(TypeError, match="whole number"):
        indicators.compute("sma", ohlcv(50), 2.5)
    with pytest.raises(ValueError, match="unknown indicator 'rsx'"):
        indicators.compute("rsx", ohlcv(50))
