"""DeFi analytics: Uniswap V2/V3 pools and positions, LP range backtests, Aave lending, arbitrage.

Float paths that run in sweeps live in ``kernels.amm`` and ``kernels.lending``; this package
checks inputs, calls them, and holds the exact integer (Python int) paths wherever a
contract's answer is asked for.
"""
