"""Frozen, typed configs: one object flows from a notebook's parameters to the reports.

Every config rejects unknown fields (``extra="forbid"``), cannot be mutated, and carries an
``.id``: the sha256 of its canonical JSON. Two configs with the same values have the same id,
whatever the order their fields were given in.

Examples
--------
>>> cfg = BacktestConfig(fee_bps=5)
>>> cfg.id == BacktestConfig(fee_bps=5.0).id
True
>>> len(cfg.id)
64
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

INTERVAL_MS: dict[str, int] = {
    "1m": 60_000,
    "5m": 300_000,
    "15m": 900_000,
    "1h": 3_600_000,
    "4h": 14_400_000,
    "1d": 86_400_000,
}
Interval = Literal["1m", "5m", "15m", "1h", "4h", "1d"]


class FrozenConfig(BaseModel):
    """Base for every config: frozen, strict about unknown fields, hashed into ``.id``."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)

    def canonical_json(self) -> str:
        """The config as JSON with sorted keys and no whitespace: the input to ``.id``."""
        payload = {"type": type(self).__name__, "fields": self.model_dump(mode="json")}
        return json.dumps(payload, sort_keys=True, separators=(",", ":"))

    @property
    def id(self) -> str:
        """sha256 of the canonical JSON, as 64 hex digits."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()

    @property
    def short_id(self) -> str:
        """The first 10 hex digits of ``.id``, for file names and tables."""
        return self.id[:10]


def _to_date(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.date()
    return value


# Sources that offer only some intervals (Coinbase has no 4h candles; CoinGecko's ranges are
# hourly or daily).
_SOURCE_INTERVALS: dict[str, tuple[str, ...]] = {
    "coinbase": ("1m", "5m", "15m", "1h", "1d"),
    "coingecko": ("1h", "1d"),
}


class MarketConfig(FrozenConfig):
    """Which market data a run uses: source, symbols, bar interval and the [start, end) range.

    ``source``: ``synthetic`` (the embedded, seeded market), ``binance`` (spot klines) or
    ``binance_usdm`` (USDⓈ-M perpetual klines and funding), ``coinbase`` (Coinbase Exchange
    candles; symbols are product ids such as ``BTC-USD``), ``coingecko`` (aggregated USD price,
    market cap and volume, the ``prices`` dataset instead of bars; symbols are coin ids such as
    ``bitcoin``) or ``files`` (Binance public-data dumps or freqtrade candle files in the folder
    ``files_path``) or ``evm`` (OHLCV bars of Uniswap pools built from their on-chain events,
    read from the node at ``rpc_url``, or from a simulated local chain with
    ``rpc_url="embedded"``; symbols are pool names such as ``WETHUSDC-V3-500`` there, pool
    addresses elsewhere). Base URLs come from ``RESEARCH_BINANCE_SPOT_URL``,
    ``RESEARCH_BINANCE_USDM_URL``, ``RESEARCH_COINBASE_URL`` and ``RESEARCH_COINGECKO_URL`` when
    set.
    """

    source: Literal[
        "synthetic", "binance", "binance_usdm", "coinbase", "coingecko", "files", "evm"
    ] = "synthetic"
    symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT")
    interval: Interval = "1h"
    start: dt.date = dt.date(2024, 1, 1)
    end: dt.date = dt.date(2024, 4, 1)
    seed: int = Field(default=7, ge=0)
    files_path: str = ""
    rpc_url: str = ""

    @model_validator(mode="before")
    @classmethod
    def _coerce(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            for key in ("start", "end"):
                if key in data:
                    data[key] = _to_date(data[key])
        return data

    @model_validator(mode="after")
    def _check(self) -> MarketConfig:
        if not self.symbols:
            raise ValueError("symbols is empty: name at least one symbol, e.g. ['BTCUSDT']")
        if len(set(self.symbols)) != len(self.symbols):
            raise ValueError(f"symbols has duplicates: {list(self.symbols)}")
        if self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        allowed = _SOURCE_INTERVALS.get(self.source)
        if allowed is not None and self.interval not in allowed:
            raise ValueError(
                f"interval {self.interval!r} is not offered by source {self.source!r}; "
                f"use one of {list(allowed)}"
            )
        if (self.source == "files") != bool(self.files_path):
            raise ValueError(
                f"files_path={self.files_path!r} goes with source='files' and only with it "
                f"(source={self.source!r}): name the folder of candle files to import"
            )
        if (self.source == "evm") != bool(self.rpc_url):
            raise ValueError(
                f"rpc_url={self.rpc_url!r} goes with source='evm' and only with it "
                f"(source={self.source!r}): give a JSON-RPC URL, or 'embedded' for the local "
                "simulated chain"
            )
        return self

    @property
    def start_ms(self) -> int:
        return _date_ms(self.start)

    @property
    def end_ms(self) -> int:
        return _date_ms(self.end)

    @property
    def interval_ms(self) -> int:
        return INTERVAL_MS[self.interval]

    @property
    def periods_per_year(self) -> float:
        """Bars per year: crypto trades around the clock, 365 days a year."""
        return 365 * 86_400_000 / self.interval_ms

    @property
    def has_bars(self) -> bool:
        """Whether the source gives OHLCV bars (all but CoinGecko, which gives ``prices``)."""
        return self.source != "coingecko"

    @property
    def has_funding(self) -> bool:
        """Whether the market is a perpetual with a funding series (synthetic, Binance USDⓈ-M)."""
        return self.source in ("synthetic", "binance_usdm")

    @property
    def lake_partition(self) -> dict[str, str]:
        """The lake partition values of this market's bars."""
        return {"source": self.source, "interval": self.interval}


def _date_ms(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)


class FeatureConfig(FrozenConfig):
    """Windows of the feature set computed by the features stage."""

    ema_fast_bars: int = Field(default=12, ge=2)
    ema_slow_bars: int = Field(default=48, ge=2)
    rsi_bars: int = Field(default=14, ge=2)
    zscore_bars: int = Field(default=48, ge=2)

    @model_validator(mode="after")
    def _check(self) -> FeatureConfig:
        if self.ema_fast_bars >= self.ema_slow_bars:
            raise ValueError(
                f"ema_fast_bars ({self.ema_fast_bars}) must be below "
                f"ema_slow_bars ({self.ema_slow_bars})"
            )
        return self


class ModelConfig(FrozenConfig):
    """The baseline model: ridge regression of the next bar's log return on lagged features."""

    lags: int = Field(default=3, ge=1, le=48)
    ridge_alpha: float = Field(default=1.0, gt=0)
    n_splits: int = Field(default=4, ge=2)
    min_train_bars: int = Field(default=500, ge=50)
    families: tuple[str, ...] = ("ridge", "random_forest", "hist_gradient_boosting", "arima")
    """Model families of ``research_lib.models.walk_forward`` run side by side on the same
    walk-forward folds (``FAMILIES``: also ``mlp``, ``lstm`` and ``ensemble``)."""

    @model_validator(mode="after")
    def _check(self) -> ModelConfig:
        known = ("ridge", "random_forest", "hist_gradient_boosting", "mlp", "lstm", "arima")
        unknown = [f for f in self.families if f not in (*known, "ensemble")]
        if unknown or not self.families or len(set(self.families)) != len(self.families):
            raise ValueError(
                f"families={list(self.families)}: name each of {[*known, 'ensemble']} at most "
                "once, at least one"
            )
        return self


class StrategyConfig(FrozenConfig):
    """EMA crossover: long when the fast EMA is above the slow one; short or flat otherwise."""

    name: Literal["ema_cross"] = "ema_cross"
    fast_bars: int = Field(default=12, ge=2)
    slow_bars: int = Field(default=48, ge=2)
    allow_short: bool = False

    @model_validator(mode="after")
    def _check(self) -> StrategyConfig:
        if self.fast_bars >= self.slow_bars:
            raise ValueError(
                f"fast_bars ({self.fast_bars}) must be below slow_bars ({self.slow_bars})"
            )
        return self


class BacktestConfig(FrozenConfig):
    """How target positions become fills and PnL (conventions: ``kernels.backtest``).

    ``fill``: ``next_open``/``next_close`` fill a target decided at close t on bar t + 1;
    ``this_close`` fills it at close t. Costs: ``fee_bps`` and ``slippage_bps`` of the traded
    notional, plus square-root impact ``impact_coefficient * σ_bar * sqrt(order / bar
    volume)`` with σ_bar a causal rolling std of log returns over ``volatility_window_bars``,
    and ``gas_per_fill_quote`` per fill. Stops are fractions of the entry price (trailing: of
    the running extreme); ``0`` disables them.
    """

    fee_bps: float = Field(default=10.0, ge=0, le=1_000)
    fill: Literal["next_open", "next_close", "this_close"] = "next_open"
    initial_cash: float = Field(default=10_000.0, gt=0)
    slippage_bps: float = Field(default=0.0, ge=0, le=1_000)
    impact_coefficient: float = Field(default=0.0, ge=0, le=100)
    volatility_window_bars: int = Field(default=24, ge=2)
    gas_per_fill_quote: float = Field(default=0.0, ge=0)
    # Stops are fractions of the entry price (trailing: of the running extreme); 0 is off.
    stop_loss_fraction: float = Field(default=0.0, ge=0, lt=1)
    take_profit_fraction: float = Field(default=0.0, ge=0)
    trailing_stop_fraction: float = Field(default=0.0, ge=0, lt=1)
    apply_funding: bool = False
    """Charge perpetual funding from the market's funding series (a perp, not spot)."""


class SweepConfig(FrozenConfig):
    """A grid of SMA-crossover windows, evaluated in full by ``research_lib.sweep``.

    Every pair with ``fast < slow`` is a trial; the count is recorded for the deflated Sharpe
    ratio of the validation stage.
    """

    fast_bars: tuple[int, ...] = (4, 8, 12, 16, 24, 32, 48)
    slow_bars: tuple[int, ...] = (24, 36, 48, 72, 96, 120, 168, 240)

    @model_validator(mode="after")
    def _check(self) -> SweepConfig:
        for name, windows, low in (
            ("fast_bars", self.fast_bars, 1),
            ("slow_bars", self.slow_bars, 2),
        ):
            if not windows:
                raise ValueError(f"{name} is empty; give at least one window")
            if min(windows) < low:
                raise ValueError(f"{name} has {min(windows)}; every window must be >= {low}")
            if len(set(windows)) != len(windows):
                raise ValueError(f"{name} repeats a window: {list(windows)}")
        if min(self.fast_bars) >= max(self.slow_bars):
            raise ValueError(
                f"no pair has fast < slow (fast_bars={list(self.fast_bars)}, "
                f"slow_bars={list(self.slow_bars)})"
            )
        return self


class ValidationConfig(FrozenConfig):
    """The promotion gate's thresholds and how its evidence is gathered (``research_lib.gate``).

    A strategy passes when every criterion does: out-of-sample Sharpe (annualised) at least
    ``min_oos_sharpe``; deflated Sharpe ratio at least ``min_deflated_sharpe``; probability
    of backtest overfitting (CSCV over ``pbo_blocks`` blocks) at most ``max_pbo``; the
    out-of-sample max drawdown no deeper than ``max_drawdown``; at least ``min_trades`` fills
    out of sample; and no look-ahead or warm-up dependence found. The out-of-sample period is
    the last ``oos_fraction`` of the bars.

    ``max_pbo`` is 0.2 because the CSCV estimate is noisy: on pure noise (1,000 trials of
    2,500 bars, 16 blocks) it ranged from 0.35 to 0.69 over 12 seeds, so a bar at 0.5 would
    pass many noise sweeps. A real edge shared by most of the trials also scores high (the
    pick among equals is a coin toss); sweep distinct ideas, not near-copies of one.
    """

    min_oos_sharpe: float = 1.0
    min_deflated_sharpe: float = Field(default=0.95, ge=0, le=1)
    max_pbo: float = Field(default=0.2, ge=0, le=1)
    max_drawdown: float = Field(default=0.3, gt=0, le=1)
    min_trades: int = Field(default=20, ge=0)
    oos_fraction: float = Field(default=0.3, gt=0, lt=1)
    pbo_blocks: int = Field(default=16, ge=2, le=24)
    lookahead_checks: int = Field(default=30, ge=1)
    warmup_bars: int = Field(default=500, ge=1)
    seed: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _check(self) -> ValidationConfig:
        if self.pbo_blocks % 2:
            raise ValueError(f"pbo_blocks must be even (CSCV halves them), got {self.pbo_blocks}")
        return self


class DefiConfig(FrozenConfig):
    """The DeFi stage (``50_defi``): the embedded chain, the LP range sweep, a lending
    position to monitor and the arbitrage scan.

    The stage starts a local anvil with the real Uniswap contracts and mines ``n_blocks`` of
    seeded market history from ``start`` (``research_lib.chain_market``); it plants a
    mispricing and trades it, so it runs on that chain only (read a real network's pools
    with ``market.source="evm"`` in ``00_collect``).
    ``lp_data`` picks the minutes of the LP range sweep: the real Polygon USDC.e/WETH 0.05%
    pool from ``../shared/data/real`` (``real``), the embedded chain's WETH/USDC 0.05% pool
    (``embedded``), or the real data when it is there (``auto``). Range widths are +- fractions
    of the entry price.
    """

    seed: int = Field(default=7, ge=0)
    start: dt.date = dt.date(2024, 1, 1)
    n_blocks: int = Field(default=240, ge=10)
    block_time_s: int = Field(default=12, ge=1)
    confirmations: int = Field(default=0, ge=0)
    lp_data: Literal["auto", "real", "embedded"] = "auto"
    lp_days: float = Field(default=7.0, gt=0)
    lp_capital_usd: float = Field(default=10_000.0, gt=0)
    lp_range_widths: tuple[float, ...] = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)
    collateral_weth: float = Field(default=10.0, gt=0)
    debt_usdc: float = Field(default=15_000.0, ge=0)
    liquidation_threshold_bps: float = Field(default=8_250.0, gt=0, le=10_000)
    gas_price_gwei: float = Field(default=10.0, ge=0)
    arbitrage_shock_fraction: float = Field(default=0.02, ge=0, lt=0.5)

    @model_validator(mode="before")
    @classmethod
    def _coerce(cls, data: Any) -> Any:
        if isinstance(data, dict) and "start" in data:
            data = {**data, "start": _to_date(data["start"])}
        return data

    @model_validator(mode="after")
    def _check(self) -> DefiConfig:
        if not self.lp_range_widths or min(self.lp_range_widths) <= 0:
            raise ValueError(
                f"lp_range_widths={list(self.lp_range_widths)}: give widths > 0, e.g. [0.05]"
            )
        if max(self.lp_range_widths) >= 1:
            raise ValueError(
                f"lp_range_widths has {max(self.lp_range_widths)}: a width is a +- fraction "
                "of the price and must be < 1"
            )
        return self

    @property
    def start_ms(self) -> int:
        return _date_ms(self.start)


class RunConfig(FrozenConfig):
    """A whole run, as named by a profile: one section per stage concern."""

    name: str
    description: str = ""
    market: MarketConfig = MarketConfig()
    features: FeatureConfig = FeatureConfig()
    model: ModelConfig = ModelConfig()
    strategy: StrategyConfig = StrategyConfig()
    backtest: BacktestConfig = BacktestConfig()
    sweep: SweepConfig = SweepConfig()
    validation: ValidationConfig = ValidationConfig()
    defi: DefiConfig = DefiConfig()


SECTIONS: tuple[str, ...] = (
    "market",
    "features",
    "model",
    "strategy",
    "backtest",
    "sweep",
    "validation",
    "defi",
)
# A notebook's parameter is named after its config field, except where a bare field name
# would be ambiguous in a notebook.
PARAM_ALIASES: dict[tuple[str, str], str] = {
    ("strategy", "name"): "strategy",
    ("sweep", "fast_bars"): "sweep_fast_bars",
    ("sweep", "slow_bars"): "sweep_slow_bars",
    ("validation", "seed"): "validation_seed",
    ("model", "families"): "model_families",
}


class ConfigError(ValueError):
    """A profile or an override names an unknown key or an invalid value."""


def section_params(config: FrozenConfig, section: str) -> dict[str, Any]:
    """A section's fields as JSON-friendly notebook parameters (aliases applied)."""
    dumped = config.model_dump(mode="json")
    return {PARAM_ALIASES.get((section, k), k): v for k, v in dumped.items()}


def available_profiles() -> list[str]:
    """Profile names found in ``profiles/*.yaml``."""
    from research_lib.paths import profiles_dir

    return sorted(p.stem for p in profiles_dir().glob("*.yaml"))


def load_profile(name: str, *, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Load ``profiles/<name>.yaml``, apply dotted ``overrides`` and validate.

    Parameters
    ----------
    name
        Profile name, e.g. ``"demo"``.
    overrides
        Dotted keys to values, e.g. ``{"backtest.fee_bps": 5}``.

    Raises
    ------
    ConfigError
        For an unknown profile, an unknown key (named in full) or an invalid value.

    Examples
    --------
    >>> load_profile("demo", overrides={"backtest.fee_bps": 2}).backtest.fee_bps
    2.0
    """
    import yaml

    from research_lib.paths import profiles_dir

    path = profiles_dir() / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(
            f"unknown profile {name!r}: no {path}; available profiles: {available_profiles()}"
        )
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"profile {name!r} must be a mapping, got {type(raw).__name__}")
    raw.setdefault("name", name)
    for dotted, value in (overrides or {}).items():
        _set_dotted(raw, dotted, value, profile=name)
    return _validate(raw, profile=name)


def _set_dotted(raw: dict[str, Any], dotted: str, value: Any, *, profile: str) -> None:
    section, _, key = dotted.partition(".")
    if not key:
        raise ConfigError(
            f"override {dotted!r} must be <section>.<key>, e.g. backtest.fee_bps; "
            f"sections: {list(SECTIONS)}"
        )
    if section not in SECTIONS:
        raise ConfigError(
            f"unknown parameter {dotted!r} (profile {profile!r}): no section {section!r}; "
            f"sections: {list(SECTIONS)}"
        )
    target = raw.setdefault(section, {})
    if target is None:
        target = raw[section] = {}
    target[key] = value


def _validate(raw: dict[str, Any], *, profile: str) -> RunConfig:
    from pydantic import ValidationError

    try:
        return RunConfig.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            if err["type"] == "extra_forbidden":
                section = str(err["loc"][0])
                known = _known_keys(section)
                problems.append(f"unknown parameter {where!r}; known keys here: {known}")
            else:
                problems.append(f"{where} = {err.get('input')!r}: {err['msg']}")
        raise ConfigError(f"profile {profile!r}: " + "; ".join(problems)) from None


def _known_keys(section: str) -> list[str]:
    model = RunConfig.model_fields.get(section)
    if model is None or not isinstance(model.annotation, type):
        return sorted(RunConfig.model_fields)
    return sorted(model.annotation.model_fields)
