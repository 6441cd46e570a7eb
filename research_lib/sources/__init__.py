"""Market data sources behind one small protocol: ``fetch(...) -> pl.DataFrame``.

Each source module (synthetic, and later binance, files, ...) returns the same tidy frames,
so the lake, the notebooks and the executor never care where the data came from.

Examples
--------
>>> from research_lib.config import MarketConfig
>>> source = get_source(MarketConfig())
>>> source.name
'synthetic'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import polars as pl

from research_lib.config import MarketConfig
from research_lib.sources.synthetic import SyntheticMarketConfig, SyntheticSource

__all__ = ["KNOWN_SOURCES", "Source", "SyntheticMarketConfig", "SyntheticSource", "get_source"]

KNOWN_SOURCES = ("synthetic", "binance", "binance_usdm", "coinbase", "coingecko", "files", "evm")


@runtime_checkable
class Source(Protocol):
    """Anything that returns a dataset for symbols, an interval and a [start_ms, end_ms) range.

    ``"bars"`` frames have columns ts (Int64, bar open in epoch ms), symbol, open, high, low,
    close, volume; ``"funding"`` frames have ts, symbol, funding_rate, mark_price. Rows are
    sorted by symbol, then ts.
    """

    name: str

    def fetch(
        self,
        *,
        dataset: str,
        symbols: Sequence[str],
        interval: str,
        start_ms: int,
        end_ms: int,
    ) -> pl.DataFrame: ...


def get_source(market: MarketConfig) -> Source:
    """The source named by ``market.source``.

    Parameters
    ----------
    market
        The run's market config; the synthetic source is seeded with ``market.seed`` and
        simulates ``market.symbols``.

    Examples
    --------
    >>> from research_lib.config import MarketConfig
    >>> market = MarketConfig(symbols=("BTCUSDT", "ETHUSDT"))
    >>> bars = get_source(market).fetch(
    ...     dataset="bars", symbols=market.symbols, interval=market.interval,
    ...     start_ms=market.start_ms, end_ms=market.end_ms,
    ... )
    >>> bars["symbol"].unique().sort().to_list()
    ['BTCUSDT', 'ETHUSDT']
    """
    if market.source == "synthetic":
        # Each symbol has its own random stream, so a symbol's path is the same whichever
        # other symbols the market lists.
        return SyntheticSource(SyntheticMarketConfig(seed=market.seed, symbols=market.symbols))
    if market.source in ("binance", "binance_usdm"):
        from research_lib.sources.binance import BinanceSource

        return BinanceSource(market="spot" if market.source == "binance" else "usdm")
    if market.source == "coinbase":
        from research_lib.sources.coinbase import CoinbaseSource

        return CoinbaseSource()
    if market.source == "coingecko":
        from research_lib.sources.coingecko import CoinGeckoSource

        return CoinGeckoSource()
    if market.source == "files":
        from research_lib.sources.files import FileSource

        return FileSource(market.files_path)
    if market.source == "evm":
        from research_lib.sources.evm_bars import EvmSource

        return EvmSource(
            market.rpc_url,
            start_ms=market.start_ms,
            end_ms=market.end_ms,
            interval_ms=market.interval_ms,
            seed=market.seed,
        )
    raise ValueError(f"source={market.source!r} is unknown; use one of {list(KNOWN_SOURCES)}")
