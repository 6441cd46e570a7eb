"""Leak-free CV splits: purged k-fold, purged walk-forward and CPCV (AFML ch. 7 and 12).

The properties are checked by brute force over every (train, test) pair of samples, on random
label windows (horizons 0..20 bars, starts sorted, possibly repeated) and split parameters.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import KFold, cross_val_score

from research_lib.splits import (
    PurgedKFold,
    combinatorial_purged_splits,
    cpcv_path_splits,
    cpcv_paths,
    purged_kfold_splits,
    purged_walk_forward_splits,
)

Windows = tuple[np.ndarray, np.ndarray]
SETTINGS = settings(max_examples=150, deadline=None)


@st.composite
def label_windows(draw: st.DrawFn, min_rows: int = 2, max_rows: int = 150) -> Windows:
    """Sorted starts (steps 0..3 bars, so repeats happen) and horizons 0..20 bars."""
    n = draw(st.integers(min_rows, max_rows))
    steps = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    horizons = draw(st.lists(st.integers(0, 20), min_size=n, max_size=n))
    start = np.cumsum(steps).astype(np.int64)
    return start, start + np.asarray(horizons, dtype=np.int64)


def collect(splits: Iterator[tuple[np.ndarray, np.ndarray]]) -> list[tuple[np.ndarray, np.ndarray]]:
    """All splits, or reject the example when purging empties a fold (a documented error)."""
    try:
        return list(splits)
    except ValueError as err:
        assume("no training rows left" not in str(err))
        raise


def blocks(test: np.ndarray) -> list[tuple[int, int]]:
    """Half-open runs [first, stop) of consecutive test rows, by a plain loop."""
    runs: list[tuple[int, int]] = []
    for i in test.tolist():
        if runs and runs[-1][1] == i:
            runs[-1] = (runs[-1][0], i + 1)
        else:
            runs.append((i, i + 1))
    return runs


def assert_no_overlap(train: np.ndarray, test: np.ndarray, start: np.ndarray, end: np.ndarray):
    """No training label window shares a bar with any test label window (all pairs)."""
    overlap = (start[train][:, None] <= end[test][None, :]) & (
        start[test][None, :] <= end[train][:, None]
    )
    assert not overlap.any()


def assert_split_shape(train: np.ndarray, test: np.ndarray, n: int) -> None:
    for idx in (train, test):
        assert idx.dtype == np.int64
        assert np.all(np.diff(idx) > 0)
        assert idx.size == 0 or (idx[0] >= 0 and idx[-1] < n)
    assert train.size > 0 and test.size > 0
    assert np.intersect1d(train, test).size == 0


def assert_embargo(train: np.ndarray, test: np.ndarray, start: np.ndarray, end: np.ndarray, e: int):
    """After each test block: no training row in the next e rows, and at least e rows whose
    window starts after the block's label span separate it from any later training row."""
    for first, stop in blocks(test):
        span_end = end[first:stop].max()
        later = train[train >= stop]
        assert not np.any(later < stop + e)
        for j in later.tolist():
            assert np.count_nonzero(start[stop:j] > span_end) >= e


# --- purged k-fold ------------------------------------------------------------------------


@SETTINGS
@given(windows=label_windows(), n_splits=st.integers(2, 8), embargo=st.integers(0, 6))
def test_kfold_never_leaks(windows: Windows, n_splits: int, embargo: int) -> None:
    start, end = windows
    assume(start.size >= n_splits)
    splits = collect(
        purged_kfold_splits(
            label_start=start, label_end=end, n_splits=n_splits, embargo_rows=embargo
        )
    )
    assert len(splits) == n_splits
    for train, test in splits:
        assert_split_shape(train, test, start.size)
        assert len(blocks(test)) == 1
        assert_no_overlap(train, test, start, end)
        assert_embargo(train, test, start, end, embargo)
    # test folds cover every sample exactly once, in time order
    np.testing.assert_array_equal(np.concatenate([te for _, te in splits]), np.arange(start.size))


@SETTINGS
@given(n=st.integers(2, 200), n_splits=st.integers(2, 10))
def test_kfold_with_point_labels_equals_sklearn_kfold(n: int, n_splits: int) -> None:
    assume(n >= n_splits)
    start = np.arange(n)
    ours = list(purged_kfold_splits(label_start=start, label_end=start, n_splits=n_splits))
    theirs = list(KFold(n_splits=n_splits, shuffle=False).split(np.zeros((n, 1))))
    assert len(ours) == len(theirs)
    for (tr, te), (tr_ref, te_ref) in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(tr, tr_ref)
        np.testing.assert_array_equal(te, te_ref)
    for (tr, te), (tr_ref, te_ref) in zip(
        PurgedKFold(n_splits).split(np.zeros((n, 2))), theirs, strict=True
    ):
        np.testing.assert_array_equal(tr, tr_ref)
        np.testing.assert_array_equal(te, te_ref)


def test_kfold_worked_example() -> None:
    # 10 samples, labels look 2 bars ahead, folds of 4/3/3 rows, 1-row embargo
    start = np.arange(10)
    splits = purged_kfold_splits(label_start=start, label_end=start + 2, n_splits=3, embargo_rows=1)
    got = [(tr.tolist(), te.tolist()) for tr, te in splits]
    assert got == [
        # span [0, 5] purges 4-5; row 6 is the first starting after bar 5: embargoed
        ([7, 8, 9], [0, 1, 2, 3]),
        # span [4, 8] purges 2-3 (labels reach bar 4) and 7-8; row 9 embargoed
        ([0, 1], [4, 5, 6]),
        # span [7, 11] purges 5-6; nothing after the last fold
        ([0, 1, 2, 3, 4], [7, 8, 9]),
    ]


def test_kfold_purges_a_long_label_far_from_the_test_fold() -> None:
    # row 2's label spans bars 2..7, so it overlaps every later fold, not just its neighbour
    start = np.arange(8)
    end = start + np.array([0, 0, 5, 0, 0, 0, 0, 0])
    got = [
        (tr.tolist(), te.tolist())
        for tr, te in purged_kfold_splits(label_start=start, label_end=end, n_splits=4)
    ]
    assert got == [
        ([2, 3, 4, 5, 6, 7], [0, 1]),
        ([0, 1], [2, 3]),
        ([0, 1, 3, 6, 7], [4, 5]),
        ([0, 1, 3, 4, 5], [6, 7]),
    ]


def test_purged_kfold_class_works_as_sklearn_cv() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + rng.normal(scale=0.1, size=60)
    cv = PurgedKFold(5, label_end=np.arange(60) + 3, embargo_rows=2)
    assert cv.get_n_splits() == 5
    scores = cross_val_score(LinearRegression(), X, y, cv=cv)
    assert scores.shape == (5,) and np.all(scores > 0.9)
    expected = purged_kfold_splits(
        label_start=np.arange(60), label_end=np.arange(60) + 3, n_splits=5, embargo_rows=2
    )
    for (tr, te), (tr_ref, te_ref) in zip(cv.split(X), expected, strict=True):
        np.testing.assert_array_equal(tr, tr_ref)
        np.testing.assert_array_equal(te, te_ref)
    with pytest.raises(ValueError, match="X has 59 rows"):
        list(cv.split(X[:59]))


# --- purged walk-forward ------------------------------------------------------------------


@SETTINGS
@given(
    windows=label_windows(min_rows=10),
    n_splits=st.integers(1, 6),
    train_fraction=st.floats(0.1, 0.8),
    embargo=st.integers(0, 6),
    rolling_rows=st.none() | st.integers(1, 80),
)
def test_walk_forward_never_sees_the_future(
    windows: Windows,
    n_splits: int,
    train_fraction: float,
    embargo: int,
    rolling_rows: int | None,
) -> None:
    start, end = windows
    n = start.size
    min_train = max(1, int(n * train_fraction))
    assume(n - min_train >= n_splits)
    expanding = rolling_rows is None
    splits = collect(
        purged_walk_forward_splits(
            label_start=start,
            label_end=end,
            n_splits=n_splits,
            min_train_rows=min_train,
            embargo_rows=embargo,
            expanding=expanding,
            max_train_rows=rolling_rows,
        )
    )
    assert len(splits) == n_splits
    np.testing.assert_array_equal(np.concatenate([te for _, te in splits]), np.arange(min_train, n))
    for train, test in splits:
        assert_split_shape(train, test, n)
        assert len(blocks(test)) == 1
        first = int(test[0])
        # no future data: every training label ends before the test block's first bar
        assert np.all(train < first)
        assert np.all(end[train] < start[first])
        assert_no_overlap(train, test, start, end)
        # the embargo is a gap of embargo rows before the test block
        assert not np.any(train >= first - embargo)
        # the window: all earlier rows (expanding) or the latest rolling_rows, less purged ones
        lo = 0 if expanding else max(0, first - rolling_rows)
        expected = [j for j in range(lo, first - embargo) if end[j] < start[first]]
        assert train.tolist() == expected


def test_walk_forward_expanding_vs_rolling_windows() -> None:
    start = np.arange(20)
    kwargs = dict(label_start=start, label_end=start + 1, n_splits=3, min_train_rows=8)
    expanding = list(purged_walk_forward_splits(**kwargs))
    rolling = list(purged_walk_forward_splits(**kwargs, expanding=False, max_train_rows=5))
    assert [te.tolist() for _, te in expanding] == [
        [8, 9, 10, 11],
        [12, 13, 14, 15],
        [16, 17, 18, 19],
    ]
    # expanding windows start at row 0 and grow; the last row (label reaches the test) is purged
    assert [tr.tolist() for tr, _ in expanding] == [
        list(range(0, 7)),
        list(range(0, 11)),
        list(range(0, 15)),
    ]
    # rolling windows keep the 5 rows before the test block, then purge the last one
    assert [tr.tolist() for tr, _ in rolling] == [
        [3, 4, 5, 6],
        [7, 8, 9, 10],
        [11, 12, 13, 14],
    ]
    gapped = list(purged_walk_forward_splits(**kwargs, embargo_rows=2))
    assert gapped[0][0].tolist() == list(range(0, 6))


# --- combinatorial purged CV --------------------------------------------------------------


@SETTINGS
@given(
    windows=label_windows(min_rows=12),
    n_groups=st.integers(2, 7),
    data=st.data(),
    embargo=st.integers(0, 4),
)
def test_cpcv_never_leaks_and_balances_groups(
    windows: Windows, n_groups: int, data: st.DataObject, embargo: int
) -> None:
    start, end = windows
    n_test_groups = data.draw(st.integers(1, n_groups - 1))
    splits = collect(
        combinatorial_purged_splits(
            label_start=start,
            label_end=end,
            n_groups=n_groups,
            n_test_groups=n_test_groups,
            embargo_rows=embargo,
        )
    )
    assert len(splits) == math.comb(n_groups, n_test_groups)
    groups = np.array_split(np.arange(start.size), n_groups)
    times_tested = np.zeros(start.size, dtype=np.int64)
    for train, test in splits:
        assert_split_shape(train, test, start.size)
        assert_no_overlap(train, test, start, end)
        assert_embargo(train, test, start, end, embargo)
        # each test set is the union of n_test_groups whole groups
        assert sum(np.isin(g, test).all() for g in groups) == n_test_groups
        assert test.size == sum(g.size for g in groups if np.isin(g, test).all())
        times_tested[test] += 1
    assert np.all(times_tested == math.comb(n_groups - 1, n_test_groups - 1))


@pytest.mark.parametrize(
    ("n_groups", "n_test_groups", "n_splits", "n_paths"),
    # AFML table 12.1 (phi[N, k])
    [
        (6, 2, 15, 5),
        (3, 2, 3, 2),
        (10, 2, 45, 9),
        (10, 5, 252, 126),
        (8, 1, 8, 1),
        (20, 3, 1140, 171),
    ],
)
def test_cpcv_split_and_path_counts(
    n_groups: int, n_test_groups: int, n_splits: int, n_paths: int
) -> None:
    assert cpcv_paths(n_groups, n_test_groups) == n_paths
    assert n_paths == math.comb(n_groups, n_test_groups) * n_test_groups // n_groups
    start = np.arange(3 * n_groups)
    splits = combinatorial_purged_splits(
        label_start=start, label_end=start, n_groups=n_groups, n_test_groups=n_test_groups
    )
    assert sum(1 for _ in splits) == n_splits


@pytest.mark.parametrize(("n_groups", "n_test_groups"), [(6, 2), (5, 3), (4, 1), (7, 6)])
def test_cpcv_paths_use_each_test_group_once(n_groups: int, n_test_groups: int) -> None:
    combos = list(itertools.combinations(range(n_groups), n_test_groups))
    paths = cpcv_path_splits(n_groups, n_test_groups)
    assert paths.shape == (cpcv_paths(n_groups, n_test_groups), n_groups)
    assert paths.dtype == np.int64
    # each path takes group g from a split that tests g ...
    for path in paths:
        for g, split in enumerate(path.tolist()):
            assert g in combos[split]
    # ... and every (split, test group) pair is used by exactly one path
    used = sorted((int(s), g) for path in paths for g, s in enumerate(path))
    assert used == sorted((s, g) for s, combo in enumerate(combos) for g in combo)


def test_cpcv_worked_example() -> None:
    # 12 samples in 4 groups of 3, labels 1 bar ahead, 1-row embargo
    start = np.arange(12)
    got = [
        (tr.tolist(), te.tolist())
        for tr, te in combinatorial_purged_splits(
            label_start=start, label_end=start + 1, n_groups=4, n_test_groups=2, embargo_rows=1
        )
    ]
    assert got == [
        # one block, span [0, 6]: 6 purged, 7 embargoed
        ([8, 9, 10, 11], [0, 1, 2, 3, 4, 5]),
        # block 0-2: 3 purged, 4 embargoed; block 6-8 (span [6, 9]): 5 and 9 purged, 10 embargoed
        ([11], [0, 1, 2, 6, 7, 8]),
        # block 0-2: 3 purged, 4 embargoed; block 9-11: 8 purged, nothing after it
        ([5, 6, 7], [0, 1, 2, 9, 10, 11]),
        # one block, span [3, 9]: 2 and 9 purged, 10 embargoed
        ([0, 1, 11], [3, 4, 5, 6, 7, 8]),
        # block 3-5: 2 and 6 purged, 7 embargoed; block 9-11: 8 purged
        ([0, 1], [3, 4, 5, 9, 10, 11]),
        # one block, span [6, 12]: 5 purged
        ([0, 1, 2, 3, 4], [6, 7, 8, 9, 10, 11]),
    ]
    # the paths stitch these test groups back into full histories: phi[4, 2] = 3
    np.testing.assert_array_equal(
        cpcv_path_splits(4, 2), [[0, 0, 1, 2], [1, 3, 3, 4], [2, 4, 5, 5]]
    )


# --- input checks -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: purged_kfold_splits(label_start=[0, 2, 1], label_end=[0, 2, 1], n_splits=2),
            r"label_start must be sorted, but label_start\[2\]=1",
        ),
        (
            lambda: purged_kfold_splits(label_start=[0, 1, 2], label_end=[0, 0, 2], n_splits=2),
            r"label_end\[1\]=0 < label_start\[1\]=1",
        ),
        (
            lambda: purged_kfold_splits(label_start=[0, 1], label_end=[0, 1], n_splits=3),
            "n_splits=3 needs at least as many samples, got 2",
        ),
        (
            lambda: purged_kfold_splits(label_start=[0, 1], label_end=[0, 1], n_splits=1),
            "n_splits must be at least 2, got 1",
        ),
        (
            lambda: purged_kfold_splits(label_start=[0.0, 1.0], label_end=[0, 1], n_splits=2),
            "label_start must hold integer bar indices, got dtype float64",
        ),
        (
            lambda: purged_kfold_splits(label_start=[0, 1, 2], label_end=[0, 1], n_splits=2),
            "same length, got 3 and 2",
        ),
        (
            lambda: purged_kfold_splits(
                label_start=[0, 1], label_end=[0, 1], n_splits=2, embargo_rows=-1
            ),
            "embargo_rows must be non-negative, got -1",
        ),
        (
            lambda: purged_kfold_splits(label_start=[0, 1, 2], label_end=[9, 9, 9], n_splits=3),
            "fold 0 has no training rows left",
        ),
        (
            lambda: purged_walk_forward_splits(
                label_start=np.arange(5), label_end=np.arange(5), n_splits=3, min_train_rows=3
            ),
            "5 samples are too few for min_train_rows=3 and n_splits=3",
        ),
        (
            lambda: purged_walk_forward_splits(
                label_start=np.arange(9),
                label_end=np.arange(9),
                n_splits=3,
                min_train_rows=3,
                max_train_rows=2,
            ),
            "max_train_rows=2 only applies to a rolling window",
        ),
        (
            lambda: combinatorial_purged_splits(
                label_start=np.arange(9), label_end=np.arange(9), n_groups=3, n_test_groups=3
            ),
            "n_test_groups must be between 1 and n_groups - 1 = 2, got 3",
        ),
        (
            lambda: combinatorial_purged_splits(
                label_start=np.arange(2), label_end=np.arange(2), n_groups=3, n_test_groups=1
            ),
            "n_groups=3 needs at least as many samples, got 2",
        ),
        (lambda: cpcv_paths(1, 1), "n_groups must be at least 2, got 1"),
    ],
)
def test_bad_inputs_name_the_field_and_value(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        list(call())
