"""Pool analytics from indexed events: swaps, prices, volumes, and LP-ready minutes.

Reads the ``evm_events`` the indexer stored (``research_lib.sources.evm``) for pools on a
chain and turns them into tidy frames: one row per swap with the price after it, a summary
per pool, and, for a V3 pool, the per-minute frame that ``research_lib.defi.lp`` sweeps
(the schema of the real Polygon minutes in ``../shared/data/real``).

Prices are raw token1 per token0 (the contracts' orientation) unless a ``quote`` token is
named, in which case they are quote per base.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from research_lib.chain_market import Pool
from research_lib.lake import Lake
from research_lib.sources.evm import decode_events

_Q96 = 2**96


def _events(lake: Lake, chain_id: int, pool: Pool) -> pl.DataFrame:
    return lake.read("evm_events", filters={"chain": str(chain_id)}).filter(
        pl.col("address") == pool.address
    )


def pool_swaps(lake: Lake, chain_id: int, pool: Pool) -> pl.DataFrame:
    """One row per swap: ts, block, log_index, price (token1/token0 after the swap),
    amount0 and amount1 (into the pool, signed), in_amount0/in_amount1 (paid in, fee
    included) and, for V3, the active liquidity and tick."""
    events = _events(lake, chain_id, pool)
    if pool.kind == "v3":
        swaps = decode_events(events, "v3_swap")
        return swaps.select(
            "ts",
            "block",
            "log_index",
            ((pl.col("sqrtPriceX96") / _Q96) ** 2).alias("price"),
            "amount0",
            "amount1",
            pl.col("amount0").clip(lower_bound=0).alias("in_amount0"),
            pl.col("amount1").clip(lower_bound=0).alias("in_amount1"),
            "liquidity",
            pl.col("tick_exact").cast(pl.Int64).alias("tick"),
        ).sort("block", "log_index")
    syncs = decode_events(events, "v2_sync").select(
        "block",
        (pl.col("log_index") + 1).alias("log_index"),
        (pl.col("reserve1") / pl.col("reserve0")).alias("price"),
    )
    swaps = decode_events(events, "v2_swap")
    # V2 emits Sync, then Swap, from one call: the Sync just before a Swap prices it.
    return (
        swaps.select(
            "ts",
            "block",
            "log_index",
            (pl.col("amount0In") - pl.col("amount0Out")).alias("amount0"),
            (pl.col("amount1In") - pl.col("amount1Out")).alias("amount1"),
            pl.col("amount0In").alias("in_amount0"),
            pl.col("amount1In").alias("in_amount1"),
        )
        .join(syncs, on=["block", "log_index"], how="left")
        .select(
            "ts", "block", "log_index", "price", "amount0", "amount1", "in_amount0", "in_amount1"
        )
        .sort("block", "log_index")
    )


def pool_summary(lake: Lake, chain_id: int, pools: Sequence[Pool]) -> pl.DataFrame:
    """Per pool: swaps, first and last price, the range of prices, and the volume and fees
    paid in each token (raw units, fee = in_amount * fee tier)."""
    rows = []
    for pool in pools:
        swaps = pool_swaps(lake, chain_id, pool)
        fee = pool.fee_pips / 1e6
        rows.append(
            {
                "pool": pool.name,
                "address": pool.address,
                "swaps": swaps.height,
                "first_price": swaps["price"].first() if swaps.height else None,
                "last_price": swaps["price"].last() if swaps.height else None,
                "min_price": swaps["price"].min() if swaps.height else None,
                "max_price": swaps["price"].max() if swaps.height else None,
                "volume0": swaps["amount0"].abs().sum(),
                "volume1": swaps["amount1"].abs().sum(),
                "fees0": swaps["in_amount0"].sum() * fee,
                "fees1": swaps["in_amount1"].sum() * fee,
            }
        )
    return pl.DataFrame(rows)


def v3_minutes(lake: Lake, chain_id: int, pool: Pool, *, quote: str) -> pl.DataFrame:
    """A V3 pool's swaps as the per-minute frame of the real Polygon data (``ts``,
    ``close_tick``, ``in_amount0``, ``in_amount1``, ``liquidity``), oriented so that token0
    is ``quote``: ``research_lib.defi.lp.prepare_v3_minutes`` then prices it as quote per
    base, as it prices the Polygon pool in USDC per WETH.

    Minutes without swaps are left out (the minute after a quiet stretch carries its own
    close), as in the real data's gaps.
    """
    if pool.kind != "v3":
        raise ValueError(f"v3_minutes: {pool.name} is not a V3 pool")
    if quote not in (pool.token0, pool.token1):
        raise ValueError(f"v3_minutes: quote={quote!r} is not a token of {pool.name}")
    swaps = pool_swaps(lake, chain_id, pool)
    flip = quote != pool.token0
    # The data's convention is token0 = quote; with the tokens the other way round, the
    # tick changes sign (1.0001**-tick = token0 per token1) and the inflows swap places.
    tick = -pl.col("tick") if flip else pl.col("tick")
    in0, in1 = ("in_amount1", "in_amount0") if flip else ("in_amount0", "in_amount1")
    return (
        swaps.with_columns((pl.col("ts") // 60_000 * 60_000).alias("minute"))
        .group_by("minute", maintain_order=True)
        .agg(
            tick.last().cast(pl.Int32).alias("close_tick"),
            pl.col(in0).sum().alias("in_amount0"),
            pl.col(in1).sum().alias("in_amount1"),
            pl.col("liquidity").last().alias("liquidity"),
        )
        .rename({"minute": "ts"})
        .sort("ts")
    )


def range_width_sweep(
    minutes: pl.DataFrame,
    *,
    widths: Sequence[float],
    capital_usd: float,
    fee_tier_bps: float,
    tick_spacing: int,
    decimals0: int,
    decimals1: int,
) -> pl.DataFrame:
    """``research_lib.defi.lp.range_sweep`` over ranges of +- ``widths`` around the entry
    price (the first minute's), with the results also as % of capital: ``width``,
    ``fees_pct``, ``il_pct``, ``net_vs_hold_pct`` next to the sweep's own columns."""
    from research_lib.defi.lp import range_sweep

    if not widths or min(widths) <= 0 or max(widths) >= 1:
        raise ValueError(f"widths={list(widths)}: each must be a fraction in (0, 1)")
    entry = float(minutes["price"][0])
    table = range_sweep(
        minutes,
        ranges=[(entry * (1 - w), entry * (1 + w)) for w in widths],
        capital_usd=capital_usd,
        fee_tier_bps=fee_tier_bps,
        tick_spacing=tick_spacing,
        decimals0=decimals0,
        decimals1=decimals1,
    )
    return table.with_columns(
        pl.Series("width", list(widths), dtype=pl.Float64),
        (pl.col("fees_usd") / capital_usd * 100).alias("fees_pct"),
        (pl.col("il") * 100).alias("il_pct"),
        (pl.col("net_pnl_vs_hold_usd") / capital_usd * 100).alias("net_vs_hold_pct"),
    ).select("width", "fees_pct", "il_pct", "net_vs_hold_pct", *table.columns)


@dataclass(frozen=True)
class LpMinutes:
    """Minutes for the LP range sweep and the pool parameters they go with."""

    label: str
    minutes: pl.DataFrame  # prepared: research_lib.defi.lp.prepare_v3_minutes
    fee_tier_bps: float
    tick_spacing: int
    decimals0: int
    decimals1: int


POLYGON_V3_FILE = "dex/uniswap_v3_polygon_usdc_weth_005_1m.parquet"


def lp_minutes(choice: str, *, days: float, lake: Lake, chain_id: int, pool: Pool) -> LpMinutes:
    """The LP sweep's data: ``real`` (the Polygon USDC.e/WETH 0.05% minutes from
    ``research_lib.paths.real_data_dir()``, the first ``days``), ``embedded`` (``pool``'s
    indexed swaps, priced in USDC), or ``auto`` (real when the file is there)."""
    from research_lib.defi.lp import load_v3_minutes, prepare_v3_minutes
    from research_lib.paths import real_data_dir

    path = real_data_dir() / POLYGON_V3_FILE
    if choice not in ("auto", "real", "embedded"):
        raise ValueError(f"lp_data={choice!r}: use auto, real or embedded")
    if choice == "real" and not path.is_file():
        raise FileNotFoundError(f"lp_data='real' but {path} is missing; use auto or embedded")
    if choice == "real" or (choice == "auto" and path.is_file()):
        minutes = load_v3_minutes(path)
        end = minutes["ts"][0] + int(days * 86_400_000)
        return LpMinutes(
            f"Polygon USDC.e/WETH 0.05% (real, first {days:g} days)",
            minutes.filter(pl.col("ts") < end),
            5.0,
            10,
            6,
            18,
        )
    raw = v3_minutes(lake, chain_id, pool, quote="USDC")
    prepared = prepare_v3_minutes(raw, decimals0=18, decimals1=18)
    return LpMinutes(f"embedded {pool.name}", prepared, pool.fee_pips / 100, 10, 18, 18)
