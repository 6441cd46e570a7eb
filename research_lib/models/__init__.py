"""Models that follow the scikit-learn estimator contract."""

from research_lib.models.baseline import (
    WalkForwardResult,
    lagged_design,
    make_baseline,
    walk_forward_by_symbol,
    walk_forward_predict,
)

__all__ = [
    "WalkForwardResult",
    "lagged_design",
    "make_baseline",
    "walk_forward_by_symbol",
    "walk_forward_predict",
]
