"""Cross-validation splits that cannot leak labels: purged k-fold, walk-forward and CPCV.

Each sample ``i`` carries a label window ``[label_start[i], label_end[i]]`` of bar indices
(inclusive): the bars its label looks at. A forward return over ``h`` bars has
``label_start = i`` and ``label_end = i + h``. Following López de Prado, *Advances in
Financial Machine Learning* (2018), ch. 7 and 12:

* **purging** drops from the training set every sample whose label window overlaps the span
  of a contiguous test block, i.e. ``[label_start[first], max(label_end[block])]``;
* the **embargo** then drops, after each test block, the first ``embargo_rows`` samples whose
  label window starts after that span (their features may still be serially correlated with
  the test labels). Every row in ``embargo_rows`` after a test block is thus purged or
  embargoed.

All splitters yield ``(train_index, test_index)`` pairs of sorted int64 arrays, and raise
``ValueError`` when purging leaves a fold with no training rows, rather than yield it.

Examples
--------
>>> start = np.arange(10)
>>> end = start + 1  # each label looks one bar ahead
>>> for train, test in purged_kfold_splits(
...     label_start=start, label_end=end, n_splits=2, embargo_rows=1
... ):
...     print(train.tolist(), test.tolist())
[7, 8, 9] [0, 1, 2, 3, 4]
[0, 1, 2, 3] [5, 6, 7, 8, 9]
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

Split = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]

__all__ = [
    "PurgedKFold",
    "combinatorial_purged_splits",
    "cpcv_path_splits",
    "cpcv_paths",
    "purged_kfold_splits",
    "purged_walk_forward_splits",
]


def _label_windows(
    label_start: npt.ArrayLike, label_end: npt.ArrayLike
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Check the label windows and return them as int64 arrays."""
    start = np.asarray(label_start)
    end = np.asarray(label_end)
    for name, arr in (("label_start", start), ("label_end", end)):
        if arr.ndim != 1:
            raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(
                f"{name} must hold integer bar indices, got dtype {arr.dtype}: "
                "convert timestamps to bar positions first"
            )
    if start.shape != end.shape:
        raise ValueError(
            f"label_start and label_end must have the same length, got {start.size} and {end.size}"
        )
    start = start.astype(np.int64)
    end = end.astype(np.int64)
    unsorted = np.flatnonzero(np.diff(start) < 0)
    if unsorted.size:
        i = int(unsorted[0]) + 1
        raise ValueError(
            f"label_start must be sorted, but label_start[{i}]={int(start[i])} < "
            f"label_start[{i - 1}]={int(start[i - 1])}: sort the samples by time first"
        )
    backwards = np.flatnonzero(end < start)
    if backwards.size:
        i = int(backwards[0])
        raise ValueError(
            f"label_end must not precede label_start, but label_end[{i}]={int(end[i])} < "
            f"label_start[{i}]={int(start[i])}"
        )
    return start, end


def _check_embargo(embargo_rows: int) -> None:
    if embargo_rows < 0:
        raise ValueError(f"embargo_rows must be non-negative, got {embargo_rows}")


def _group_bounds(n_rows: int, n_groups: int) -> npt.NDArray[np.int64]:
    """Boundaries of ``n_groups`` contiguous groups, sized like ``np.array_split``.

    The first ``n_rows % n_groups`` groups get one extra row, as in scikit-learn's ``KFold``.
    """
    sizes = np.full(n_groups, n_rows // n_groups, dtype=np.int64)
    sizes[: n_rows % n_groups] += 1
    return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)


def _contiguous_blocks(test_index: npt.NDArray[np.int64]) -> list[tuple[int, int]]:
    """Split sorted indices into half-open runs ``[first, stop)`` of consecutive rows."""
    breaks = np.flatnonzero(np.diff(test_index) != 1) + 1
    return [(int(run[0]), int(run[-1]) + 1) for run in np.split(test_index, breaks)]


def _purged_train(
    test_index: npt.NDArray[np.int64],
    start: npt.NDArray[np.int64],
    end: npt.NDArray[np.int64],
    embargo_rows: int,
    fold: str,
) -> npt.NDArray[np.int64]:
    """All rows outside the test set, less purged and embargoed rows."""
    keep = np.ones(start.size, dtype=bool)
    keep[test_index] = False
    for first, stop in _contiguous_blocks(test_index):
        span_start, span_end = start[first], end[first:stop].max()
        keep &= ~((start <= span_end) & (end >= span_start))
        # AFML 7.4.2 counts the embargo from the end of the test labels, not of the test rows:
        # skip the rows purged above, then drop the next embargo_rows.
        after = int(np.searchsorted(start, span_end, side="right"))
        keep[after : after + embargo_rows] = False
    train = np.flatnonzero(keep).astype(np.int64)
    if train.size == 0:
        raise ValueError(
            f"{fold} has no training rows left after purging and embargo_rows={embargo_rows}: "
            "use fewer test rows per fold, a smaller embargo or shorter label windows"
        )
    return train


def purged_kfold_splits(
    *,
    label_start: npt.ArrayLike,
    label_end: npt.ArrayLike,
    n_splits: int,
    embargo_rows: int = 0,
) -> Iterator[Split]:
    """Purged k-fold: contiguous test folds, training on the rest less purged/embargoed rows.

    Test folds are contiguous, unshuffled and sized as in scikit-learn's
    ``KFold(shuffle=False)``, so together they cover every sample exactly once. Training rows
    lie on both sides of the test fold: those whose label window overlaps the fold's label
    span are purged, and the first ``embargo_rows`` rows after the fold's label span are
    dropped (the embargo, see the module docstring).

    Parameters
    ----------
    label_start, label_end
        Inclusive label window of each sample, in bar indices; ``label_start`` sorted.
    n_splits
        Number of folds, at least 2 and at most the number of samples.
    embargo_rows
        Samples dropped from training after each test fold's label span.

    Yields
    ------
    (train_index, test_index)
        Sorted int64 arrays, one pair per fold, in time order of the test fold.

    Examples
    --------
    >>> start = np.arange(9)
    >>> splits = purged_kfold_splits(label_start=start, label_end=start + 2, n_splits=3)
    >>> [(tr.tolist(), te.tolist()) for tr, te in splits]
    [([5, 6, 7, 8], [0, 1, 2]), ([0, 8], [3, 4, 5]), ([0, 1, 2, 3], [6, 7, 8])]
    """
    start, end = _label_windows(label_start, label_end)
    _check_embargo(embargo_rows)
    if n_splits < 2:
        raise ValueError(f"n_splits must be at least 2, got {n_splits}")
    if start.size < n_splits:
        raise ValueError(
            f"n_splits={n_splits} needs at least as many samples, got {start.size}: "
            "lower n_splits or use a longer range"
        )
    bounds = _group_bounds(start.size, n_splits)
    for fold, (first, stop) in enumerate(itertools.pairwise(bounds)):
        test = np.arange(first, stop, dtype=np.int64)
        yield _purged_train(test, start, end, embargo_rows, f"fold {fold}"), test


def purged_walk_forward_splits(
    *,
    label_start: npt.ArrayLike,
    label_end: npt.ArrayLike,
    n_splits: int,
    min_train_rows: int,
    embargo_rows: int = 0,
    expanding: bool = True,
    max_train_rows: int | None = None,
) -> Iterator[Split]:
    """Walk-forward splits that train only on samples whose labels end before the test block.

    The samples after the first ``min_train_rows`` are cut into ``n_splits`` contiguous test
    blocks (sized as in ``np.array_split``). Each fold's candidate training rows precede its
    test block: all of them when ``expanding``, else the latest ``max_train_rows`` (default
    ``min_train_rows``), a rolling window. From those, the ``embargo_rows`` rows right before
    the test block are dropped, and so is every row whose label window reaches the test
    block's first bar (purging), so no training label sees the test period.

    Parameters
    ----------
    label_start, label_end
        Inclusive label window of each sample, in bar indices; ``label_start`` sorted.
    n_splits
        Number of test blocks, at least 1.
    min_train_rows
        Samples before the first test block, at least 1 (counted before purging).
    embargo_rows
        Samples dropped from training right before each test block (there is no training data
        after a test block to embargo).
    expanding
        Train on all earlier samples (True) or on a rolling window (False).
    max_train_rows
        Rolling window length, only with ``expanding=False``; at least 1.

    Yields
    ------
    (train_index, test_index)
        Sorted int64 arrays, one pair per test block, in time order.

    Examples
    --------
    >>> start = np.arange(12)
    >>> splits = purged_walk_forward_splits(
    ...     label_start=start, label_end=start + 1, n_splits=2, min_train_rows=6,
    ...     expanding=False, max_train_rows=4)
    >>> [(tr.tolist(), te.tolist()) for tr, te in splits]
    [([2, 3, 4], [6, 7, 8]), ([5, 6, 7], [9, 10, 11])]
    """
    start, end = _label_windows(label_start, label_end)
    _check_embargo(embargo_rows)
    if n_splits < 1:
        raise ValueError(f"n_splits must be at least 1, got {n_splits}")
    if min_train_rows < 1:
        raise ValueError(f"min_train_rows must be at least 1, got {min_train_rows}")
    if start.size - min_train_rows < n_splits:
        raise ValueError(
            f"{start.size} samples are too few for min_train_rows={min_train_rows} and "
            f"n_splits={n_splits}: lower either or use a longer range"
        )
    if max_train_rows is not None:
        if expanding:
            raise ValueError(
                f"max_train_rows={max_train_rows} only applies to a rolling window: "
                "pass expanding=False or drop max_train_rows"
            )
        if max_train_rows < 1:
            raise ValueError(f"max_train_rows must be at least 1, got {max_train_rows}")
    window = max_train_rows if max_train_rows is not None else min_train_rows
    bounds = min_train_rows + _group_bounds(start.size - min_train_rows, n_splits)
    for fold, (first, stop) in enumerate(itertools.pairwise(bounds)):
        lo = 0 if expanding else max(0, int(first) - window)
        candidates = np.arange(lo, max(lo, int(first) - embargo_rows), dtype=np.int64)
        train = candidates[end[candidates] < start[first]]
        if train.size == 0:
            raise ValueError(
                f"fold {fold} has no training rows left after purging and "
                f"embargo_rows={embargo_rows}: raise min_train_rows (or max_train_rows), "
                "lower embargo_rows or shorten the label windows"
            )
        yield train, np.arange(first, stop, dtype=np.int64)


def _cpcv_test_groups(n_groups: int, n_test_groups: int) -> list[tuple[int, ...]]:
    if n_groups < 2:
        raise ValueError(f"n_groups must be at least 2, got {n_groups}")
    if not 1 <= n_test_groups < n_groups:
        raise ValueError(
            f"n_test_groups must be between 1 and n_groups - 1 = {n_groups - 1}, "
            f"got {n_test_groups}"
        )
    return list(itertools.combinations(range(n_groups), n_test_groups))


def combinatorial_purged_splits(
    *,
    label_start: npt.ArrayLike,
    label_end: npt.ArrayLike,
    n_groups: int,
    n_test_groups: int,
    embargo_rows: int = 0,
) -> Iterator[Split]:
    """Combinatorial purged cross-validation (CPCV, AFML ch. 12.4).

    The samples are cut into ``n_groups`` contiguous groups (sized as in
    ``np.array_split``); every combination of ``n_test_groups`` of them, in
    ``itertools.combinations`` order, is one test set, so there are ``C(N, k)`` splits.
    Adjacent test groups form one contiguous block; each block is purged and embargoed as
    in :func:`purged_kfold_splits`. :func:`cpcv_path_splits` assembles the test sets into
    ``cpcv_paths(N, k)`` full backtest paths.

    Parameters
    ----------
    label_start, label_end
        Inclusive label window of each sample, in bar indices; ``label_start`` sorted.
    n_groups
        Number of contiguous groups ``N``, at least 2 and at most the number of samples.
    n_test_groups
        Groups per test set ``k``, between 1 and ``N - 1``.
    embargo_rows
        Samples dropped from training after each contiguous test block's label span.

    Yields
    ------
    (train_index, test_index)
        Sorted int64 arrays, one pair per combination of test groups.

    Examples
    --------
    >>> start = np.arange(8)
    >>> splits = combinatorial_purged_splits(
    ...     label_start=start, label_end=start, n_groups=4, n_test_groups=2, embargo_rows=1)
    >>> [(tr.tolist(), te.tolist()) for tr, te in splits][:3]
    [([5, 6, 7], [0, 1, 2, 3]), ([3, 7], [0, 1, 4, 5]), ([3, 4, 5], [0, 1, 6, 7])]
    """
    start, end = _label_windows(label_start, label_end)
    _check_embargo(embargo_rows)
    combos = _cpcv_test_groups(n_groups, n_test_groups)
    if start.size < n_groups:
        raise ValueError(
            f"n_groups={n_groups} needs at least as many samples, got {start.size}: "
            "lower n_groups or use a longer range"
        )
    bounds = _group_bounds(start.size, n_groups)
    for combo in combos:
        test = np.concatenate([np.arange(bounds[g], bounds[g + 1], dtype=np.int64) for g in combo])
        yield _purged_train(test, start, end, embargo_rows, f"test groups {combo}"), test


def cpcv_paths(n_groups: int, n_test_groups: int) -> int:
    """Number of backtest paths CPCV yields: ``φ = C(N, k) · k / N = C(N - 1, k - 1)``.

    Examples
    --------
    >>> cpcv_paths(6, 2), cpcv_paths(10, 2), cpcv_paths(10, 5)
    (5, 9, 126)
    """
    _cpcv_test_groups(n_groups, n_test_groups)
    return math.comb(n_groups - 1, n_test_groups - 1)


def cpcv_path_splits(n_groups: int, n_test_groups: int) -> npt.NDArray[np.int64]:
    """Which split's test group supplies each group of each CPCV backtest path.

    Entry ``[p, g]`` is the index (in :func:`combinatorial_purged_splits` order) of the split
    whose out-of-sample predictions for group ``g`` make up path ``p``. As in AFML fig. 12.1,
    path ``p`` takes, for each group, the ``p``-th split that tests it, so every split's test
    groups are used exactly once across the paths.

    Returns
    -------
    numpy.ndarray
        int64 array of shape ``(cpcv_paths(n_groups, n_test_groups), n_groups)``.

    Examples
    --------
    >>> cpcv_path_splits(3, 2)
    array([[0, 0, 1],
           [1, 2, 2]])
    """
    combos = _cpcv_test_groups(n_groups, n_test_groups)
    paths = np.empty((cpcv_paths(n_groups, n_test_groups), n_groups), dtype=np.int64)
    for g in range(n_groups):
        paths[:, g] = [i for i, combo in enumerate(combos) if g in combo]
    return paths


class PurgedKFold:
    """Scikit-learn splitter for :func:`purged_kfold_splits` (usable as ``cv=`` anywhere).

    The label windows are given at construction, one per row of the ``X`` later passed to
    :meth:`split`; ``__init__`` only stores them and :meth:`split` checks them.

    Parameters
    ----------
    n_splits
        Number of folds, at least 2.
    label_end
        Last bar each sample's label looks at. None means zero-length windows
        (``label_end = label_start``), which makes this plain ``KFold(shuffle=False)`` plus
        the embargo.
    label_start
        First bar of each sample's label window; None means ``0, 1, ..., n_samples - 1``.
    embargo_rows
        Samples dropped from training after each test fold's label span.

    Examples
    --------
    >>> X = np.zeros((6, 1))
    >>> cv = PurgedKFold(3, label_end=np.arange(6) + 1)
    >>> [(tr.tolist(), te.tolist()) for tr, te in cv.split(X)]
    [([3, 4, 5], [0, 1]), ([0, 5], [2, 3]), ([0, 1, 2], [4, 5])]
    """

    def __init__(
        self,
        n_splits: int = 5,
        *,
        label_end: npt.ArrayLike | None = None,
        label_start: npt.ArrayLike | None = None,
        embargo_rows: int = 0,
    ) -> None:
        self.n_splits = n_splits
        self.label_end = label_end
        self.label_start = label_start
        self.embargo_rows = embargo_rows

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """Number of folds, as scikit-learn expects."""
        return self.n_splits

    def split(self, X: Any, y: Any = None, groups: Any = None) -> Iterator[Split]:
        """Yield ``(train_index, test_index)`` for the rows of ``X``; ``y``/``groups`` unused."""
        n_rows = len(X)
        start = np.arange(n_rows) if self.label_start is None else self.label_start
        end = start if self.label_end is None else self.label_end
        if np.shape(end) != (n_rows,) or np.shape(start) != (n_rows,):
            raise ValueError(
                f"X has {n_rows} rows but the label windows have {np.shape(start)} starts and "
                f"{np.shape(end)} ends: pass one window per row of X"
            )
        yield from purged_kfold_splits(
            label_start=start,
            label_end=end,
            n_splits=self.n_splits,
            embargo_rows=self.embargo_rows,
        )

    def __repr__(self) -> str:
        return f"PurgedKFold(n_splits={self.n_splits}, embargo_rows={self.embargo_rows})"
