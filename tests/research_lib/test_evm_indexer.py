"""The EVM log indexer against a real anvil: decoding, chunking, faults, reorgs, restarts.

The reference is web3's own ABI decoding of ``eth_getLogs`` over the whole range, so the
lake must hold exactly the chain's events, whatever path the indexer took to get them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from servers.rpc_proxy import Fault, RpcProxy
from web3 import Web3

from research_lib.chain import contract, send, snapshot
from research_lib.chain_market import simulate_market
from research_lib.lake import Lake
from research_lib.sources.base import SourceError
from research_lib.sources.evm import EvmIndexer, decode_events

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# (contract artifact, event) for each lake event name: web3 decodes the reference with them.
_WEB3_EVENTS = {
    "v2_swap": ("UniswapV2Pair", "Swap"),
    "v2_sync": ("UniswapV2Pair", "Sync"),
    "v2_mint": ("UniswapV2Pair", "Mint"),
    "v2_burn": ("UniswapV2Pair", "Burn"),
    "v3_swap": ("UniswapV3Pool", "Swap"),
    "v3_mint": ("UniswapV3Pool", "Mint"),
    "v3_burn": ("UniswapV3Pool", "Burn"),
    "v3_collect": ("UniswapV3Pool", "Collect"),
    "erc20_transfer": ("ERC20", "Transfer"),
}


def reference_events(w3: Web3, addresses: list[str], to_block: int) -> set[tuple]:
    """(block, log_index, event, args) of every log, decoded by web3 from the ABIs."""
    logs = w3.eth.get_logs({"fromBlock": 0, "toBlock": to_block, "address": addresses})
    out = set()
    for log in logs:
        for name, (artifact_name, event) in _WEB3_EVENTS.items():
            ev = getattr(contract(w3, artifact_name, log["address"]).events, event)()
            try:
                args = ev.process_log(log)["args"]
            except Exception:  # another event's layout
                continue
            norm = tuple(sorted((k, str(v)) for k, v in args.items()))
            out.add((log["blockNumber"], log["logIndex"], name, norm))
            break
    return out


def lake_events(lake: Lake, chain_id: int) -> set[tuple]:
    frame = lake.read("evm_events", filters={"chain": str(chain_id)})
    out = set()
    for row in frame.iter_rows(named=True):
        args = json.loads(row["args"])
        norm = tuple(sorted((k, str(v)) for k, v in args.items()))
        out.add((row["block"], row["log_index"], row["event"], norm))
    assert frame.height == len(out), "duplicate rows in the lake"
    return out


def _mine_branch(chain, *, seed: int, n: int, after_ts: int) -> None:
    """Mine ``n`` busy blocks after ``after_ts``: a branch that differs by ``seed``."""
    rng = np.random.default_rng(seed)
    usd = {
        "WETH": 2300.0 * np.exp(np.cumsum(rng.normal(0, 0.003, n))),
        "WBTC": 42_000.0 * np.exp(np.cumsum(rng.normal(0, 0.003, n))),
        "USDC": np.ones(n),
    }
    simulate_market(
        chain.w3,
        chain.deployment,
        chain.pools,
        usd,
        seed=seed,
        start_ts_s=after_ts + 12,
        arbitrageur=chain.accounts["arbitrageur"],
        traders=[chain.accounts["trader0"]],
        noise_swaps_per_block=3.0,
        progress=False,
    )


def _addresses(chain) -> list[str]:
    return [p.address for p in chain.pools]


def test_the_lake_holds_exactly_the_chains_events(embedded_chain, tmp_path: Path) -> None:
    w3 = embedded_chain.w3
    head = w3.eth.block_number
    lake = Lake(tmp_path)
    with EvmIndexer(
        embedded_chain.rpc_url,
        addresses=_addresses(embedded_chain),
        confirmations=0,
        chunk_blocks=16,
        lake=lake,
        progress=False,
    ) as indexer:
        result = indexer.run()
        again = indexer.run()
    reference = reference_events(w3, _addresses(embedded_chain), head)
    assert lake_events(lake, w3.eth.chain_id) == reference
    assert result.logs == len(reference) and result.to_block == head
    assert again.logs == 0 and again.chunks == 0  # nothing new: nothing fetched
    # Swaps seen on chain = swaps the simulation sent after the pools opened.
    events = lake.read("evm_events")
    sim = embedded_chain.simulation
    n_swaps = events.filter(pl.col("event").is_in(["v2_swap", "v3_swap"])).height
    assert n_swaps == sim.n_arbitrage_swaps + sim.n_noise_swaps
    # Timestamps are the blocks' own.
    first = events.row(0, named=True)
    assert first["ts"] == w3.eth.get_block(first["block"])["timestamp"] * 1000


def test_decoded_v3_swaps_carry_exact_integers(embedded_chain, tmp_path: Path) -> None:
    pool = next(p for p in embedded_chain.pools if p.kind == "v3")
    lake = Lake(tmp_path)
    with EvmIndexer(
        embedded_chain.rpc_url,
        addresses=[pool.address],
        events=["v3_swap"],
        confirmations=0,
        lake=lake,
        progress=False,
    ) as indexer:
        indexer.run()
    swaps = decode_events(lake.read("evm_events"), "v3_swap")
    assert swaps.height > 0
    last = swaps.sort("block", "log_index").row(-1, named=True)
    slot0 = contract(embedded_chain.w3, "UniswapV3Pool", pool.address).functions.slot0().call()
    # The last swap's sqrtPriceX96 is the pool's price now, to the last bit (uint160).
    assert int(last["sqrtPriceX96_exact"]) == slot0[0]
    assert last["tick"] == slot0[1]


def test_resuming_from_a_checkpoint_equals_one_run(embedded_chain, tmp_path: Path) -> None:
    head = embedded_chain.w3.eth.block_number
    one, two = Lake(tmp_path / "one"), Lake(tmp_path / "two")
    kwargs = dict(addresses=_addresses(embedded_chain), confirmations=0, progress=False)
    with EvmIndexer(embedded_chain.rpc_url, lake=one, **kwargs) as indexer:
        indexer.run()
    with EvmIndexer(embedded_chain.rpc_url, lake=two, chunk_blocks=4, **kwargs) as indexer:
        first = indexer.run(to_block=head // 2)
        second = indexer.run()
    assert first.to_block == head // 2 and second.from_block == head // 2 + 1
    assert lake_events(one, 31337) == lake_events(two, 31337)


def test_rows_past_the_checkpoint_from_a_crash_are_replaced(embedded_chain, tmp_path) -> None:
    lake = Lake(tmp_path)
    kwargs = dict(addresses=_addresses(embedded_chain), confirmations=0, progress=False)
    with EvmIndexer(embedded_chain.rpc_url, lake=lake, **kwargs) as indexer:
        indexer.run()
        reference = lake_events(lake, 31337)
        # A crash after a chunk's rows were written but before its checkpoint: wind the
        # checkpoint back and plant an orphan row (a block hash this chain never had).
        mid = embedded_chain.w3.eth.block_number // 2
        indexer._save_checkpoint(type(indexer.checkpoint())(mid, indexer._hash_at(mid)))
        orphan = lake.read("evm_events").filter(pl.col("block") > mid).head(1)
        orphan = orphan.with_columns(pl.lit(10_000).alias("log_index"))
        lake.write("evm_events", orphan.drop("chain"), partition={"chain": "31337"})
        result = indexer.run()
    assert result.leftover_rows_deleted > 0
    assert lake_events(lake, 31337) == reference


def test_provider_limits_shrink_the_chunk_and_it_grows_back(embedded_chain, tmp_path) -> None:
    lake = Lake(tmp_path)
    head = embedded_chain.w3.eth.block_number
    reference = reference_events(embedded_chain.w3, _addresses(embedded_chain), head)
    per_block = np.bincount([e[0] for e in reference])
    # A results cap between the busiest block and a busy range, and a range cap.
    max_results = int(per_block.max()) + 2
    with RpcProxy(embedded_chain.rpc_url, max_block_range=10, max_results=max_results) as proxy:
        with EvmIndexer(
            proxy.url,
            addresses=_addresses(embedded_chain),
            confirmations=0,
            chunk_blocks=64,
            grow_after=2,
            lake=lake,
            progress=False,
        ) as indexer:
            result = indexer.run()
    refused = [n for n, _, outcome in proxy.log if outcome == "limit"]
    assert result.shrinks == len(refused) > 0
    # Chunks grew after successes, so they ran into the limit again later in the range.
    assert max(refused) > min(refused) + 3
    assert lake_events(lake, 31337) == reference


def test_a_range_refused_at_one_block_is_an_error(embedded_chain, tmp_path) -> None:
    with RpcProxy(embedded_chain.rpc_url, max_results=0) as proxy:
        with EvmIndexer(
            proxy.url,
            addresses=_addresses(embedded_chain),
            confirmations=0,
            chunk_blocks=4,
            lake=Lake(tmp_path),
            progress=False,
        ) as indexer:
            with pytest.raises(SourceError, match="min_chunk_blocks=1"):
                indexer.run()


def test_transport_faults_are_retried_to_the_same_lake(embedded_chain, tmp_path) -> None:
    faults = [
        Fault("500", every=5),
        Fault("garbage", nth=(3, 12)),
        Fault("rpc_error", nth=(7,), method="eth_chainId"),
        Fault("slow", nth=(9,), delay_s=4.0),
        Fault("503", nth=(2,)),
    ]
    lake = Lake(tmp_path)
    with RpcProxy(embedded_chain.rpc_url, faults=faults) as proxy:
        with EvmIndexer(
            proxy.url,
            addresses=_addresses(embedded_chain),
            confirmations=0,
            chunk_blocks=8,
            lake=lake,
            timeout_s=2.0,
            progress=False,
        ) as indexer:
            indexer.run()
            retries = indexer.rpc.stats["retries"]
    assert retries.get("5xx", 0) >= 2 and retries.get("bad_json", 0) == 2
    assert retries.get("timeout", 0) == 1
    head = embedded_chain.w3.eth.block_number
    assert lake_events(lake, 31337) == reference_events(
        embedded_chain.w3, _addresses(embedded_chain), head
    )


def test_a_real_reorg_rolls_back_the_orphaned_rows(embedded_chain, tmp_path) -> None:
    """Snapshot, mine branch A and index it; revert, mine a different (longer) branch B;
    index again: the lake must hold branch B's events and none of A's."""
    w3 = embedded_chain.w3
    lake = Lake(tmp_path)
    kwargs = dict(addresses=_addresses(embedded_chain), confirmations=0, progress=False)
    ts = int(w3.eth.get_block("latest")["timestamp"])

    with snapshot(w3):
        with EvmIndexer(embedded_chain.rpc_url, lake=lake, **kwargs) as indexer:
            indexer.run()
            fork = w3.eth.block_number + 1
            with snapshot(w3):
                _mine_branch(embedded_chain, seed=1, n=5, after_ts=ts)
                indexer.run()
                branch_a = lake_events(lake, 31337)
            _mine_branch(embedded_chain, seed=2, n=8, after_ts=ts)
            result = indexer.run()
        head = w3.eth.block_number
        branch_b = reference_events(w3, _addresses(embedded_chain), head)
        live_hashes = {b: w3.eth.get_block(b)["hash"].to_0x_hex() for b in range(fork, head + 1)}
    assert len(result.rollbacks) == 1
    rolled_from, deleted = result.rollbacks[0]
    assert rolled_from <= fork and deleted > 0
    assert lake_events(lake, 31337) == branch_b
    assert {e for e in branch_a if e[0] >= fork}.isdisjoint(branch_b)
    blocks = lake.read("evm_blocks")
    assert blocks["block"].is_unique().all()
    for row in blocks.filter(pl.col("block") >= fork).iter_rows(named=True):
        assert row["hash"] == live_hashes[row["block"]]


_KILL_SCRIPT = """
import sys
from research_lib.lake import Lake
from research_lib.sources.evm import EvmIndexer
url, root, *addresses = sys.argv[1:]
with EvmIndexer(url, addresses=addresses, confirmations=0, chunk_blocks=1,
                max_chunk_blocks=1, lake=Lake(root), progress=False) as indexer:
    indexer.run()
print("done")
"""


def test_a_killed_run_restarts_without_loss_or_duplicates(embedded_chain, tmp_path) -> None:
    lake_root = tmp_path / "lake"
    addresses = _addresses(embedded_chain)
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    # A slow proxy (every request +20 ms, one block per chunk) leaves time to kill mid-run.
    with RpcProxy(embedded_chain.rpc_url, delay_s=0.02) as proxy:
        args = [sys.executable, "-c", _KILL_SCRIPT, proxy.url, str(lake_root), *addresses]
        child = subprocess.Popen(args, env=env, cwd=PROJECT_ROOT)
        checkpoints = lake_root / "chain" / "checkpoints"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            files = list(checkpoints.glob("*.json")) if checkpoints.exists() else []
            if files and json.loads(files[0].read_text())["block"] >= 40:
                break
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        assert child.returncode == -signal.SIGKILL
        killed_at = json.loads(files[0].read_text())["block"]
        head = embedded_chain.w3.eth.block_number
        assert killed_at < head, "the run finished before it could be killed"
        done = subprocess.run(
            args, env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600
        )
    assert done.returncode == 0, done.stderr
    assert lake_events(Lake(lake_root), 31337) == reference_events(
        embedded_chain.w3, addresses, head
    )


def test_a_reorg_in_the_middle_of_a_run_is_rolled_back(embedded_chain, tmp_path) -> None:
    """The chain reorganises while the indexer is part-way through a range: the next chunk's
    first block no longer descends from the checkpoint, so the run rolls back and goes on."""
    w3 = embedded_chain.w3
    lake = Lake(tmp_path)
    ts = int(w3.eth.get_block("latest")["timestamp"])

    with snapshot(w3):
        kwargs = dict(addresses=_addresses(embedded_chain), confirmations=0, progress=False)
        with EvmIndexer(embedded_chain.rpc_url, lake=lake, **kwargs) as indexer:
            indexer.run()
        fork = w3.eth.block_number + 1
        base = w3.provider.make_request("evm_snapshot", [])["result"]
        _mine_branch(embedded_chain, seed=5, n=12, after_ts=ts)
        reorged = []

        def reorg_after_two_chunks(number: int, methods: list[str]) -> None:
            if methods == ["eth_getLogs"] and not reorged:
                gets = sum(1 for _, m, _ in proxy.log if m == ["eth_getLogs"])
                if gets == 2:  # two chunks of branch A are stored
                    w3.provider.make_request("evm_revert", [base])
                    _mine_branch(embedded_chain, seed=6, n=14, after_ts=ts)
                    reorged.append(number)

        with RpcProxy(embedded_chain.rpc_url, hook=reorg_after_two_chunks) as proxy:
            with EvmIndexer(
                proxy.url, lake=lake, chunk_blocks=4, max_chunk_blocks=4, **kwargs
            ) as indexer:
                during = indexer.run()
                after = indexer.run()
        head = w3.eth.block_number
        reference = reference_events(w3, _addresses(embedded_chain), head)
    assert reorged, "the hook never fired"
    assert len(during.rollbacks) == 1 and during.rollbacks[0][0] <= fork + 8
    assert after.to_block == head
    assert lake_events(lake, 31337) == reference


def test_every_event_kind_is_decoded(embedded_chain, tmp_path) -> None:
    """Burns, collects and plain token transfers too: remove V2 liquidity (Burn, Sync, LP
    Transfer), decrease and collect a V3 position (Burn, Collect), and move a token (ERC20
    Transfer); the lake must equal web3's decoding of the same logs, for all nine kinds."""
    w3, dep = embedded_chain.w3, embedded_chain.deployment
    lp = embedded_chain.accounts["lp"]
    v2 = next(p for p in embedded_chain.pools if p.kind == "v2")
    usdc = dep.token("USDC")
    with snapshot(w3):
        pair = contract(w3, "UniswapV2Pair", v2.address).functions
        send(w3, pair.approve(dep.v2_router, 2**256 - 1), lp)
        router = contract(w3, "UniswapV2Router02", dep.v2_router).functions
        t0, t1 = dep.token(v2.token0), dep.token(v2.token1)
        share = pair.balanceOf(lp).call() // 10
        send(w3, router.removeLiquidity(t0, t1, share, 0, 0, lp, 2**63), lp)
        manager = contract(w3, "NonfungiblePositionManager", dep.position_manager).functions
        liquidity = manager.positions(1).call()[7]
        send(w3, manager.decreaseLiquidity((1, liquidity // 10, 0, 0, 2**63)), lp)
        send(w3, manager.collect((1, lp, 2**128 - 1, 2**128 - 1)), lp)
        token = contract(w3, "ERC20", usdc).functions
        send(w3, token.transfer(embedded_chain.accounts["trader3"], 12345), lp)
        addresses = [*_addresses(embedded_chain), usdc]
        lake = Lake(tmp_path)
        with EvmIndexer(
            embedded_chain.rpc_url, addresses=addresses, confirmations=0, lake=lake, progress=False
        ) as indexer:
            indexer.run()
        head = w3.eth.block_number
        reference = reference_events(w3, addresses, head)
    stored = lake_events(lake, 31337)
    assert stored == reference
    assert {e[2] for e in stored} == set(_WEB3_EVENTS)
