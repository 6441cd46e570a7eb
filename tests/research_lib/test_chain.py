"""The embedded chain: anvil from npm, the real Uniswap bytecode, and the seeded market.

Everything here runs against a real anvil process with the contracts from the npm
artifacts; nothing is mocked.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from eth_utils import keccak, to_checksum_address
from web3 import Web3

from research_lib import chain
from research_lib.chain import Anvil, ChainError, artifact, contract, send, snapshot
from research_lib.chain_market import (
    arbitrage_trade,
    pool_price,
    pool_state,
    simulate_market,
    swap_call,
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_anvil_runs_on_free_ports_and_stops_by_its_own_pid() -> None:
    with Anvil() as first, Anvil() as second:
        assert first.port != second.port
        assert first.web3().eth.chain_id == second.web3().eth.chain_id == 31337
        pid = first.pid
        assert pid is not None and _alive(pid)
        first.stop()
        assert not _alive(pid)
        # The other node is untouched.
        assert second.web3().eth.block_number == 0
    assert first.pid is None and second.pid is None


def test_missing_npm_install_names_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(chain, "NODE_MODULES", tmp_path)
    artifact.cache_clear()
    try:
        with pytest.raises(ChainError, match="make setup"):
            chain.anvil_binary()
        with pytest.raises(ChainError, match="make setup"):
            artifact("UniswapV2Factory")
    finally:
        artifact.cache_clear()


def test_connect_names_the_url_when_nothing_answers() -> None:
    url = f"http://127.0.0.1:{chain.free_port()}"
    with pytest.raises(ChainError, match=url):
        chain.connect(url, timeout_s=2)


def _create2(deployer: str, salt: bytes, init_code_hash: bytes) -> str:
    raw = keccak(b"\xff" + bytes.fromhex(deployer[2:]) + salt + init_code_hash)
    return to_checksum_address(raw[12:])


def test_routers_find_the_pools_the_factories_deploy(embedded_chain) -> None:
    """The npm pair / pool bytecode hashes to the init-code hash the periphery hard-codes:
    the CREATE2 address the routers compute is the factories' pool."""
    dep = embedded_chain.deployment
    w3 = embedded_chain.w3
    pair_hash = keccak(hexstr=artifact("UniswapV2Pair").bytecode)
    pool_hash = keccak(hexstr=artifact("UniswapV3Pool").bytecode)
    assert pair_hash.hex() == "96e8ac4277198ff8b6f785478aa9a39f403cb768dd02cbee326c3e7da348845f"
    assert pool_hash.hex() == "e34f199b19b2b4f47f68442619d555527d244f78a3297ea89325f843f87b8b54"
    for pool in embedded_chain.pools:
        t0, t1 = dep.token(pool.token0), dep.token(pool.token1)
        assert int(t0, 16) < int(t1, 16)
        if pool.kind == "v2":
            salt = keccak(bytes.fromhex(t0[2:]) + bytes.fromhex(t1[2:]))
            assert _create2(dep.v2_factory, salt, pair_hash) == pool.address
        else:
            salt = keccak(
                bytes.fromhex(t0[2:].rjust(64, "0"))
                + bytes.fromhex(t1[2:].rjust(64, "0"))
                + pool.fee_pips.to_bytes(32, "big")
            )
            assert _create2(dep.v3_factory, salt, pool_hash) == pool.address
    router = contract(w3, "UniswapV2Router02", dep.v2_router)
    assert router.functions.factory().call() == dep.v2_factory
    assert router.functions.WETH().call() == dep.weth


def test_send_names_the_call_that_would_revert(embedded_chain) -> None:
    w3, dep = embedded_chain.w3, embedded_chain.deployment
    trader = embedded_chain.accounts["trader0"]
    router = contract(w3, "UniswapV2Router02", dep.v2_router)
    path = [dep.token("WETH"), dep.token("USDC")]
    # Asking for more USDC out than the pool holds: the router's own require fails.
    call = router.functions.swapExactTokensForTokens(10**18, 10**40, path, trader, 2**63)
    with pytest.raises(ChainError, match=r"swapExactTokensForTokens.*would revert"):
        send(w3, call, trader)


def test_simulated_history_tracks_the_cex_price(embedded_chain) -> None:
    blocks = embedded_chain.simulation.blocks
    assert embedded_chain.simulation.n_arbitrage_swaps > 0
    assert embedded_chain.simulation.n_noise_swaps > 0
    for pool in embedded_chain.pools:
        ratio = blocks[f"pool {pool.name}"].to_numpy() / blocks[f"cex {pool.name}"].to_numpy()
        # Noise trades move prices after the arbitrageur each block, so not within the fee
        # band every block, but never far: a few tenths of a percent on these depths.
        assert np.median(np.abs(ratio - 1.0)) < 0.005, pool.name
        assert np.max(np.abs(ratio - 1.0)) < 0.05, pool.name


def test_arbitrage_alone_leaves_every_pool_within_its_fee_of_the_cex(embedded_chain) -> None:
    w3, dep = embedded_chain.w3, embedded_chain.deployment
    pools = embedded_chain.pools
    ts = int(w3.eth.get_block("latest")["timestamp"])
    with snapshot(w3):
        # Move the CEX 2 % up then 3 % down: every pool must follow to within its fee.
        eth = np.array([2300.0 * 1.02, 2300.0 * 0.97 * 1.02])
        usd = {"WETH": eth, "WBTC": np.full(2, 42_000.0), "USDC": np.ones(2)}
        simulate_market(
            w3,
            dep,
            pools,
            usd,
            seed=0,
            start_ts_s=ts + 12,
            noise_swaps_per_block=0.0,
            progress=False,
            arbitrageur=embedded_chain.accounts["arbitrageur"],
            traders=[],
        )
        for pool in pools:
            cex = usd[pool.token0][-1] / usd[pool.token1][-1]
            gamma = 1 - pool.fee_pips / 1e6
            price = pool_price(w3, pool)
            assert cex * gamma * (1 - 1e-9) <= price <= cex / gamma * (1 + 1e-9), pool.name
            assert (
                arbitrage_trade(
                    pool_state(w3, pool),
                    pool,
                    cex,
                    budget={pool.token0: 10**27, pool.token1: 10**27},
                )
                is None
            )


def test_the_simulation_is_deterministic(embedded_chain) -> None:
    w3, dep = embedded_chain.w3, embedded_chain.deployment
    ts = int(w3.eth.get_block("latest")["timestamp"])
    rng = np.random.default_rng(5)
    usd = {
        "WETH": 2300.0 * np.exp(np.cumsum(rng.normal(0, 0.002, 6))),
        "WBTC": 42_000.0 * np.exp(np.cumsum(rng.normal(0, 0.002, 6))),
        "USDC": np.ones(6),
    }
    runs = []
    for _ in range(2):
        with snapshot(w3):
            sim = simulate_market(
                w3,
                dep,
                embedded_chain.pools,
                usd,
                seed=3,
                start_ts_s=ts + 12,
                arbitrageur=embedded_chain.accounts["arbitrageur"],
                traders=[embedded_chain.accounts["trader1"]],
                progress=False,
            )
            # The same block: same transactions, base fee, timestamp and state root.
            runs.append((sim.blocks, w3.eth.get_block("latest")["hash"]))
    assert runs[0][0].equals(runs[1][0])
    assert runs[0][1] == runs[1][1]


def test_a_v3_swap_with_a_price_limit_stops_there(embedded_chain) -> None:
    w3, dep = embedded_chain.w3, embedded_chain.deployment
    pool = next(p for p in embedded_chain.pools if p.kind == "v3" and p.fee_pips == 500)
    trader = embedded_chain.accounts["trader2"]
    with snapshot(w3):
        start = pool_state(w3, pool)["sqrt_price_x96"]
        limit = start * 999 // 1000
        call = swap_call(
            w3,
            dep,
            pool,
            zero_for_one=True,
            amount_in=10**27,
            recipient=trader,
            sqrt_price_limit_x96=limit,
        )
        send(w3, call, trader)
        assert pool_state(w3, pool)["sqrt_price_x96"] == limit
    assert Web3.is_checksum_address(pool.address)
