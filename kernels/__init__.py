"""kernels: pure numba functions on numpy arrays (no I/O, no clock, no logging, no polars).

Modules are grouped by family:

- ``rolling``: EMA, rolling mean/std/z-score;
- ``momentum``: RSI, stochastics, Williams %R, CCI, MFI, ROC, momentum;
- ``trend``: SMA, WMA, DEMA, TEMA, TRIX, KAMA, MACD, ADX, Aroon, Ichimoku, Parabolic SAR;
- ``volatility``: Bollinger, ATR/NATR, Keltner, Donchian, realised volatility;
- ``volume``: OBV, VWAP (rolling and anchored), A/D, Chaikin money flow and oscillator;
- ``backtest``: the target-position portfolio simulation; ``sweep``: parameter sweeps;
- ``stats``: performance metrics; ``simulate``: synthetic-market paths;
- ``amm``: Uniswap V2 amounts and V3 tick / liquidity maths in float, impermanent loss, the
  V3 LP range backtest and its parallel sweep (the exact integer paths are in
  ``research_lib.defi.uniswap``);
- ``lending``: Aave V3 interest factors, index accrual, health factor, liquidation price.

Import the module you need; nothing is re-exported here, so importing ``kernels`` compiles
nothing (it does start numba's threading layer: see below). ``research_lib.indicators``
lists every indicator with its inputs and reference.
"""

from numba import get_num_threads

# Start numba's threading layer at import. The windowed kernels are cached functions that call
# parallel (prange) ones, and numba records in a caller's cache entry that the threading layer
# must be started only if the parallel callee was compiled, not loaded from the cache, in the
# process that compiled the caller; such a caller can segfault when loaded in a fresh process
# (numba issue #8578). Starting the layer here costs ~20 ms and compiles nothing.
get_num_threads()
