"""Shared figures: the data in the traces is the data passed in."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from research_lib import plots
from research_lib.sweep import ma_crossover_sweep


def _sweep_table() -> pl.DataFrame:
    rng = np.random.default_rng(3)
    tables = []
    for symbol in ("AAA", "BBB"):
        close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, 600)))
        result = ma_crossover_sweep(
            close, fast_bars=[2, 5, 10], slow_bars=[5, 20, 40], periods_per_year=8760
        )
        tables.append(result.table.insert_column(0, pl.lit(symbol).alias("symbol")))
    return pl.concat(tables)


def test_sweep_heatmap_puts_each_pair_in_its_cell() -> None:
    table = _sweep_table()
    fig = plots.sweep_heatmap(table, value="total_return")
    assert [t.type for t in fig.data] == ["heatmap", "heatmap"]
    for trace, symbol in zip(fig.data, ("AAA", "BBB"), strict=True):
        rows = table.filter(pl.col("symbol") == symbol)
        assert list(trace.y) == ["2", "5", "10"] and list(trace.x) == ["5", "20", "40"]
        for fast, slow, value in rows.select("fast_bars", "slow_bars", "total_return").rows():
            assert trace.z[list(trace.y).index(str(fast))][list(trace.x).index(str(slow))] == value
        # fast >= slow pairs are not trials: their cells stay empty
        assert np.isnan(trace.z[list(trace.y).index("5")][list(trace.x).index("5")])
    # one colour scale, symmetric about zero, across the symbols
    bound = table["total_return"].abs().max()
    assert all(t.zmin == -bound and t.zmax == bound for t in fig.data)


def test_sweep_heatmap_names_an_unknown_column() -> None:
    with pytest.raises(ValueError, match="value 'sortino' is not a sweep column"):
        plots.sweep_heatmap(_sweep_table(), value="sortino")


def test_gate_scorecard_colours_each_verdict_and_names_the_outcome() -> None:
    frame = pl.DataFrame(
        {
            "criterion": ["oos_sharpe", "pbo"],
            "value": [1.5, None],
            "comparison": [">=", "<="],
            "threshold": [1.0, 0.2],
            "passed": [True, False],
            "detail": ["ok", "not computable: too few trials"],
        },
        schema_overrides={"value": pl.Float64},
    )
    fig = plots.gate_criteria(frame, title="Gate")
    table = fig.data[0]
    assert list(table.cells.values[0]) == ["oos_sharpe", "pbo"]
    assert list(table.cells.values[1]) == ["1.5", "n/a"]
    assert list(table.cells.values[3]) == ["pass", "FAIL"]
    assert table.cells.fill.color[0][0] != table.cells.fill.color[0][1]
    assert fig.layout.title.text == "Gate: FAIL"
    assert plots.gate_criteria(frame.head(1)).layout.title.text.endswith("PASS")
