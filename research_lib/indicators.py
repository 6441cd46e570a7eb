"""The indicator registry: one entry per indicator, shared by the polars API and the benchmarks.

Each entry says which columns a kernel reads, its parameters (public keyword names with units,
in the kernel's positional order), its outputs, and the reference it must match. ``compute``
runs any entry on numpy arrays; ``research_lib.features`` turns entries into polars
expressions (``pl.col("close").ta.rsi(14)``, ``pl.struct("high", "low", "close").ta.atr(14)``)
and frame methods (``bars.ta.macd()``).

Examples
--------
>>> import numpy as np
>>> out = compute("sma", {"close": np.array([1.0, 2.0, 3.0])}, window_bars=2)
>>> out["sma"].tolist()
[nan, 1.5, 2.5]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from kernels import momentum, rolling, trend, volatility, volume


@dataclass(frozen=True)
class Param:
    """One parameter: its keyword name, default, type and smallest allowed value."""

    name: str
    default: int | float
    minimum: int | float = 1

    @property
    def kind(self) -> type:
        return int if isinstance(self.default, int) else float


@dataclass(frozen=True)
class Indicator:
    """How to call one kernel: ``kernel(*inputs, *params, *outs)``."""

    name: str
    family: str
    kernel: Callable[..., object]
    inputs: tuple[str, ...]
    params: tuple[Param, ...]
    outputs: tuple[str, ...]
    reference: str
    """What the kernel must match: a TA-Lib function, or a pandas expression."""
    talib: Callable[..., object] | None = None
    """``talib(module, arrays, *params) -> outputs``: TA-Lib's same indicator, called the way
    it must match (tests and benchmarks only; TA-Lib is not a runtime dependency)."""

    def resolve(self, args: tuple[object, ...], kwargs: Mapping[str, object]) -> tuple:
        """Positional and keyword parameters -> checked values in kernel order."""
        if len(args) > len(self.params):
            raise TypeError(
                f"{self.name}() takes at most {len(self.params)} parameters "
                f"({', '.join(p.name for p in self.params)}), got {len(args)}"
            )
        unknown = sorted(set(kwargs) - {p.name for p in self.params})
        if unknown:
            raise TypeError(
                f"{self.name}() got unknown parameter(s) {unknown}; "
                f"its parameters are {[p.name for p in self.params]}"
            )
        values = []
        for i, param in enumerate(self.params):
            if i < len(args):
                if param.name in kwargs:
                    raise TypeError(f"{self.name}() got {param.name!r} twice")
                value = args[i]
            else:
                value = kwargs.get(param.name, param.default)
            values.append(_check_param(self.name, param, value))
        return tuple(values)


def _check_param(indicator: str, param: Param, value: object) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{indicator}: {param.name} must be a number, got {value!r}")
    if param.kind is int and float(value) != int(value):
        raise TypeError(f"{indicator}: {param.name} must be a whole number, got {value!r}")
    if not np.isfinite(float(value)) or value < param.minimum:
        raise ValueError(
            f"{indicator}: {param.name} must be >= {param.minimum}, got {value!r}; "
            f"the default is {param.default}"
        )
    return param.kind(value)


REGISTRY: dict[str, Indicator] = {}


def register(indicator: Indicator) -> Indicator:
    """Add ``indicator`` to the registry (names are unique)."""
    if indicator.name in REGISTRY:
        raise ValueError(f"indicator {indicator.name!r} is registered twice")
    REGISTRY[indicator.name] = indicator
    return indicator


def get(name: str) -> Indicator:
    """The registry entry called ``name``; the error lists the known names."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown indicator {name!r}; known indicators: {sorted(REGISTRY)}"
        ) from None


def compute(name: str, arrays: Mapping[str, np.ndarray], *args: object, **kwargs: object) -> dict:
    """Run indicator ``name`` on float64 arrays keyed by input column; outputs by name."""
    spec = get(name)
    missing = [c for c in spec.inputs if c not in arrays]
    if missing:
        raise ValueError(f"{name} needs column(s) {list(spec.inputs)}; missing {missing}")
    inputs = [np.ascontiguousarray(arrays[c], dtype=np.float64) for c in spec.inputs]
    lengths = {len(a) for a in inputs}
    if len(lengths) != 1:
        raise ValueError(f"{name}: inputs {list(spec.inputs)} differ in length: {sorted(lengths)}")
    outs = [np.empty_like(inputs[0]) for _ in spec.outputs]
    spec.kernel(*inputs, *spec.resolve(args, kwargs), *outs)
    return dict(zip(spec.outputs, outs, strict=True))


def _p(name: str, default: int | float, minimum: int | float = 1) -> Param:
    return Param(name, default, minimum)


WINDOW = _p("window_bars", 14, 2)


def _ta(fn: str, inputs: tuple[str, ...], **fixed: object) -> Callable[..., object]:
    """A recipe calling ``talib.<fn>(*inputs, *params, **fixed)``."""

    def call(talib: object, arrays: Mapping[str, np.ndarray], *params: object) -> object:
        return getattr(talib, fn)(*(arrays[c] for c in inputs), *params, **fixed)

    return call


CLOSE = ("close",)
HLC = ("high", "low", "close")
HLCV = ("high", "low", "close", "volume")
HOUR_MS = 3_600_000


def _anchored_vwap(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume_: np.ndarray,
    ts: np.ndarray,
    session_hours: int,
    out: np.ndarray,
) -> np.ndarray:
    """VWAP anchored at each session start: where ``ts`` crosses a multiple of the session."""
    session = ts.astype(np.int64) // (session_hours * HOUR_MS)
    starts = np.empty(len(ts), dtype=np.bool_)
    starts[:1] = True
    np.not_equal(session[1:], session[:-1], out=starts[1:])
    return volume.anchored_vwap(high, low, close, volume_, starts, out)


for _spec in (
    Indicator("sma", "trend", trend.sma, CLOSE, (_p("window_bars", 20),),
              ("sma",), "talib.SMA", _ta("SMA", CLOSE)),
    Indicator("ema", "trend", rolling.ema, CLOSE, (_p("span_bars", 20),),
              ("ema",), "talib.EMA", _ta("EMA", CLOSE)),
    Indicator("rolling_std", "volatility",
              lambda x, n, out: rolling.rolling_std(x, n, 0, out),
              CLOSE, (_p("window_bars", 20, 2),), ("rolling_std",),
              "talib.STDDEV(nbdev=1) == pandas rolling(n).std(ddof=0)",
              _ta("STDDEV", CLOSE, nbdev=1)),
    Indicator("zscore", "volatility", rolling.rolling_zscore, CLOSE,
              (_p("window_bars", 20, 2),), ("zscore",),
              "(x - x.rolling(n).mean()) / x.rolling(n).std(ddof=0)"),
    Indicator("rsi", "momentum", momentum.rsi, CLOSE, (WINDOW,), ("rsi",),
              "talib.RSI", _ta("RSI", CLOSE)),
    Indicator("stoch", "momentum", momentum.stochastic, HLC,
              (_p("fastk_bars", 14), _p("slowk_bars", 3), _p("slowd_bars", 3)),
              ("stoch_k", "stoch_d"), "talib.STOCH (SMA smoothing)",
              lambda ta, a, fk, sk, sd: ta.STOCH(
                  a["high"], a["low"], a["close"], fk, sk, 0, sd, 0)),
    Indicator("stochf", "momentum", momentum.fast_stochastic, HLC,
              (_p("fastk_bars", 14), _p("fastd_bars", 3)), ("stochf_k", "stochf_d"),
              "talib.STOCHF (SMA smoothing)",
              lambda ta, a, fk, fd: ta.STOCHF(a["high"], a["low"], a["close"], fk, fd, 0)),
    Indicator("stochrsi", "momentum", momentum.stochastic_rsi, CLOSE,
              (_p("rsi_bars", 14, 2), _p("fastk_bars", 5), _p("fastd_bars", 3)),
              ("stochrsi_k", "stochrsi_d"), "talib.STOCHRSI (SMA smoothing)",
              _ta("STOCHRSI", CLOSE, fastd_matype=0)),
    Indicator("willr", "momentum", momentum.williams_r, HLC, (WINDOW,), ("willr",),
              "talib.WILLR", _ta("WILLR", HLC)),
    Indicator("cci", "momentum", momentum.cci, HLC, (WINDOW,), ("cci",), "talib.CCI",
              _ta("CCI", HLC)),
    Indicator("mfi", "momentum", momentum.mfi, HLCV, (WINDOW,), ("mfi",), "talib.MFI",
              _ta("MFI", HLCV)),
    Indicator("roc", "momentum", momentum.roc, CLOSE, (_p("window_bars", 10),), ("roc",),
              "talib.ROC (percent)", _ta("ROC", CLOSE)),
    Indicator("momentum", "momentum", momentum.momentum, CLOSE, (_p("window_bars", 10),),
              ("momentum",), "talib.MOM", _ta("MOM", CLOSE)),
    Indicator("wma", "trend", trend.wma, CLOSE, (_p("window_bars", 20),), ("wma",),
              "talib.WMA", _ta("WMA", CLOSE)),
    Indicator("dema", "trend", trend.dema, CLOSE, (_p("span_bars", 20),), ("dema",),
              "talib.DEMA", _ta("DEMA", CLOSE)),
    Indicator("tema", "trend", trend.tema, CLOSE, (_p("span_bars", 20),), ("tema",),
              "talib.TEMA", _ta("TEMA", CLOSE)),
    Indicator("trix", "trend", trend.trix, CLOSE, (_p("span_bars", 15),), ("trix",),
              "talib.TRIX", _ta("TRIX", CLOSE)),
    Indicator("kama", "trend", trend.kama, CLOSE, (_p("window_bars", 30, 2),), ("kama",),
              "talib.KAMA", _ta("KAMA", CLOSE)),
    Indicator("macd", "trend", trend.macd, CLOSE,
              (_p("fast_bars", 12), _p("slow_bars", 26), _p("signal_bars", 9)),
              ("macd", "macd_signal", "macd_hist"), "talib.MACD (TA-Lib's fast-EMA seed)",
              _ta("MACD", CLOSE)),
    Indicator("adx", "trend", trend.adx, HLC, (WINDOW,), ("adx", "plus_di", "minus_di"),
              "talib.ADX, talib.PLUS_DI, talib.MINUS_DI",
              lambda ta, a, n: (ta.ADX(a["high"], a["low"], a["close"], n),
                                ta.PLUS_DI(a["high"], a["low"], a["close"], n),
                                ta.MINUS_DI(a["high"], a["low"], a["close"], n))),
    Indicator("aroon", "trend", trend.aroon, ("high", "low"), (WINDOW,),
              ("aroon_down", "aroon_up"), "talib.AROON", _ta("AROON", ("high", "low"))),
    Indicator("aroon_oscillator", "trend", trend.aroon_oscillator, ("high", "low"), (WINDOW,),
              ("aroon_oscillator",), "talib.AROONOSC", _ta("AROONOSC", ("high", "low"))),
    Indicator("ichimoku", "trend", trend.ichimoku, HLC,
              (_p("conversion_bars", 9), _p("base_bars", 26), _p("span_b_bars", 52)),
              ("ichimoku_conversion", "ichimoku_base", "ichimoku_span_a", "ichimoku_span_b",
               "ichimoku_lagging"),
              "midpoints of rolling high/low; spans stored at the bar that computes them "
              "(plot them 26 bars ahead)"),
    Indicator("sar", "trend", trend.parabolic_sar, ("high", "low"),
              (_p("acceleration", 0.02, 1e-6), _p("max_acceleration", 0.2, 1e-6)), ("sar",),
              "talib.SAR", _ta("SAR", ("high", "low"))),
    # volatility
    Indicator("bbands", "volatility", volatility.bollinger_bands, CLOSE,
              (_p("window_bars", 20, 2), _p("deviations_up", 2.0, 0.0),
               _p("deviations_down", 2.0, 0.0)),
              ("bb_upper", "bb_middle", "bb_lower"), "talib.BBANDS(matype=0)",
              _ta("BBANDS", CLOSE, matype=0)),
    Indicator("bb_percent_b", "volatility", volatility.bollinger_percent_b_bandwidth, CLOSE,
              (_p("window_bars", 20, 2), _p("deviations_up", 2.0, 0.0),
               _p("deviations_down", 2.0, 0.0)),
              ("bb_percent_b", "bb_bandwidth"),
              "(c - lower) / (upper - lower); (upper - lower) / middle"),
    Indicator("atr", "volatility", volatility.atr, HLC, (WINDOW,), ("atr",), "talib.ATR",
              _ta("ATR", HLC)),
    Indicator("natr", "volatility", volatility.natr, HLC, (WINDOW,), ("natr",), "talib.NATR",
              _ta("NATR", HLC)),
    Indicator("keltner", "volatility", volatility.keltner_channels, HLC,
              (_p("ema_window_bars", 20), _p("atr_window_bars", 10),
               _p("atr_multiplier", 2.0, 0.0)),
              ("keltner_upper", "keltner_middle", "keltner_lower"),
              "talib.EMA(close, n) +- k * talib.ATR(high, low, close, m)"),
    Indicator("donchian", "volatility", volatility.donchian_channels, ("high", "low"),
              (_p("window_bars", 20),), ("donchian_upper", "donchian_middle", "donchian_lower"),
              "high.rolling(n).max(), low.rolling(n).min() and their mean"),
    Indicator("cc_volatility", "volatility", volatility.close_to_close_volatility, CLOSE,
              (_p("window_bars", 20, 2),), ("cc_volatility",),
              "log(close).diff().rolling(n).std(ddof=1), per bar"),
    Indicator("parkinson_volatility", "volatility", volatility.parkinson_volatility,
              ("high", "low"), (_p("window_bars", 20),), ("parkinson_volatility",),
              "sqrt(mean(log(h/l)^2) / (4 ln 2)) over n bars, per bar"),
    Indicator("garman_klass_volatility", "volatility", volatility.garman_klass_volatility,
              ("open", "high", "low", "close"), (_p("window_bars", 20),),
              ("garman_klass_volatility",),
              "sqrt(mean(0.5 log(h/l)^2 - (2 ln 2 - 1) log(c/o)^2)) over n bars, per bar"),
    # volume
    Indicator("obv", "volume", volume.obv, ("close", "volume"), (), ("obv",), "talib.OBV",
              _ta("OBV", ("close", "volume"))),
    Indicator("vwap", "volume", volume.rolling_vwap, HLCV, (_p("window_bars", 20),), ("vwap",),
              "sum(typical * volume) / sum(volume) over n bars, typical = (h + l + c) / 3"),
    Indicator("anchored_vwap", "volume", _anchored_vwap, (*HLCV, "ts"),
              (_p("session_hours", 24),), ("anchored_vwap",),
              "groupby(session).cumsum(typical * volume) / cumsum(volume)"),
    Indicator("ad", "volume", volume.ad_line, HLCV, (), ("ad",), "talib.AD", _ta("AD", HLCV)),
    Indicator("cmf", "volume", volume.chaikin_money_flow, HLCV, (_p("window_bars", 20),),
              ("cmf",), "sum(money flow volume) / sum(volume) over n bars"),
    Indicator("adosc", "volume", volume.chaikin_oscillator, HLCV,
              (_p("fast_bars", 3), _p("slow_bars", 10)), ("adosc",), "talib.ADOSC",
              _ta("ADOSC", HLCV)),
    Indicator("volume_oscillator", "volume", volume.volume_oscillator, ("volume",),
              (_p("fast_bars", 5), _p("slow_bars", 10)), ("volume_oscillator",),
              "100 * (ema(volume, fast) - ema(volume, slow)) / ema(volume, slow)"),
):  # fmt: skip
    register(_spec)
