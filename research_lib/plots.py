"""Plotly figures shared by notebooks and dashboards.

Importing this module sets plotly's default renderer to one that works in JupyterLab (the
plotly mimetype), in Voila, and in the HTML reports written by the pipeline (an inline
plotly.js, so reports open offline).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import plotly.graph_objects as go
import plotly.io as pio
import polars as pl
from plotly.colors import qualitative
from plotly.subplots import make_subplots

if TYPE_CHECKING:
    from research_lib.quality import QualityReport

pio.renderers.default = "plotly_mimetype+notebook"
pio.templates.default = "plotly_white"


def _dt(ts_ms: pl.Series) -> list:
    return pl.from_epoch(ts_ms, time_unit="ms").to_list()


def normalised_prices(bars: pl.DataFrame, *, title: str = "Close, rebased to 1") -> go.Figure:
    """Each symbol's close divided by its first close, on one log-scale chart."""
    fig = go.Figure()
    for (symbol,), frame in bars.sort("symbol", "ts").group_by("symbol", maintain_order=True):
        rebased = frame["close"] / frame["close"][0]
        fig.add_trace(go.Scatter(x=_dt(frame["ts"]), y=rebased, name=str(symbol), mode="lines"))
    fig.update_layout(title=title, yaxis_type="log", height=420, legend_title="symbol")
    return fig


def feature_panel(features: pl.DataFrame, *, symbol: str) -> go.Figure:
    """Close with its fast/slow EMAs, RSI and the rolling z-score for one symbol."""
    frame = features.filter(pl.col("symbol") == symbol).sort("ts")
    x = _dt(frame["ts"])
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, row_heights=[0.55, 0.25, 0.2])
    for col in ("close", "ema_fast", "ema_slow"):
        fig.add_trace(go.Scatter(x=x, y=frame[col], name=col, mode="lines"), row=1, col=1)
    fig.add_trace(go.Scatter(x=x, y=frame["rsi"], name="rsi", mode="lines"), row=2, col=1)
    for level in (30, 70):
        fig.add_hline(y=level, line_dash="dot", line_color="grey", row=2, col=1)
    fig.add_trace(go.Scatter(x=x, y=frame["zscore"], name="z-score", mode="lines"), row=3, col=1)
    fig.update_layout(title=f"{symbol}: features", height=600)
    return fig


def indicator_panel(
    frame: pl.DataFrame,
    *,
    overlay: list[str],
    panels: list[list[str]],
    title: str = "Indicators",
) -> go.Figure:
    """Price-scale columns over the close (top), then one panel per group of oscillators.

    ``frame`` is one symbol's bars with the indicator columns added (``bars.ta.macd()``...).
    """
    frame = frame.sort("ts")
    x = _dt(frame["ts"])
    rows = 1 + len(panels)
    heights = [0.5] + [0.5 / len(panels)] * len(panels) if panels else [1.0]
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, row_heights=heights)
    for col in ["close", *overlay]:
        fig.add_trace(go.Scatter(x=x, y=frame[col], name=col, mode="lines"), row=1, col=1)
    for row, group in enumerate(panels, start=2):
        for col in group:
            fig.add_trace(go.Scatter(x=x, y=frame[col], name=col, mode="lines"), row=row, col=1)
    fig.update_layout(title=title, height=300 + 160 * len(panels))
    return fig


def fold_scores(folds: pl.DataFrame) -> go.Figure:
    """Out-of-sample information coefficient per symbol and walk-forward fold."""
    fig = go.Figure()
    for (symbol,), frame in folds.group_by("symbol", maintain_order=True):
        fig.add_trace(go.Bar(x=frame["fold"], y=frame["ic"], name=str(symbol)))
    fig.update_layout(
        title="Out-of-sample rank IC by walk-forward fold",
        xaxis_title="fold",
        yaxis_title="Spearman IC",
        barmode="group",
        height=380,
    )
    return fig


def equity_curves(equity: pl.DataFrame, *, title: str = "Backtest equity") -> go.Figure:
    """Equity (top) and drawdown (bottom) per symbol; ``equity`` has ts, symbol, equity."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3])
    palette = qualitative.Plotly
    groups = equity.sort("symbol", "ts").group_by("symbol", maintain_order=True)
    for k, ((symbol,), frame) in enumerate(groups):
        color = palette[k % len(palette)]
        x = _dt(frame["ts"])
        # backtest results carry their drawdown; plain equity frames get it derived here
        if "drawdown" in frame.columns:
            drawdown = frame["drawdown"]
        else:
            drawdown = frame["equity"] / frame["equity"].cum_max() - 1.0
        fig.add_trace(
            go.Scatter(
                x=x,
                y=frame["equity"],
                name=str(symbol),
                legendgroup=str(symbol),
                line={"color": color},
            ),
            row=1,
            col=1,
        )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=drawdown,
                name=str(symbol),
                legendgroup=str(symbol),
                showlegend=False,
                fill="tozeroy",
                line={"width": 0.5, "color": color},
            ),
            row=2,
            col=1,
        )
    fig.update_yaxes(title_text="equity", row=1, col=1)
    fig.update_yaxes(title_text="drawdown", tickformat=".0%", row=2, col=1)
    fig.update_layout(title=title, height=560, hovermode="x unified")
    return fig


def coverage_timeline(coverage: pl.DataFrame) -> go.Figure:
    """One bar per dataset partition, spanning its first to last timestamp."""
    labels = (coverage["dataset"] + "  " + coverage["partition"]).to_list()
    start = coverage["first"].to_list()
    stop = coverage["last"].to_list()
    fig = go.Figure(
        go.Bar(
            y=labels,
            x=[(b - a).total_seconds() * 1000 for a, b in zip(start, stop, strict=True)],
            base=start,
            orientation="h",
            text=coverage["rows"].to_list(),
            hovertemplate="%{y}<br>%{base} → %{x}<br>rows %{text}<extra></extra>",
        )
    )
    fig.update_xaxes(type="date")
    fig.update_layout(title="Data coverage in the lake", height=120 + 22 * len(labels))
    return fig


def sweep_heatmap(
    table: pl.DataFrame, *, value: str = "sharpe", title: str | None = None
) -> go.Figure:
    """One heatmap of ``value`` over (fast, slow) windows per symbol, on a shared colour scale.

    ``table`` is ``SweepResult.table`` with a ``symbol`` column (one sweep per symbol); the
    chosen pair of each symbol is not marked: the grid is for judging how stable the
    neighbourhood is, not for picking its maximum.
    """
    if value not in table.columns:
        raise ValueError(f"value {value!r} is not a sweep column; columns: {table.columns}")
    symbols = table["symbol"].unique(maintain_order=True).to_list()
    cols = min(3, len(symbols))
    rows = -(-len(symbols) // cols)
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=symbols,
        horizontal_spacing=0.06,
        vertical_spacing=0.12,
    )
    finite = table[value].drop_nulls()
    bound = float(finite.abs().max()) if finite.len() else 1.0
    for k, symbol in enumerate(symbols):
        frame = table.filter(pl.col("symbol") == symbol)
        grid = frame.pivot(on="slow_bars", index="fast_bars", values=value, sort_columns=True)
        grid = grid.sort("fast_bars")
        slow = [c for c in grid.columns if c != "fast_bars"]
        fig.add_trace(
            go.Heatmap(
                z=grid.select(slow).to_numpy(),
                x=[str(s) for s in slow],
                y=[str(f) for f in grid["fast_bars"]],
                zmin=-bound,
                zmax=bound,
                colorscale="RdBu",
                showscale=k == 0,
                colorbar={"title": value},
                hovertemplate=f"fast %{{y}}<br>slow %{{x}}<br>{value} %{{z:.3g}}<extra></extra>",
            ),
            row=k // cols + 1,
            col=k % cols + 1,
        )
    fig.update_xaxes(title_text="slow window, bars", type="category")
    fig.update_yaxes(title_text="fast window, bars", type="category")
    fig.update_layout(
        title=title or f"SMA-crossover sweep: {value} by window pair", height=330 * rows + 80
    )
    return fig


def quality_timeline(report: QualityReport) -> go.Figure:
    """Per symbol, on one time axis: the span covered, the gaps, and every flagged bar.

    ``report`` is a ``research_lib.quality.QualityReport``. Gaps and stale runs are drawn as
    bars over the time they cover, with a marker at their start so that a few missing hours
    stay visible on a multi-year axis; each other check is a marker trace of its own.
    """
    from research_lib.config import INTERVAL_MS

    step_ms = INTERVAL_MS[report.interval]
    issues = report.issues
    symbols = report.summary["symbol"].to_list()
    palette = qualitative.Plotly
    fig = go.Figure()

    def span(frame: pl.DataFrame, name: str, color: str, opacity: float) -> None:
        widths = (frame["ts_last"] - frame["ts_first"] + step_ms).to_list()
        fig.add_trace(
            go.Bar(
                y=frame["symbol"].to_list(),
                x=widths,
                base=_dt(frame["ts_first"]),
                orientation="h",
                name=name,
                legendgroup=name,
                showlegend=name == "covered",
                marker={"color": color, "opacity": opacity},
                customdata=frame.select("bars", "detail").rows(),
                hovertemplate="%{y}<br>%{base}<br>%{customdata[1]}<extra>" + name + "</extra>",
            )
        )

    span(issues.filter(pl.col("check") == "coverage"), "covered", "lightgrey", 0.6)
    shown = [c for c in issues["check"].unique(maintain_order=True).to_list() if c != "coverage"]
    for k, check in enumerate(shown):
        frame = issues.filter(pl.col("check") == check)
        color = "crimson" if check == "gap" else palette[k % len(palette)]
        if check in ("gap", "stale_price"):
            span(frame, check, color, 0.9)
        fig.add_trace(
            go.Scatter(
                x=_dt(frame["ts_first"]),
                y=frame["symbol"].to_list(),
                mode="markers",
                name=check,
                legendgroup=check,
                marker={"color": color, "size": 9, "symbol": "line-ns-open", "line_width": 2},
                text=frame["detail"].to_list(),
                hovertemplate="%{y} %{x}<br>%{text}<extra>" + check + "</extra>",
            )
        )
    fig.update_xaxes(type="date")
    fig.update_yaxes(type="category", categoryorder="array", categoryarray=symbols[::-1])
    fig.update_layout(
        title=f"Data quality: {report.source} {report.interval}",
        barmode="overlay",
        height=160 + 60 * len(symbols),
        legend_title="check",
    )
    return fig


def pool_prices(prices: pl.DataFrame, *, title: str = "Pool prices against the CEX") -> go.Figure:
    """Lines of price per block: one column per series (``block`` on the x axis), e.g. the
    simulation's ``cex ...`` and ``pool ...`` columns for one token pair."""
    fig = go.Figure()
    for column in prices.columns:
        if column == "block":
            continue
        dash = "dot" if column.startswith("cex") else None
        fig.add_trace(
            go.Scatter(
                x=prices["block"], y=prices[column], name=column, mode="lines", line={"dash": dash}
            )
        )
    fig.update_layout(title=title, height=380, xaxis_title="block", yaxis_title="price")
    return fig


def lp_sweep(table: pl.DataFrame, *, title: str = "LP range sweep: fees against IL") -> go.Figure:
    """Fees, impermanent loss and net PnL against holding (as % of capital) per range
    width, with the time in range on a second axis: the width trade-off at a glance."""
    x = [f"±{w:.1%}" for w in table["width"]]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    for column, name in (
        ("fees_pct", "fees"),
        ("il_pct", "impermanent loss"),
        ("net_vs_hold_pct", "net vs hold"),
    ):
        fig.add_trace(go.Bar(x=x, y=table[column], name=name), secondary_y=False)
    fig.add_trace(
        go.Scatter(
            x=x,
            y=table["time_in_range"] * 100,
            name="time in range",
            mode="lines+markers",
            line={"color": "black"},
        ),
        secondary_y=True,
    )
    fig.update_layout(title=title, barmode="group", height=420, xaxis_title="range width")
    fig.update_yaxes(title_text="% of capital", secondary_y=False)
    fig.update_yaxes(title_text="% of time in range", secondary_y=True, range=[0, 105])
    return fig


def health_factor(frame: pl.DataFrame, *, title: str = "Health factor") -> go.Figure:
    """Health factor over time (``ts`` ms, ``health_factor``) with the liquidation line."""
    fig = go.Figure(
        go.Scatter(x=_dt(frame["ts"]), y=frame["health_factor"], name="health factor", mode="lines")
    )
    fig.add_hline(y=1.0, line={"color": "red", "dash": "dash"}, annotation_text="liquidation")
    fig.update_layout(title=title, height=360, yaxis_title="health factor")
    return fig


def gate_criteria(criteria: pl.DataFrame, *, title: str = "Promotion gate") -> go.Figure:
    """A scorecard of a validation record: each criterion's value, threshold and verdict.

    ``criteria`` is ``ValidationRecord.frame()`` (``criterion``, ``value``, ``comparison``,
    ``threshold``, ``passed``, ``detail``). Passing rows are green, failing ones red.
    """

    def number(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.4g}"

    rows = criteria.to_dicts()
    colour = ["#d9f2d9" if r["passed"] else "#f8d7da" for r in rows]
    cells = [
        [r["criterion"] for r in rows],
        [number(r["value"]) for r in rows],
        [f"{r['comparison']} {number(r['threshold'])}" for r in rows],
        ["pass" if r["passed"] else "FAIL" for r in rows],
        [r["detail"] for r in rows],
    ]
    verdict = "PASS" if all(r["passed"] for r in rows) else "FAIL"
    fig = go.Figure(
        go.Table(
            columnwidth=[1.2, 0.8, 0.9, 0.5, 3.6],
            header={"values": ["criterion", "value", "threshold", "", "detail"], "align": "left"},
            cells={"values": cells, "fill_color": [colour] * len(cells), "align": "left"},
        )
    )
    fig.update_layout(title=f"{title}: {verdict}", height=120 + 32 * len(rows))
    return fig
