"""kernels: pure numba functions on numpy arrays (no I/O, no clock, no logging, no polars).

Modules are grouped by family: ``rolling`` (EMA, rolling mean/std/z-score), ``momentum``
(RSI), ``backtest`` (target-position simulation), ``stats`` (Sharpe, drawdown) and
``simulate`` (synthetic-market paths). Import the module you need; nothing is re-exported
here, so importing ``kernels`` compiles nothing.
"""
