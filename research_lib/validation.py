"""Out-of-sample validation: walk-forward splits (purged walk-forward, DSR and PBO come later).

Examples
--------
>>> [(int(tr[-1]), int(te[0]), int(te[-1])) for tr, te in walk_forward_splits(
...     n_rows=100, n_splits=3, min_train_rows=40)]
[(39, 40, 59), (59, 60, 79), (79, 80, 99)]
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np


def walk_forward_splits(
    *, n_rows: int, n_splits: int, min_train_rows: int, gap_rows: int = 0
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Expanding-window walk-forward splits: train on all rows before each test block.

    The rows after ``min_train_rows`` are cut into ``n_splits`` contiguous test blocks of
    (nearly) equal size. Each fold trains on every row before its test block, less a
    ``gap_rows`` embargo between them, so no training row sees the test period.

    Yields
    ------
    (train_index, test_index) pairs of int64 arrays, in time order.
    """
    if n_splits < 1:
        raise ValueError(f"n_splits must be at least 1, got {n_splits}")
    if gap_rows < 0:
        raise ValueError(f"gap_rows must be non-negative, got {gap_rows}")
    test_rows = n_rows - min_train_rows
    if min_train_rows < 1 or test_rows < n_splits:
        raise ValueError(
            f"n_rows={n_rows} is too short for min_train_rows={min_train_rows} and "
            f"n_splits={n_splits}: lower min_train_rows or collect a longer range"
        )
    bounds = np.linspace(min_train_rows, n_rows, n_splits + 1).round().astype(np.int64)
    for start, stop in itertools.pairwise(bounds):
        train_stop = max(0, int(start) - gap_rows)
        yield np.arange(train_stop, dtype=np.int64), np.arange(start, stop, dtype=np.int64)
