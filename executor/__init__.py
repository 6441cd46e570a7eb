"""executor: promotes validated strategies to paper trading, then to live trading on an EVM chain.

Not built yet. The planned modules (registry, crash-safe state, risk, paper and EVM brokers,
the run loop and its CLI) are described in the project's design notes; until they land this
package only reserves the name, so nothing here should be imported for real work.
"""
