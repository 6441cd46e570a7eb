"""``source="evm"``: OHLCV bars of Uniswap pools, built from their on-chain events.

:class:`EvmSource` indexes a pool's events into the lake with
:class:`~research_lib.sources.evm.EvmIndexer` (reorg-safe, resumable) and turns them into
bars on the market's grid: the price after every swap (V3 ``Swap.sqrtPriceX96``, V2
``Sync`` reserves), in quote per base with the tokens' decimals applied, and the base
amount swapped as volume. A bar opens at the previous bar's close (the pool's state carries
over), so a bar without swaps is flat with zero volume, as the pool was.

Symbols:

- on the embedded chain (``rpc_url="embedded"``), pool names such as ``WETHUSDC-V2``,
  ``WETHUSDC-V3-500`` or ``WBTCWETH-V3-3000``: base, quote, version and fee tier (pips);
- on any other node, a pool address (``0x...``): V3 if it answers ``slot0()``, else V2;
  the base is the pool's token0, and ``0x...:inverse`` takes token1 as the base.

The embedded chain is simulated over the market's range: :func:`start_embedded_chain` with
the market's seed, the genesis just before ``start`` and ``blocks_per_bar`` blocks per bar,
so the history lines up with the dates asked for. It is started on first use and stopped by
:meth:`EvmSource.close`.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import polars as pl
from web3 import Web3

from research_lib.chain import connect, contract
from research_lib.chain_market import EmbeddedChain, Pool, start_embedded_chain
from research_lib.lake import Lake
from research_lib.sources.base import BARS_SCHEMA, SourceError, validate_page
from research_lib.sources.evm import EvmIndexer, decode_events
from research_lib.sources.http import Closing

EMBEDDED = "embedded"


@dataclass(frozen=True)
class PoolRef:
    """A pool as a bar series: its address, version, and which token is the base."""

    address: str
    kind: str  # "v2" or "v3"
    base_is_token0: bool
    decimals0: int
    decimals1: int

    def price(self, raw_token1_per_token0: float) -> float:
        """Quote per base in human units, from the raw token1/token0 price."""
        human = raw_token1_per_token0 * 10.0 ** (self.decimals0 - self.decimals1)
        return human if self.base_is_token0 else 1.0 / human

    def price_expr(self, raw_token1_per_token0: pl.Expr) -> pl.Expr:
        """:meth:`price` as a polars expression."""
        human = raw_token1_per_token0 * 10.0 ** (self.decimals0 - self.decimals1)
        return human if self.base_is_token0 else 1.0 / human


def _embedded_quote(pool: Pool) -> str:
    return "USDC" if "USDC" in (pool.token0, pool.token1) else "WETH"


def _embedded_base(pool: Pool) -> str:
    quote = _embedded_quote(pool)
    return pool.token1 if pool.token0 == quote else pool.token0


def embedded_symbol(pool: Pool) -> str:
    """The symbol of an embedded pool, e.g. ``WETHUSDC-V3-500`` (quote: USDC, else WETH)."""
    fee = f"-{pool.fee_pips}" if pool.kind == "v3" else ""
    return f"{_embedded_base(pool)}{_embedded_quote(pool)}-{pool.kind.upper()}{fee}"


class EvmSource(Closing):
    """Pool bars from a node at ``rpc_url`` (or the embedded chain), as validated pages.

    Parameters
    ----------
    rpc_url
        ``"embedded"`` or a JSON-RPC URL.
    start_ms, end_ms, interval_ms
        The market's range and bar interval: the embedded chain is simulated over them.
    seed
        The embedded market's seed.
    lake
        Where the indexed events go (default: the data folder's lake).
    confirmations
        Blocks below the head that count as final (0 on the embedded chain).
    blocks_per_bar
        Blocks per bar on the embedded chain.
    """

    name = "evm"

    def __init__(
        self,
        rpc_url: str,
        *,
        start_ms: int,
        end_ms: int,
        interval_ms: int,
        seed: int = 7,
        lake: Lake | None = None,
        confirmations: int | None = None,
        blocks_per_bar: int = 4,
        progress: bool = False,
    ) -> None:
        if not rpc_url:
            raise ValueError("rpc_url is empty: give a JSON-RPC URL or 'embedded'")
        self.rpc_url = rpc_url
        self.start_ms, self.end_ms, self.interval_ms = start_ms, end_ms, interval_ms
        self.seed = seed
        self.lake = lake or Lake()
        self.confirmations = (
            (0 if rpc_url == EMBEDDED else 12) if confirmations is None else (confirmations)
        )
        self.blocks_per_bar = blocks_per_bar
        self.progress = progress
        self._chain: EmbeddedChain | None = None
        self._w3: Web3 | None = None
        # The collector runs symbols in threads: one of them starts the node, the others
        # wait for it; indexing runs one at a time (one node, one lake writer per leaf).
        self._lock = threading.Lock()

    def close(self) -> None:
        if self._chain is not None:
            self._chain.stop()
            self._chain = None

    # -- the node -----------------------------------------------------------------------
    def _node(self) -> tuple[Web3, str]:
        with self._lock:
            return self._start_node()

    def _start_node(self) -> tuple[Web3, str]:
        if self.rpc_url == EMBEDDED:
            if self._chain is None:
                block_time_s = max(1, self.interval_ms // 1000 // self.blocks_per_bar)
                n_blocks = max(1, math.ceil((self.end_ms - self.start_ms) / 1000 / block_time_s))
                self._chain = start_embedded_chain(
                    seed=self.seed,
                    n_blocks=n_blocks,
                    block_time_s=block_time_s,
                    start_ms=self.start_ms,
                    progress=self.progress,
                )
            return self._chain.w3, self._chain.rpc_url
        if self._w3 is None:
            self._w3 = connect(self.rpc_url)
        return self._w3, self.rpc_url

    def resolve(self, symbol: str) -> PoolRef:
        """The pool behind ``symbol`` (see the module docstring)."""
        w3, _ = self._node()
        if self.rpc_url == EMBEDDED:
            assert self._chain is not None
            names = {embedded_symbol(p): p for p in self._chain.pools}
            if symbol not in names:
                raise SourceError(
                    f"evm: symbol {symbol!r} is not an embedded pool; use one of {sorted(names)}"
                )
            pool = names[symbol]
            return PoolRef(pool.address, pool.kind, pool.token0 == _embedded_base(pool), 18, 18)
        address, _, suffix = symbol.partition(":")
        if not Web3.is_address(address) or suffix not in ("", "inverse"):
            raise SourceError(
                f"evm: symbol {symbol!r} must be a pool address '0x...' or '0x...:inverse'"
            )
        address = Web3.to_checksum_address(address)
        try:
            contract(w3, "UniswapV3Pool", address).functions.slot0().call()
            kind = "v3"
        except Exception:  # not a V3 pool: try V2
            kind = "v2"
        pair = contract(w3, "UniswapV2Pair", address).functions
        try:
            tokens = [pair.token0().call(), pair.token1().call()]
            decimals = [contract(w3, "ERC20", t).functions.decimals().call() for t in tokens]
        except Exception as exc:
            raise SourceError(f"evm: {address} does not look like a Uniswap pool ({exc})") from exc
        return PoolRef(address, kind, suffix != "inverse", int(decimals[0]), int(decimals[1]))

    # -- pages --------------------------------------------------------------------------
    def pages(
        self, *, dataset: str, symbol: str, interval: str, start_ms: int, end_ms: int
    ) -> Iterator[pl.DataFrame]:
        """One validated bars page for pool ``symbol`` over ``[start_ms, end_ms)``."""
        if dataset != "bars":
            raise ValueError(f"dataset={dataset!r}: the evm source gives pool 'bars' only")
        w3, url = self._node()
        pool = self.resolve(symbol)
        with self._lock:
            page = self._page(w3, url, pool, symbol, start_ms, end_ms)
        yield page

    def _page(
        self, w3: Web3, url: str, pool: PoolRef, symbol: str, start_ms: int, end_ms: int
    ) -> pl.DataFrame:
        first = _first_block_at(w3, start_ms)
        last = _first_block_at(w3, end_ms) - 1
        events = ["v3_swap"] if pool.kind == "v3" else ["v2_swap", "v2_sync"]
        with EvmIndexer(
            url,
            addresses=[pool.address],
            events=events,
            start_block=first,
            confirmations=self.confirmations,
            lake=self.lake,
            progress=self.progress,
        ) as indexer:
            indexer.run(to_block=max(first - 1, last))
            chain = str(indexer.chain_id)
        opening = _price_at(w3, pool, first - 1)
        trades = _trades(self.lake, chain, pool, first, last)
        frame = _bars(trades, opening, symbol, start_ms, end_ms, self.interval_ms)
        validate_page(
            frame,
            dataset="bars",
            where=f"evm {symbol} bars",
            interval_ms=self.interval_ms,
            start_ms=start_ms,
            end_ms=end_ms,
        )
        return frame


def _first_block_at(w3: Web3, ts_ms: int) -> int:
    """The first block whose timestamp is >= ts_ms (head + 1 if none): a binary search."""
    lo, hi = 0, w3.eth.block_number + 1
    while lo < hi:
        mid = (lo + hi) // 2
        if w3.eth.get_block(mid)["timestamp"] * 1000 >= ts_ms:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _price_at(w3: Web3, pool: PoolRef, block: int) -> float:
    """The pool's price at the end of ``block`` (quote per base)."""
    if block < 0:
        raise SourceError(f"evm: no pool state before block 0 for {pool.address}")
    try:
        if pool.kind == "v3":
            slot0 = (
                contract(w3, "UniswapV3Pool", pool.address)
                .functions.slot0()
                .call(block_identifier=block)
            )
            return pool.price((slot0[0] / 2**96) ** 2)
        r0, r1, _ = (
            contract(w3, "UniswapV2Pair", pool.address)
            .functions.getReserves()
            .call(block_identifier=block)
        )
    except Exception as exc:
        raise SourceError(
            f"evm: pool {pool.address} has no state at block {block} (not deployed yet, or "
            f"the node prunes history): {exc}"
        ) from exc
    if r0 == 0 or r1 == 0:
        raise SourceError(f"evm: pool {pool.address} is empty at block {block}")
    return pool.price(r1 / r0)


def _trades(lake: Lake, chain: str, pool: PoolRef, first: int, last: int) -> pl.DataFrame:
    """(ts, block, log_index, price, base_volume) of every swap in [first, last]."""
    empty = pl.DataFrame(
        schema={
            "ts": pl.Int64,
            "block": pl.Int64,
            "log_index": pl.Int64,
            "price": pl.Float64,
            "volume": pl.Float64,
        }
    )
    if last < first or not lake.files("evm_events"):
        return empty
    events = lake.read("evm_events", filters={"chain": chain}).filter(
        (pl.col("address") == pool.address) & pl.col("block").is_between(first, last)
    )
    base_decimals = pool.decimals0 if pool.base_is_token0 else pool.decimals1
    base = "0" if pool.base_is_token0 else "1"
    if pool.kind == "v3":
        swaps = decode_events(events, "v3_swap")
        if swaps.height == 0:
            return empty
        raw = (pl.col("sqrtPriceX96") / 2**96) ** 2
        return swaps.select(
            "ts",
            "block",
            "log_index",
            pool.price_expr(raw).alias("price"),
            (pl.col(f"amount{base}").abs() / 10.0**base_decimals).alias("volume"),
        ).sort("block", "log_index")
    syncs = decode_events(events, "v2_sync")
    swaps = decode_events(events, "v2_swap")
    if syncs.height == 0:
        return empty
    # V2 emits Sync then Swap in the same call: the Swap's log index is the Sync's + 1.
    volume = swaps.select(
        "block",
        (pl.col("log_index") - 1).alias("log_index"),
        ((pl.col(f"amount{base}In") + pl.col(f"amount{base}Out")) / 10.0**base_decimals).alias(
            "volume"
        ),
    )
    return (
        syncs.select(
            "ts",
            "block",
            "log_index",
            pool.price_expr(pl.col("reserve1") / pl.col("reserve0")).alias("price"),
        )
        .join(volume, on=["block", "log_index"], how="left")
        .with_columns(pl.col("volume").fill_null(0.0))
        .sort("block", "log_index")
    )


def _bars(
    trades: pl.DataFrame,
    opening: float,
    symbol: str,
    start_ms: int,
    end_ms: int,
    interval_ms: int,
) -> pl.DataFrame:
    """Bars on the grid of [start_ms, end_ms): each opens at the previous close."""
    grid = pl.DataFrame({"ts": pl.int_range(start_ms, end_ms, interval_ms, eager=True)})
    buckets = (
        trades.with_columns(
            (start_ms + (pl.col("ts") - start_ms) // interval_ms * interval_ms).alias("bar")
        )
        .group_by("bar")
        .agg(
            pl.col("price").max().alias("hi"),
            pl.col("price").min().alias("lo"),
            pl.col("price").last().alias("last"),
            pl.col("volume").sum().alias("volume"),
        )
    )
    frame = (
        grid.join(buckets, left_on="ts", right_on="bar", how="left")
        .sort("ts")
        .with_columns(pl.col("last").forward_fill().fill_null(opening).alias("close"))
        .with_columns(pl.col("close").shift(1).fill_null(opening).alias("open"))
        .with_columns(
            pl.max_horizontal("open", "close", "hi").alias("high"),
            pl.min_horizontal("open", "close", "lo").alias("low"),
            pl.col("volume").fill_null(0.0),
            pl.lit(symbol).alias("symbol"),
        )
    )
    return frame.select(list(BARS_SCHEMA)).cast(BARS_SCHEMA)


__all__ = ["EMBEDDED", "EvmSource", "PoolRef", "embedded_symbol"]
