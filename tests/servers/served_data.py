"""Frames for the local exchange server to serve: seeded random ones, and the real files.

``load_real`` reads the real Binance files of ``../shared/data/real`` into
``ExchangeServer`` keyword arguments; ``random_*`` make small seeded frames for fast tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from research_lib.config import INTERVAL_MS


def random_bars(
    symbols: Sequence[str], *, start_ms: int, bars: int, interval: str = "1h", seed: int = 0
) -> pl.DataFrame:
    """A seeded random walk in ``BARS_SCHEMA`` with prices on a 0.01 tick, like Binance's."""
    rng = np.random.default_rng(seed)
    step = INTERVAL_MS[interval]
    frames = []
    for number, symbol in enumerate(symbols):
        close = np.round(100.0 * (number + 1) * np.exp(np.cumsum(rng.normal(0, 0.01, bars))), 2)
        open_ = np.round(np.concatenate([[close[0]], close[:-1]]), 2)
        spread = np.round(np.abs(rng.normal(0, 0.3, bars)), 2)
        frames.append(
            pl.DataFrame(
                {
                    "ts": start_ms + step * np.arange(bars, dtype=np.int64),
                    "symbol": [symbol] * bars,
                    "open": open_,
                    "high": np.maximum(open_, close) + spread,
                    "low": np.maximum(np.minimum(open_, close) - spread, 0.01),
                    "close": close,
                    "volume": np.round(rng.lognormal(3, 1, bars), 5),
                }
            )
        )
    return pl.concat(frames)


def random_funding(symbol: str, *, start_ms: int, rows: int, seed: int = 0) -> pl.DataFrame:
    """8-hourly funding with Binance's few-ms jitter and no mark price in the first third."""
    rng = np.random.default_rng(seed)
    mark = np.round(30_000 + np.cumsum(rng.normal(0, 100, rows)), 1)
    mark[: rows // 3] = np.nan
    return pl.DataFrame(
        {
            "ts": start_ms + 28_800_000 * np.arange(rows) + rng.integers(0, 9, rows),
            "symbol": [symbol] * rows,
            "funding_rate": np.round(rng.normal(1e-4, 1e-4, rows), 8),
            "mark_price": mark,
        }
    )


def random_coingecko(coin: str, *, start_ms: int, hours: int, seed: int = 0) -> pl.DataFrame:
    """Hourly CoinGecko-like points: ts a few seconds past the hour, price, cap, volume."""
    rng = np.random.default_rng(seed)
    price = 40_000.0 * np.exp(np.cumsum(rng.normal(0, 0.01, hours)))
    return pl.DataFrame(
        {
            "ts": start_ms + 3_600_000 * np.arange(hours) + rng.integers(1_000, 9_000, hours),
            "symbol": [coin] * hours,
            "price": price,
            "market_cap": price * 19_500_000.0,
            "total_volume": rng.lognormal(23, 0.3, hours),
        }
    )


# -- real data and the command line ---------------------------------------------------------

_REAL_DIRS = {
    "binance_spot_1h": ("spot", "1h"),
    "binance_spot_1d": ("spot", "1d"),
    "binance_usdm_perp_1h": ("usdm", "1h"),
}


def load_real(root: Path, *, symbols: Sequence[str] | None = None) -> dict[str, Any]:
    """``ExchangeServer`` keyword arguments serving the real files under ``root/cex``.

    ``root`` is ``../shared/data/real``; ``symbols`` limits what is read (default: all).
    """
    spot: dict[str, list[pl.DataFrame]] = {}
    usdm: dict[str, list[pl.DataFrame]] = {}
    for folder, (market, interval) in _REAL_DIRS.items():
        for file in sorted((root / "cex" / folder).glob("*.parquet")):
            if symbols is None or file.stem in symbols:
                frame = pl.read_parquet(file).drop("source", strict=False)
                frame = frame.with_columns(pl.col("symbol").cast(pl.String))
                (spot if market == "spot" else usdm).setdefault(interval, []).append(frame)
    funding_files = sorted((root / "cex" / "binance_usdm_funding").glob("*.parquet"))
    funding = [
        pl.read_parquet(f).drop("source").with_columns(pl.col("symbol").cast(pl.String))
        for f in funding_files
        if symbols is None or f.stem in symbols
    ]
    return {
        "spot_bars": {k: pl.concat(v) for k, v in spot.items()},
        "usdm_bars": {k: pl.concat(v) for k, v in usdm.items()},
        "funding": pl.concat(funding) if funding else None,
    }
