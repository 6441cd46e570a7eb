"""The EVM log indexer's throughput against anvil, with web3.py's own log reading as the peer.

An embedded chain (``research_lib.chain_market.start_embedded_chain``, seeded) mines
``n_blocks`` blocks of busy history; then, ``repeats`` times, into a fresh lake each time:

- **ours**: ``EvmIndexer.run()`` over every pool (chunked ``eth_getLogs``, headers in
  batches, ABI decoding, hash checks, parquet writes and checkpoints);
- **web3**: the same logs through web3.py (``eth.get_logs`` over the whole range, then each
  pool contract's ``events.<Event>().process_log``), decoded only: nothing stored.

Both count the same logs. The report gives logs/s for each (median of the repeats) and
their ratio. ``python tests/benchmarks/bench_indexer.py`` prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

_EVENTS = {
    "v2": ("UniswapV2Pair", ("Swap", "Sync", "Mint", "Burn", "Transfer")),
    "v3": ("UniswapV3Pool", ("Swap", "Mint", "Burn", "Collect")),
}


def _web3_decode_all(chain: Any, to_block: int) -> int:
    """Every pool log fetched and decoded by web3.py: the peer."""
    from research_lib.chain import contract

    w3 = chain.w3
    addresses = [p.address for p in chain.pools]
    kinds = {p.address: p.kind for p in chain.pools}
    logs = w3.eth.get_logs({"fromBlock": 0, "toBlock": to_block, "address": addresses})
    decoded = 0
    for log in logs:
        name, events = _EVENTS[kinds[log["address"]]]
        pool = contract(w3, name, log["address"])
        for event in events:
            try:
                getattr(pool.events, event)().process_log(log)
            except Exception:  # another event's layout: try the next
                continue
            decoded += 1
            break
    return decoded


def bench_indexer(*, n_blocks: int = 600, repeats: int = 3, seed: int = 3) -> dict[str, Any]:
    from research_lib.chain_market import start_embedded_chain
    from research_lib.lake import Lake
    from research_lib.sources.evm import EvmIndexer

    t0 = time.perf_counter()
    chain = start_embedded_chain(
        seed=seed, n_blocks=n_blocks, noise_swaps_per_block=4.0, progress=False
    )
    build_s = time.perf_counter() - t0
    try:
        head = chain.w3.eth.block_number
        ours: list[float] = []
        logs = chunks = 0
        for _ in range(repeats):
            with tempfile.TemporaryDirectory() as tmp:
                with EvmIndexer(
                    chain.rpc_url,
                    addresses=[p.address for p in chain.pools],
                    confirmations=0,
                    lake=Lake(Path(tmp)),
                    progress=False,
                ) as indexer:
                    start = time.perf_counter()
                    result = indexer.run()
                    ours.append(time.perf_counter() - start)
            logs, chunks = result.logs, result.chunks
        peer: list[float] = []
        peer_logs = 0
        for _ in range(repeats):
            start = time.perf_counter()
            peer_logs = _web3_decode_all(chain, head)
            peer.append(time.perf_counter() - start)
    finally:
        chain.stop()
    ours_rate = logs / statistics.median(ours)
    peer_rate = peer_logs / statistics.median(peer)
    return {
        "name": "evm_indexer",
        "n_blocks": head + 1,
        "chain_build_seconds": build_s,
        "logs": logs,
        "chunks": chunks,
        "repeats": repeats,
        "ours_seconds_median": statistics.median(ours),
        "ours_logs_per_s": ours_rate,
        "web3_logs": peer_logs,
        "web3_seconds_median": statistics.median(peer),
        "web3_logs_per_s": peer_rate,
        "ratio_to_web3": ours_rate / peer_rate,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=600)
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args()
    json.dump(bench_indexer(n_blocks=options.blocks, repeats=options.repeats), sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
