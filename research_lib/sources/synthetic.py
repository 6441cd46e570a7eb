"""The embedded default source: a seeded, multi-asset market that behaves like crypto.

The model runs at one-minute resolution from a fixed ``origin`` and every coarser bar is the
exact aggregation of its minutes. Per minute and asset the log return is

    drift[s] + m[s] * sigma * sqrt(hm * ha) * (sqrt(rho) (zm + k Jm) + sqrt(1 - rho) (za + k Ja))

where ``s`` is a two-state Markov regime (calm/bull, stressed/bear) with its own drift and
volatility multiplier ``m``; ``hm`` (market) and ``ha`` (asset) are unit-mean GARCH(1,1)
variances updated hourly; ``zm`` and ``za`` are unit-variance Student-t shocks; ``Jm`` and
``Ja`` are Poisson jumps (market-wide or for one asset) of ``k`` hourly standard deviations.
The conditional correlation of any two assets is therefore ``rho``. High and low come from a
Brownian bridge between open and close. Volume rises with ``|return|`` and follows a UTC
hour-of-day cycle; perpetual funding settles every 8 hours, mean-reverting around 0.01% and
tilted by the trailing day's return.

Why the random numbers are drawn per (stream, day): the lake collects ranges incrementally,
so a bar may depend only on (seed, config, timestamp). Each day of each stream (the market
stream and one per symbol) gets its own ``PCG64`` generator keyed by ``SeedSequence(seed,
spawn_key=(stream, day))``. The draws for a day are then the same whatever range was asked,
and a symbol's path does not change when other symbols are added to the config.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import math
import zlib
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import polars as pl
from pydantic import Field, model_validator

from kernels.simulate import (
    aggregate_ohlcv,
    funding_rate_path,
    garch_unit_variance,
    markov_two_state_path,
    ohlc_from_log_prices,
)
from research_lib.config import INTERVAL_MS, FrozenConfig

MINUTE_MS = 60_000
DAY_MS = 86_400_000
MINUTES_PER_DAY = 1_440
MINUTES_PER_YEAR = 525_600
DAYS_PER_MONTH = 30.0
FUNDING_INTERVAL = "8h"
FUNDING_INTERVAL_MS = 28_800_000
DATASETS = ("bars", "funding")
DEFAULT_SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT")
# Beyond ~10 years the minute arrays outgrow a laptop's memory; ask for less or a later origin.
MAX_SIMULATED_DAYS = 3_660

_KEYS = {"ts": pl.Int64, "symbol": pl.String}
_BARS_SCHEMA = _KEYS | dict.fromkeys(("open", "high", "low", "close", "volume"), pl.Float64)
_FUNDING_SCHEMA = _KEYS | dict.fromkeys(("funding_rate", "mark_price"), pl.Float64)


class AssetProfile(NamedTuple):
    """Start price (quote units), annualised volatility, and base volume per minute."""

    start_price: float
    annual_volatility: float
    volume_per_minute: float


# Early-2024 levels and typical Binance spot activity, rounded.
ASSET_PROFILES: dict[str, AssetProfile] = {
    "BTCUSDT": AssetProfile(42_000.0, 0.50, 20.0),
    "ETHUSDT": AssetProfile(2_300.0, 0.60, 250.0),
    "SOLUSDT": AssetProfile(100.0, 0.90, 2_500.0),
    "BNBUSDT": AssetProfile(310.0, 0.55, 600.0),
    "XRPUSDT": AssetProfile(0.6, 0.70, 400_000.0),
    "DOGEUSDT": AssetProfile(0.09, 0.85, 1_500_000.0),
    "ADAUSDT": AssetProfile(0.6, 0.75, 300_000.0),
    "AVAXUSDT": AssetProfile(38.0, 0.90, 4_000.0),
    "LINKUSDT": AssetProfile(15.0, 0.80, 8_000.0),
}
# Any other symbol trades like a mid-cap alt starting at 10.
FALLBACK_PROFILE = AssetProfile(10.0, 0.85, 10_000.0)


class SyntheticMarketConfig(FrozenConfig):
    """The synthetic market: seed, universe, correlation and the model's parameters.

    Months are 30 days; drifts are annualised log returns; durations are expected regime
    lengths. Symbols outside ``ASSET_PROFILES`` use ``FALLBACK_PROFILE``.

    Examples
    --------
    >>> cfg = SyntheticMarketConfig(seed=1, correlation=0.3)
    >>> cfg.symbols[0], cfg.origin.isoformat()
    ('BTCUSDT', '2024-01-01')
    """

    seed: int = Field(default=7, ge=0)
    symbols: tuple[str, ...] = DEFAULT_SYMBOLS
    correlation: float = Field(default=0.6, ge=0.0, le=0.99)
    origin: dt.date = dt.date(2024, 1, 1)
    tail_degrees_of_freedom: float = Field(default=4.0, gt=2.0)
    garch_alpha: float = Field(default=0.08, ge=0.0, lt=1.0)
    garch_beta: float = Field(default=0.88, ge=0.0, lt=1.0)
    jumps_per_month: float = Field(default=1.5, ge=0.0)
    jump_size_hourly_sigmas: float = Field(default=5.0, ge=0.0)
    calm_duration_days: float = Field(default=30.0, gt=0.0)
    stressed_duration_days: float = Field(default=10.0, gt=0.0)
    calm_drift_annual: float = 0.5
    stressed_drift_annual: float = -1.0
    calm_volatility_multiplier: float = Field(default=0.75, gt=0.0)
    stressed_volatility_multiplier: float = Field(default=1.5, gt=0.0)
    intraday_volume_amplitude: float = Field(default=0.35, ge=0.0, lt=1.0)
    volume_peak_hour_utc: float = Field(default=15.0, ge=0.0, lt=24.0)
    funding_mean_8h: float = 0.0001
    funding_persistence: float = Field(default=0.7, ge=0.0, lt=1.0)
    funding_trend_sensitivity: float = Field(default=0.005, ge=0.0)
    funding_noise_8h: float = Field(default=0.00005, ge=0.0)
    funding_bound_8h: float = Field(default=0.0075, gt=0.0)
    lead_lag_beta: float = Field(default=0.0, ge=-1.0, le=1.0)
    """A planted, learnable signal (0 is off): every other symbol's minute log return gains
    ``lead_lag_beta`` times ``lead_lag_leader``'s return ``lead_lag_minutes`` earlier, so on
    hourly bars a symbol's return is partly predicted by the leader's previous hour. For
    testing that models and the validation gate find a real edge."""
    lead_lag_leader: str = "BTCUSDT"
    lead_lag_minutes: int = Field(default=60, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _coerce(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("origin"), dt.datetime):
            data = {**data, "origin": data["origin"].date()}
        return data

    @model_validator(mode="after")
    def _check(self) -> SyntheticMarketConfig:
        if not self.symbols:
            raise ValueError("symbols is empty: name at least one symbol, e.g. ('BTCUSDT',)")
        if len(set(self.symbols)) != len(self.symbols):
            raise ValueError(f"symbols has duplicates: {list(self.symbols)}")
        if self.garch_alpha + self.garch_beta >= 1.0:
            raise ValueError(
                f"garch_alpha + garch_beta = {self.garch_alpha + self.garch_beta} must be "
                "below 1 for a stationary variance; lower one of them"
            )
        if self.lead_lag_beta and self.lead_lag_leader not in self.symbols:
            raise ValueError(
                f"lead_lag_leader={self.lead_lag_leader!r} is not among symbols "
                f"{list(self.symbols)}: the planted lead-lag needs its leader simulated"
            )
        return self

    @property
    def origin_ms(self) -> int:
        """``origin`` (00:00 UTC) as epoch milliseconds: the first simulated minute."""
        moment = dt.datetime(self.origin.year, self.origin.month, self.origin.day, tzinfo=dt.UTC)
        return int(moment.timestamp()) * 1000

    def profile(self, symbol: str) -> AssetProfile:
        """The asset profile used for ``symbol``."""
        return ASSET_PROFILES.get(symbol, FALLBACK_PROFILE)


@dataclasses.dataclass(frozen=True)
class _MinutePath:
    """Minute arrays (rows: minutes from origin; columns: ``config.symbols``), read-only."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    regime: np.ndarray
    funding_rate: np.ndarray
    mark_price: np.ndarray


def _generator(seed: int, stream: int, day: int) -> np.random.Generator:
    return np.random.Generator(
        np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(stream, day)))
    )


def _stream_key(symbol: str) -> int:
    # Stream 0 is the market; crc32 + 1 is stable across runs and platforms, unlike hash().
    return zlib.crc32(symbol.encode()) + 1


def _student_t(rng: np.random.Generator, df: float, size: int) -> np.ndarray:
    # Rescaled to unit variance so that GARCH variances and volatilities keep their meaning.
    return rng.standard_t(df, size) * math.sqrt((df - 2.0) / df)


def _market_draws(config: SyntheticMarketConfig, n_days: int) -> dict[str, np.ndarray]:
    n = n_days * MINUTES_PER_DAY
    names = ("factor", "regime", "jump_uniform", "jump_size")
    out = {name: np.empty(n) for name in names}
    for day in range(n_days):
        rng = _generator(config.seed, 0, day)
        rows = slice(day * MINUTES_PER_DAY, (day + 1) * MINUTES_PER_DAY)
        # The order of the draws below is part of the data: do not reorder.
        out["factor"][rows] = _student_t(rng, config.tail_degrees_of_freedom, MINUTES_PER_DAY)
        out["regime"][rows] = rng.random(MINUTES_PER_DAY)
        out["jump_uniform"][rows] = rng.random(MINUTES_PER_DAY)
        out["jump_size"][rows] = rng.standard_normal(MINUTES_PER_DAY)
    return out


def _asset_draws(config: SyntheticMarketConfig, n_days: int) -> dict[str, np.ndarray]:
    n, k = n_days * MINUTES_PER_DAY, len(config.symbols)
    names = ("shock", "high", "low", "jump_uniform", "jump_size", "volume_noise")
    out = {name: np.empty((n, k)) for name in names}
    out["funding_noise"] = np.empty((3 * n_days, k))
    for j, symbol in enumerate(config.symbols):
        stream = _stream_key(symbol)
        for day in range(n_days):
            rng = _generator(config.seed, stream, day)
            rows = slice(day * MINUTES_PER_DAY, (day + 1) * MINUTES_PER_DAY)
            # The order of the draws below is part of the data: do not reorder.
            df = config.tail_degrees_of_freedom
            out["shock"][rows, j] = _student_t(rng, df, MINUTES_PER_DAY)
            out["high"][rows, j] = rng.standard_exponential(MINUTES_PER_DAY)
            out["low"][rows, j] = rng.standard_exponential(MINUTES_PER_DAY)
            out["jump_uniform"][rows, j] = rng.random(MINUTES_PER_DAY)
            out["jump_size"][rows, j] = rng.standard_normal(MINUTES_PER_DAY)
            out["volume_noise"][rows, j] = rng.lognormal(-0.045, 0.3, MINUTES_PER_DAY)
            out["funding_noise"][3 * day : 3 * day + 3, j] = rng.standard_normal(3)
    return out


@functools.lru_cache(maxsize=4)
def _simulate_minutes(config: SyntheticMarketConfig, n_days: int) -> _MinutePath:
    """Simulate ``n_days`` whole days of minutes from ``config.origin`` (cached)."""
    market = _market_draws(config, n_days)
    assets = _asset_draws(config, n_days)
    n = n_days * MINUTES_PER_DAY
    profiles = [config.profile(s) for s in config.symbols]
    sigma = np.array([p.annual_volatility for p in profiles]) / math.sqrt(MINUTES_PER_YEAR)
    rho = config.correlation

    regime = markov_two_state_path(
        market["regime"],
        1.0 / (config.calm_duration_days * MINUTES_PER_DAY),
        1.0 / (config.stressed_duration_days * MINUTES_PER_DAY),
        0,
    )
    stressed = regime == 1
    multiplier = np.where(
        stressed, config.stressed_volatility_multiplier, config.calm_volatility_multiplier
    )
    drift = np.where(stressed, config.stressed_drift_annual, config.calm_drift_annual)
    scale = multiplier[:, None] * sigma[None, :]

    # GARCH runs on the hourly clock (variance updated from each hour's return): a minute
    # GARCH strong enough to cluster hourly volatility would need an explosive vol-of-vol
    # under Student-t(4) shocks, which have no fourth moment.
    market_variance = garch_unit_variance(
        market["factor"][:, None], config.garch_alpha, config.garch_beta, 60
    )
    asset_variance = garch_unit_variance(assets["shock"], config.garch_alpha, config.garch_beta, 60)
    # Both variances scale the whole return (market vol x own vol), so the conditional
    # correlation is exactly `correlation` at every minute, and realised correlation stays
    # near it even over short samples, while volatility still co-moves across assets.
    scale = scale * np.sqrt(market_variance * asset_variance)
    diffusion = scale * (
        math.sqrt(rho) * market["factor"][:, None] + math.sqrt(1.0 - rho) * assets["shock"]
    )
    # Jumps are Poisson events, market-wide or for one asset, sized in hourly standard
    # deviations. Like the diffusion they load sqrt(rho) on the common part and sqrt(1 - rho)
    # on the own part, so they do not pull the realised correlation away from `correlation`.
    minute_rate = config.jumps_per_month / (DAYS_PER_MONTH * MINUTES_PER_DAY)
    common = np.where(market["jump_uniform"] < minute_rate, market["jump_size"], 0.0)
    own = np.where(assets["jump_uniform"] < minute_rate, assets["jump_size"], 0.0)
    jumps = math.sqrt(rho) * common[:, None] + math.sqrt(1.0 - rho) * own
    jump_scale = config.jump_size_hourly_sigmas * math.sqrt(60.0)
    returns = drift[:, None] / MINUTES_PER_YEAR + diffusion + jump_scale * scale * jumps
    if config.lead_lag_beta:
        leader = config.symbols.index(config.lead_lag_leader)
        lag = config.lead_lag_minutes
        followers = [j for j in range(len(profiles)) if j != leader]
        returns[lag:, followers] += config.lead_lag_beta * returns[:-lag, leader, None]

    log_prices = np.empty((n + 1, len(profiles)))
    log_prices[0] = np.log([p.start_price for p in profiles])
    log_prices[1:] = log_prices[0] + np.cumsum(returns, axis=0)
    # The bridge uses the diffusive volatility: a jump is a gap, not an intrabar excursion.
    open_, high, low, close = ohlc_from_log_prices(log_prices, scale, assets["high"], assets["low"])

    # Volume: a UTC time-of-day cycle (busiest at the US/EU overlap) times activity that grows
    # with |return| in units of the asset's base volatility, times lognormal noise.
    phase = np.arange(MINUTES_PER_DAY) / MINUTES_PER_DAY - config.volume_peak_hour_utc / 24.0
    season = 1.0 + config.intraday_volume_amplitude * np.cos(2.0 * np.pi * phase)
    season_by_minute = np.tile(season, n_days)
    activity = 0.3 + 0.7 * np.abs(returns) / (sigma[None, :] * math.sqrt(2.0 / math.pi))
    base_volume = np.array([p.volume_per_minute for p in profiles])
    volume = base_volume[None, :] * season_by_minute[:, None] * activity * assets["volume_noise"]

    # Funding settles at 00, 08 and 16 UTC and is tilted by the trailing 24h log return.
    settle = np.arange(3 * n_days) * (FUNDING_INTERVAL_MS // MINUTE_MS)
    trend = log_prices[settle] - log_prices[np.maximum(settle - MINUTES_PER_DAY, 0)]
    funding = funding_rate_path(
        trend,
        assets["funding_noise"] * config.funding_noise_8h,
        config.funding_mean_8h,
        config.funding_persistence,
        config.funding_trend_sensitivity,
        config.funding_bound_8h,
    )
    path = _MinutePath(
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=volume,
        regime=regime,
        funding_rate=funding,
        mark_price=open_[settle],
    )
    for field in dataclasses.fields(path):
        getattr(path, field.name).flags.writeable = False
    return path


class SyntheticSource:
    """A seeded synthetic market behind the ``Source`` protocol.

    Parameters
    ----------
    config
        The market to simulate. Its ``.id`` identifies the data: same config, same bytes.

    Examples
    --------
    >>> source = SyntheticSource(SyntheticMarketConfig(seed=7))
    >>> bars = source.fetch(
    ...     dataset="bars", symbols=["BTCUSDT"], interval="1h",
    ...     start_ms=1_704_067_200_000, end_ms=1_704_153_600_000,
    ... )
    >>> bars.shape
    (24, 7)
    """

    name = "synthetic"

    def __init__(self, config: SyntheticMarketConfig) -> None:
        self.config = config

    def fetch(
        self,
        *,
        dataset: str,
        symbols: Sequence[str],
        interval: str,
        start_ms: int,
        end_ms: int,
    ) -> pl.DataFrame:
        """Bars or funding for ``symbols`` over ``[start_ms, end_ms)``, sorted by symbol, ts.

        Parameters
        ----------
        dataset
            ``"bars"`` (ts, symbol, open, high, low, close, volume; ts is the bar's open) or
            ``"funding"`` (ts, symbol, funding_rate, mark_price at each 8h settlement).
        symbols
            Any of ``config.symbols``.
        interval
            For bars one of ``INTERVAL_MS`` (``start_ms`` and ``end_ms`` must lie on its grid);
            for funding ``"8h"``.
        start_ms, end_ms
            Epoch milliseconds, half-open; ``start_ms`` may not precede ``config.origin``.

        Examples
        --------
        >>> source = SyntheticSource(SyntheticMarketConfig())
        >>> funding = source.fetch(
        ...     dataset="funding", symbols=["ETHUSDT"], interval="8h",
        ...     start_ms=1_704_067_200_000, end_ms=1_704_153_600_000,
        ... )
        >>> funding["ts"].diff().drop_nulls().unique().to_list()
        [28800000]
        """
        if dataset not in DATASETS:
            raise ValueError(f"dataset={dataset!r} is unknown; use one of {list(DATASETS)}")
        columns, names = self._columns(symbols)
        if dataset == "funding":
            if interval != FUNDING_INTERVAL:
                raise ValueError(
                    f"interval={interval!r} does not fit dataset='funding': funding settles "
                    f"every 8 hours, pass interval={FUNDING_INTERVAL!r}"
                )
            return self._funding(columns, names, start_ms, end_ms)
        if interval not in INTERVAL_MS:
            raise ValueError(f"interval={interval!r} is unknown; use one of {list(INTERVAL_MS)}")
        return self._bars(columns, names, INTERVAL_MS[interval], start_ms, end_ms)

    def regimes(self, *, interval: str, start_ms: int, end_ms: int) -> pl.DataFrame:
        """The hidden market regime in force at each bar's open: 0 calm/bull, 1 stressed/bear.

        This is ground truth for research on regime detection; a real source has no such
        column.

        Examples
        --------
        >>> source = SyntheticSource(SyntheticMarketConfig())
        >>> source.regimes(interval="1d", start_ms=1_704_067_200_000,
        ...                end_ms=1_704_153_600_000)["regime"].to_list()
        [0]
        """
        if interval not in INTERVAL_MS:
            raise ValueError(f"interval={interval!r} is unknown; use one of {list(INTERVAL_MS)}")
        step_ms = INTERVAL_MS[interval]
        first, last = self._minute_range(start_ms, end_ms, step_ms)
        schema = {"ts": pl.Int64, "regime": pl.Int8}
        if last == first:
            return pl.DataFrame(schema=schema)
        ts = np.arange(start_ms, end_ms, step_ms, dtype=np.int64)
        regime = self._path(end_ms).regime[first : last : step_ms // MINUTE_MS]
        return pl.DataFrame({"ts": ts, "regime": regime}, schema=schema)

    def _columns(self, symbols: Sequence[str]) -> tuple[list[int], list[str]]:
        if isinstance(symbols, str):
            raise ValueError(f"symbols={symbols!r} must be a sequence of names, e.g. [{symbols!r}]")
        unknown = [s for s in symbols if s not in self.config.symbols]
        if unknown:
            raise ValueError(
                f"symbol {unknown[0]!r} is not in this synthetic market; use any of "
                f"{list(self.config.symbols)} or add it to SyntheticMarketConfig.symbols"
            )
        if not symbols:
            raise ValueError("symbols is empty: name at least one, e.g. ['BTCUSDT']")
        names = sorted(set(symbols))
        return [self.config.symbols.index(s) for s in names], names

    def _minute_range(self, start_ms: int, end_ms: int, step_ms: int) -> tuple[int, int]:
        origin_ms = self.config.origin_ms
        if start_ms < origin_ms:
            raise ValueError(
                f"start_ms={start_ms} ({_iso(start_ms)}) is before origin "
                f"({self.config.origin}): the synthetic market begins at origin; ask from "
                "there or set an earlier SyntheticMarketConfig.origin"
            )
        if end_ms < start_ms:
            raise ValueError(f"end_ms={end_ms} is before start_ms={start_ms}; swap them")
        for field, value in (("start_ms", start_ms), ("end_ms", end_ms)):
            if (value - origin_ms) % step_ms:
                raise ValueError(
                    f"{field}={value} ({_iso(value)}) is not on the {step_ms} ms bar grid; "
                    f"round it to a multiple of {step_ms} ms"
                )
        days = -(-(end_ms - origin_ms) // DAY_MS)
        if days > MAX_SIMULATED_DAYS:
            raise ValueError(
                f"end_ms={end_ms} ({_iso(end_ms)}) needs {days} days from origin; the limit is "
                f"{MAX_SIMULATED_DAYS}: ask for less or move SyntheticMarketConfig.origin"
            )
        return (start_ms - origin_ms) // MINUTE_MS, (end_ms - origin_ms) // MINUTE_MS

    def _path(self, end_ms: int) -> _MinutePath:
        # Whole days, so every request ending on the same day shares one cached simulation.
        days = -(-(end_ms - self.config.origin_ms) // DAY_MS)
        return _simulate_minutes(self.config, days)

    def _bars(
        self, columns: list[int], names: list[str], step_ms: int, start_ms: int, end_ms: int
    ) -> pl.DataFrame:
        first, last = self._minute_range(start_ms, end_ms, step_ms)
        if last == first:
            return pl.DataFrame(schema=_BARS_SCHEMA)
        path = self._path(end_ms)
        rows = slice(first, last)
        open_, high, low, close, volume = aggregate_ohlcv(
            path.open[rows][:, columns],
            path.high[rows][:, columns],
            path.low[rows][:, columns],
            path.close[rows][:, columns],
            path.volume[rows][:, columns],
            step_ms // MINUTE_MS,
        )
        n_bars = open_.shape[0]
        ts = np.arange(start_ms, end_ms, step_ms, dtype=np.int64)
        # Column-major ravel lays each symbol's bars out contiguously: sorted by symbol, ts.
        return pl.DataFrame(
            {
                "ts": np.tile(ts, len(names)),
                "symbol": np.repeat(names, n_bars),
                "open": open_.ravel(order="F"),
                "high": high.ravel(order="F"),
                "low": low.ravel(order="F"),
                "close": close.ravel(order="F"),
                "volume": volume.ravel(order="F"),
            },
            schema=_BARS_SCHEMA,
        )

    def _funding(
        self, columns: list[int], names: list[str], start_ms: int, end_ms: int
    ) -> pl.DataFrame:
        first, last = self._minute_range(start_ms, end_ms, MINUTE_MS)
        origin_ms = self.config.origin_ms
        # Settlements are the 8h grid points inside [start_ms, end_ms).
        first_settle = -(-first * MINUTE_MS // FUNDING_INTERVAL_MS)
        last_settle = -(-last * MINUTE_MS // FUNDING_INTERVAL_MS)
        if last_settle <= first_settle:
            return pl.DataFrame(schema=_FUNDING_SCHEMA)
        path = self._path(end_ms)
        rows = slice(first_settle, last_settle)
        ts = origin_ms + np.arange(first_settle, last_settle, dtype=np.int64) * FUNDING_INTERVAL_MS
        return pl.DataFrame(
            {
                "ts": np.tile(ts, len(names)),
                "symbol": np.repeat(names, ts.shape[0]),
                "funding_rate": path.funding_rate[rows][:, columns].ravel(order="F"),
                "mark_price": path.mark_price[rows][:, columns].ravel(order="F"),
            },
            schema=_FUNDING_SCHEMA,
        )


def _iso(ts_ms: int) -> str:
    return dt.datetime.fromtimestamp(ts_ms / 1000, tz=dt.UTC).strftime("%Y-%m-%dT%H:%MZ")
