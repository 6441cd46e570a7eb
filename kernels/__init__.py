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
nothing. ``research_lib.indicators`` lists every indicator with its inputs and reference.
"""
