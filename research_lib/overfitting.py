"""Overfitting statistics: PSR, minimum track record length, deflated Sharpe ratio and PBO.

References
----------
- Bailey & López de Prado (2012), "The Sharpe Ratio Efficient Frontier", Journal of Risk 15(2):
  the probabilistic Sharpe ratio (PSR) and the minimum track record length (MinTRL).
- Bailey & López de Prado (2014), "The Deflated Sharpe Ratio", Journal of Portfolio Management
  40(5): the expected maximum Sharpe of N trials and the deflated Sharpe ratio (DSR).
- Bailey, Borwein, López de Prado & Zhu (2017), "The Probability of Backtest Overfitting",
  Journal of Computational Finance 20(4): CSCV and the PBO.

Units
-----
Every Sharpe ratio here is **per period** (per return observation, zero risk-free rate:
``mean / std(ddof=1)``) unless a ``periods_per_year`` argument says the inputs are annualised.
Kurtosis is the **non-excess** kurtosis the papers use (3 for normal returns); skewness and
kurtosis of a return series are the population (biased) moment ratios ``m3 / m2**1.5`` and
``m4 / m2**2``. Track record lengths count return observations.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

import numpy as np

from kernels import stats as stats_nb

EULER_MASCHERONI = 0.5772156649015329
MAX_BLOCKS = 24  # C(24, 12) = 2.7 million combinations; beyond that CSCV stops being practical.

_NORMAL = NormalDist()


def _finite(name: str, value: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return number


def _check_moments(skewness: float, kurtosis: float) -> tuple[float, float]:
    skew = _finite("skewness", skewness)
    kurt = _finite("kurtosis", kurtosis)
    # Every distribution has kurtosis >= 1 + skewness**2 (Pearson's inequality).
    if kurt < 1.0 + skew * skew:
        raise ValueError(
            f"kurtosis must be at least 1 + skewness**2 = {1.0 + skew * skew:g} (non-excess "
            f"kurtosis: 3 for normal returns), got {kurtosis!r}; pass kurtosis, not excess kurtosis"
        )
    return skew, kurt


def _sharpe_variance_factor(sharpe: float, skewness: float, kurtosis: float) -> float:
    """``1 - skew SR + (kurt - 1) / 4 SR^2``: the non-normal variance factor of the SR estimate."""
    factor = 1.0 - skewness * sharpe + (kurtosis - 1.0) / 4.0 * sharpe * sharpe
    if not factor > 0.0:
        raise ValueError(
            f"1 - skewness*sharpe + (kurtosis-1)/4*sharpe**2 = {factor:g} must be positive; "
            f"check sharpe={sharpe!r} is per period, not annualised"
        )
    return factor


def _check_periods_per_year(periods_per_year: float | None) -> float:
    if periods_per_year is None:
        return 1.0
    ppy = _finite("periods_per_year", periods_per_year)
    if ppy <= 0.0:
        raise ValueError(f"periods_per_year must be positive, got {periods_per_year!r}")
    return ppy


def probabilistic_sharpe_ratio(
    *,
    sharpe: float,
    benchmark_sharpe: float,
    n_observations: int,
    skewness: float,
    kurtosis: float,
) -> float:
    """Probability that the true Sharpe ratio exceeds ``benchmark_sharpe`` (PSR).

    ``Φ((SR - SR*) sqrt(T - 1) / sqrt(1 - γ3 SR + (γ4 - 1) / 4 SR²))``, Bailey & López de Prado
    (2012), eq. (10).

    Parameters
    ----------
    sharpe, benchmark_sharpe
        Observed and benchmark Sharpe ratios, both **per period** (not annualised).
    n_observations
        Number of returns T behind ``sharpe`` (at least 2).
    skewness, kurtosis
        Skewness and **non-excess** kurtosis (3 for normal) of those returns.

    Returns
    -------
    float
        A probability in [0, 1].

    Examples
    --------
    >>> probabilistic_sharpe_ratio(
    ...     sharpe=0.1, benchmark_sharpe=0.1, n_observations=250, skewness=0.0, kurtosis=3.0
    ... )
    0.5
    >>> round(probabilistic_sharpe_ratio(
    ...     sharpe=0.1, benchmark_sharpe=0.0, n_observations=250, skewness=0.0, kurtosis=3.0
    ... ), 4)
    0.9423
    """
    sr = _finite("sharpe", sharpe)
    benchmark = _finite("benchmark_sharpe", benchmark_sharpe)
    skew, kurt = _check_moments(skewness, kurtosis)
    if isinstance(n_observations, bool) or int(n_observations) != n_observations:
        raise ValueError(f"n_observations must be an integer, got {n_observations!r}")
    if n_observations < 2:
        raise ValueError(f"n_observations must be at least 2, got {n_observations!r}")
    factor = _sharpe_variance_factor(sr, skew, kurt)
    z = (sr - benchmark) * math.sqrt(n_observations - 1.0) / math.sqrt(factor)
    return _NORMAL.cdf(z)


def minimum_track_record_length(
    *,
    sharpe: float,
    benchmark_sharpe: float,
    skewness: float,
    kurtosis: float,
    confidence: float = 0.95,
) -> float:
    """Observations needed for PSR(``benchmark_sharpe``) to reach ``confidence`` (MinTRL).

    ``1 + (1 - γ3 SR + (γ4 - 1) / 4 SR²) (Z_α / (SR - SR*))²``, Bailey & López de Prado (2012),
    eq. (11).

    Parameters
    ----------
    sharpe, benchmark_sharpe
        Observed and benchmark Sharpe ratios, both **per period** (not annualised).
    skewness, kurtosis
        Skewness and **non-excess** kurtosis (3 for normal) of the returns.
    confidence
        Required probability that the true Sharpe exceeds the benchmark, in (0, 1).

    Returns
    -------
    float
        A number of return observations (divide by periods per year for years); ``inf`` when
        ``sharpe <= benchmark_sharpe``, as no track record is then long enough.

    Examples
    --------
    >>> round(minimum_track_record_length(
    ...     sharpe=0.1, benchmark_sharpe=0.0, skewness=0.0, kurtosis=3.0
    ... ), 2)
    272.91
    """
    sr = _finite("sharpe", sharpe)
    benchmark = _finite("benchmark_sharpe", benchmark_sharpe)
    skew, kurt = _check_moments(skewness, kurtosis)
    level = _finite("confidence", confidence)
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence must be in (0, 1), e.g. 0.95, got {confidence!r}")
    if sr <= benchmark:
        return math.inf
    factor = _sharpe_variance_factor(sr, skew, kurt)
    z = _NORMAL.inv_cdf(level)
    return 1.0 + factor * (z / (sr - benchmark)) ** 2


def expected_maximum_sharpe(*, n_trials: int, sharpe_variance: float) -> float:
    """Expected maximum Sharpe of ``n_trials`` independent zero-skill trials.

    ``sqrt(V[SR]) ((1 - γ) Φ⁻¹(1 - 1/N) + γ Φ⁻¹(1 - 1/(N e)))`` with γ the Euler-Mascheroni
    constant, Bailey & López de Prado (2014), eq. (2) (the "false strategy" theorem).

    Parameters
    ----------
    n_trials
        Number of independent trials N the search ran (at least 1; 1 gives 0.0).
    sharpe_variance
        Variance of the Sharpe ratios across the trials, in the squared units of the Sharpe
        ratios (per period unless you annualise both sides yourself).

    Returns
    -------
    float
        The expected maximum Sharpe ratio, in the units of ``sqrt(sharpe_variance)``.

    Examples
    --------
    >>> round(expected_maximum_sharpe(n_trials=100, sharpe_variance=1.0), 4)
    2.5306
    """
    if isinstance(n_trials, bool) or int(n_trials) != n_trials or n_trials < 1:
        raise ValueError(f"n_trials must be an integer >= 1, got {n_trials!r}")
    variance = _finite("sharpe_variance", sharpe_variance)
    if variance < 0.0:
        raise ValueError(f"sharpe_variance must be >= 0, got {sharpe_variance!r}")
    if n_trials == 1:
        return 0.0  # one trial is not selected from anything: its expected value is the null's 0
    n = float(n_trials)
    quantiles = (1.0 - EULER_MASCHERONI) * _NORMAL.inv_cdf(
        1.0 - 1.0 / n
    ) + EULER_MASCHERONI * _NORMAL.inv_cdf(1.0 - 1.0 / (n * math.e))
    return math.sqrt(variance) * quantiles


def return_moments(returns: np.ndarray) -> tuple[float, float, float, int]:
    """Per-period Sharpe, skewness, non-excess kurtosis and length of a return series.

    Sharpe is ``mean / std(ddof=1)`` (zero risk-free rate); skewness and kurtosis are the
    population moment ratios ``m3 / m2**1.5`` and ``m4 / m2**2`` (as ``scipy.stats.skew`` and
    ``scipy.stats.kurtosis(fisher=False)``).

    Examples
    --------
    >>> sr, skew, kurt, n = return_moments(np.array([0.02, -0.01, 0.0, 0.05]))
    >>> round(sr, 4), round(skew, 4), round(kurt, 4), n
    (0.5669, 0.4988, 1.7619, 4)
    """
    values = np.asarray(returns, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"returns must be 1-D, got shape {values.shape}")
    if values.shape[0] < 3:
        raise ValueError(f"returns needs at least 3 observations, got {values.shape[0]}")
    if not np.all(np.isfinite(values)):
        raise ValueError("returns has NaN or inf values; drop the warm-up bars first")
    centred = values - values.mean()
    m2 = float(np.mean(centred**2))
    if m2 == 0.0:
        raise ValueError("returns is constant: its Sharpe ratio is undefined")
    skew = float(np.mean(centred**3)) / m2**1.5
    kurt = float(np.mean(centred**4)) / m2**2
    return float(stats_nb.sharpe_ratio(values, 1.0)), skew, kurt, int(values.shape[0])


def deflated_sharpe_ratio(
    *,
    n_trials: int,
    returns: np.ndarray | None = None,
    sharpe: float | None = None,
    n_observations: int | None = None,
    skewness: float | None = None,
    kurtosis: float | None = None,
    sharpe_variance: float | None = None,
    trial_sharpes: np.ndarray | None = None,
    periods_per_year: float | None = None,
) -> float:
    """Probability that the selected strategy's true Sharpe beats the best of ``n_trials`` nulls.

    DSR = PSR(SR* = E[max SR]), Bailey & López de Prado (2014), eq. (9): the benchmark is
    :func:`expected_maximum_sharpe` of the trials the sweep recorded.

    Parameters
    ----------
    n_trials
        Number of independent trials the sweep recorded (at least 1).
    returns
        The selected strategy's per-period returns; gives the Sharpe, skewness, kurtosis and T
        (see :func:`return_moments`). Pass either this or all of ``sharpe``,
        ``n_observations``, ``skewness`` and ``kurtosis``.
    sharpe, n_observations, skewness, kurtosis
        The selected strategy's Sharpe, number of returns, skewness and non-excess kurtosis.
    sharpe_variance, trial_sharpes
        Exactly one: the variance of the Sharpe ratios across trials, or those Sharpe ratios
        (the variance is then ``np.var(trial_sharpes, ddof=1)``).
    periods_per_year
        ``None`` (default): ``sharpe``, ``sharpe_variance`` and ``trial_sharpes`` are per period.
        A number: they are annualised and are converted to per period (Sharpe divided by
        ``sqrt(periods_per_year)``, variance by ``periods_per_year``). ``returns`` are always
        per-period returns.

    Returns
    -------
    float
        A probability in [0, 1]; 0.95 is the usual bar.

    Examples
    --------
    The numerical example of Bailey & López de Prado (2014): annualised SR 2.5 over five years
    of daily returns, 100 trials with annualised Sharpe variance 0.5, skewness -3, kurtosis 10.

    >>> round(deflated_sharpe_ratio(
    ...     sharpe=2.5, n_observations=1250, skewness=-3.0, kurtosis=10.0,
    ...     n_trials=100, sharpe_variance=0.5, periods_per_year=250,
    ... ), 3)
    0.9
    """
    ppy = _check_periods_per_year(periods_per_year)
    scalars = {
        "sharpe": sharpe,
        "n_observations": n_observations,
        "skewness": skewness,
        "kurtosis": kurtosis,
    }
    if returns is not None:
        given = [name for name, value in scalars.items() if value is not None]
        if given:
            raise ValueError(f"pass returns or {', '.join(given)}, not both")
        sr, skew, kurt, n_obs = return_moments(returns)
    else:
        missing = [name for name, value in scalars.items() if value is None]
        if missing:
            raise ValueError(f"without returns, pass {', '.join(missing)} as well")
        sr = _finite("sharpe", sharpe) / math.sqrt(ppy)
        skew, kurt, n_obs = skewness, kurtosis, n_observations  # checked by the PSR below

    if (sharpe_variance is None) == (trial_sharpes is None):
        raise ValueError("pass exactly one of sharpe_variance and trial_sharpes")
    if trial_sharpes is not None:
        trials = np.asarray(trial_sharpes, dtype=np.float64)
        if trials.ndim != 1 or trials.shape[0] < 2:
            raise ValueError(f"trial_sharpes needs at least 2 values, got shape {trials.shape}")
        if not np.all(np.isfinite(trials)):
            raise ValueError("trial_sharpes has NaN or inf values")
        variance = float(np.var(trials, ddof=1))
    else:
        variance = _finite("sharpe_variance", sharpe_variance)
    benchmark = expected_maximum_sharpe(n_trials=n_trials, sharpe_variance=variance / ppy)
    return probabilistic_sharpe_ratio(
        sharpe=sr,
        benchmark_sharpe=benchmark,
        n_observations=n_obs,  # type: ignore[arg-type]
        skewness=skew,  # type: ignore[arg-type]
        kurtosis=kurt,  # type: ignore[arg-type]
    )


@dataclass(frozen=True)
class BacktestOverfitting:
    """CSCV result (Bailey, Borwein, López de Prado & Zhu, 2017).

    Attributes
    ----------
    pbo
        Probability of backtest overfitting: the share of combinations whose logit is <= 0,
        i.e. whose in-sample best ranks at or below the out-of-sample median.
    logits
        One logit ``ln(w / (1 - w))`` per combination, ``w`` the relative out-of-sample rank.
    n_combinations, n_blocks
        ``C(n_blocks, n_blocks / 2)`` combinations of ``n_blocks`` row blocks.
    is_performance, oos_performance
        The in-sample best's metric in and out of sample, per combination (per-period units).
    degradation_slope, degradation_intercept
        Least-squares line of ``oos_performance`` on ``is_performance`` (the paper's
        "performance degradation"); a negative slope is the usual overfitting signature.
    probability_of_loss
        Share of combinations whose selected strategy's out-of-sample metric is below 0.
    """

    pbo: float
    logits: np.ndarray
    n_combinations: int
    n_blocks: int
    is_performance: np.ndarray
    oos_performance: np.ndarray
    degradation_slope: float
    degradation_intercept: float
    probability_of_loss: float


def block_bounds(n_rows: int, n_blocks: int) -> np.ndarray:
    """Row offsets of ``n_blocks`` contiguous blocks, as ``np.array_split`` cuts them.

    The first ``n_rows % n_blocks`` blocks hold one extra row.

    Examples
    --------
    >>> block_bounds(10, 4).tolist()
    [0, 3, 6, 8, 10]
    """
    base, extra = divmod(n_rows, n_blocks)
    sizes = [base + 1 if b < extra else base for b in range(n_blocks)]
    return np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)


def cscv_combinations(n_blocks: int) -> np.ndarray:
    """All ``C(n_blocks, n_blocks / 2)`` in-sample block sets, in lexicographic order.

    Examples
    --------
    >>> cscv_combinations(4).tolist()
    [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]
    """
    combos = list(itertools.combinations(range(n_blocks), n_blocks // 2))
    return np.array(combos, dtype=np.int64).reshape(len(combos), n_blocks // 2)


def probability_of_backtest_overfitting(
    performance: np.ndarray,
    *,
    n_blocks: int = 16,
    metric: Literal["sharpe", "mean"] = "sharpe",
) -> BacktestOverfitting:
    """Probability of backtest overfitting by combinatorially symmetric cross-validation.

    Splits the rows into ``n_blocks`` contiguous blocks; for each of the
    ``C(n_blocks, n_blocks / 2)`` halves, picks the strategy with the best in-sample metric and
    ranks it out of sample (Bailey, Borwein, López de Prado & Zhu, 2017, section 2).

    Parameters
    ----------
    performance
        (T, N) per-period returns: one column per trial (parameter set), rows in time order.
    n_blocks
        Even number S of row blocks, 2 to 24; each block needs at least 2 rows.
    metric
        ``"sharpe"``: per-period Sharpe ``mean / std(ddof=1)``; ``"mean"``: mean return.

    Returns
    -------
    BacktestOverfitting

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> noise = rng.normal(size=(400, 10))
    >>> noise[:, 3] += 0.5  # one strategy with a real edge
    >>> result = probability_of_backtest_overfitting(noise, n_blocks=8)
    >>> result.n_combinations, result.pbo
    (70, 0.0)
    """
    values = np.asarray(performance, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"performance must be a (T, N) array, got shape {values.shape}")
    n_rows, n_strategies = values.shape
    if n_strategies < 2:
        raise ValueError(f"performance needs at least 2 strategy columns, got {n_strategies}")
    if not np.all(np.isfinite(values)):
        raise ValueError("performance has NaN or inf values; drop warm-up rows or fill them")
    if isinstance(n_blocks, bool) or int(n_blocks) != n_blocks:
        raise ValueError(f"n_blocks must be an integer, got {n_blocks!r}")
    if n_blocks < 2 or n_blocks % 2 or n_blocks > MAX_BLOCKS:
        raise ValueError(f"n_blocks must be even and in [2, {MAX_BLOCKS}], got {n_blocks!r}")
    if n_rows < 2 * n_blocks:
        raise ValueError(
            f"performance has {n_rows} rows; n_blocks={n_blocks} needs at least {2 * n_blocks}"
            " (2 per block); lower n_blocks"
        )
    if metric not in ("sharpe", "mean"):
        raise ValueError(f"metric must be 'sharpe' or 'mean', got {metric!r}")

    combos = cscv_combinations(int(n_blocks))
    selection = stats_nb.cscv_selection(
        np.ascontiguousarray(values),
        block_bounds(n_rows, int(n_blocks)),
        combos,
        metric == "sharpe",
    )
    logits = selection[:, 0].copy()
    is_perf = selection[:, 1].copy()
    oos_perf = selection[:, 2].copy()
    finite = np.isfinite(is_perf) & np.isfinite(oos_perf)
    slope = intercept = math.nan
    if finite.sum() >= 2 and np.ptp(is_perf[finite]) > 0.0:
        slope, intercept = (float(v) for v in np.polyfit(is_perf[finite], oos_perf[finite], 1))
    return BacktestOverfitting(
        pbo=float(np.mean(logits <= 0.0)),
        logits=logits,
        n_combinations=int(combos.shape[0]),
        n_blocks=int(n_blocks),
        is_performance=is_perf,
        oos_performance=oos_perf,
        degradation_slope=slope,
        degradation_intercept=intercept,
        probability_of_loss=float(np.mean(oos_perf < 0.0)),
    )
