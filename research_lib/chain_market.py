"""Pools on the embedded chain and a seeded market that trades them.

:func:`create_v2_pool` and :func:`create_v3_pool` open pools through the real routers and
position manager. :func:`simulate_market` then mines one block per step: first an
arbitrageur moves every pool to the CEX price net of the pool's fee (the profit-maximising
trade against an external price), then noise traders swap random sizes in random
directions. The chain therefore carries a realistic swap history (Swap, Sync, Mint and
Transfer logs, prices that track the CEX with fee-sized deviations) for the indexer, the
LP analytics and the arbitrage scanner to read.

All test tokens have 18 decimals, so raw prices (token1 per token0 in smallest units) equal
human prices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import polars as pl
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import function_signature_to_4byte_selector
from tqdm.auto import tqdm
from web3 import Web3
from web3.logs import DISCARD

from research_lib.chain import (
    SWAP_GAS,
    Anvil,
    ChainError,
    Deployment,
    contract,
    deploy_uniswap,
    fund,
    send,
)
from research_lib.sources.synthetic import SyntheticMarketConfig, SyntheticSource

Q96 = 2**96
MIN_TICK = -887272
MAX_TICK = 887272
TICK_SPACING = {100: 1, 500: 10, 3000: 60, 10000: 200}
DEADLINE = 2**63  # far future: the simulation sets block times itself
SIM_MAX_FEE_WEI = 10_000 * 10**9
SIM_PRIORITY_FEE_WEI = 10**9


@dataclass(frozen=True)
class Pool:
    """A pool on the chain: V2 (fee 3000 pips, fixed) or V3 (its fee tier)."""

    kind: Literal["v2", "v3"]
    address: str
    token0: str  # symbols, sorted by token address as the contracts sort them
    token1: str
    fee_pips: int

    @property
    def name(self) -> str:
        fee = f"{self.fee_pips / 1e4:g}%"
        return f"{self.kind.upper()} {self.token0}/{self.token1} {fee}"


def sorted_symbols(deployment: Deployment, a: str, b: str) -> tuple[str, str]:
    """``(token0, token1)``: the two symbols in the contracts' order (by address)."""
    if a == b:
        raise ChainError(f"pool: both tokens are {a!r}")
    ka = int(deployment.token(a), 16)
    kb = int(deployment.token(b), 16)
    return (a, b) if ka < kb else (b, a)


def create_v2_pool(
    w3: Web3,
    deployment: Deployment,
    amounts: dict[str, int],
    *,
    provider: str,
) -> Pool:
    """Open a V2 pair with ``amounts`` (two symbols -> raw amounts) from ``provider``.

    ``provider`` must hold and have approved the tokens (:func:`research_lib.chain.fund`).
    """
    (a, amount_a), (b, amount_b) = amounts.items()
    router = contract(w3, "UniswapV2Router02", deployment.v2_router)
    call = router.functions.addLiquidity(
        deployment.token(a), deployment.token(b), amount_a, amount_b, 0, 0, provider, DEADLINE
    )
    send(w3, call, provider)
    factory = contract(w3, "UniswapV2Factory", deployment.v2_factory)
    address = factory.functions.getPair(deployment.token(a), deployment.token(b)).call()
    token0, token1 = sorted_symbols(deployment, a, b)
    return Pool("v2", address, token0, token1, 3000)


def sqrt_price_x96(price: float) -> int:
    """sqrtPriceX96 of a raw price (token1 per token0), as an int (float precision)."""
    if not (price > 0 and math.isfinite(price)):
        raise ChainError(f"sqrt_price_x96: price must be positive and finite, got {price!r}")
    return int(math.sqrt(price) * Q96)


def create_v3_pool(
    w3: Web3,
    deployment: Deployment,
    symbols: tuple[str, str],
    *,
    fee_pips: int,
    price: float,
    sender: str,
) -> Pool:
    """Create and initialise a V3 pool at ``price`` (token1 per token0, raw units)."""
    if fee_pips not in TICK_SPACING:
        raise ChainError(f"create_v3_pool: fee_pips must be one of {sorted(TICK_SPACING)}")
    token0, token1 = sorted_symbols(deployment, *symbols)
    manager = contract(w3, "NonfungiblePositionManager", deployment.position_manager)
    call = manager.functions.createAndInitializePoolIfNecessary(
        deployment.token(token0), deployment.token(token1), fee_pips, sqrt_price_x96(price)
    )
    send(w3, call, sender)
    factory = contract(w3, "UniswapV3Factory", deployment.v3_factory)
    address = factory.functions.getPool(
        deployment.token(token0), deployment.token(token1), fee_pips
    ).call()
    return Pool("v3", address, token0, token1, fee_pips)


@dataclass(frozen=True)
class MintedPosition:
    token_id: int
    liquidity: int
    amount0: int
    amount1: int
    tick_lower: int
    tick_upper: int


def mint_v3_position(
    w3: Web3,
    deployment: Deployment,
    pool: Pool,
    *,
    tick_lower: int,
    tick_upper: int,
    amount0_desired: int,
    amount1_desired: int,
    owner: str,
) -> MintedPosition:
    """Mint a V3 position through the NonfungiblePositionManager; what the pool took."""
    spacing = TICK_SPACING[pool.fee_pips]
    if tick_lower % spacing or tick_upper % spacing or not tick_lower < tick_upper:
        raise ChainError(
            f"mint_v3_position: ticks ({tick_lower}, {tick_upper}) must be ordered multiples "
            f"of the tick spacing {spacing}"
        )
    manager = contract(w3, "NonfungiblePositionManager", deployment.position_manager)
    params = (
        deployment.token(pool.token0),
        deployment.token(pool.token1),
        pool.fee_pips,
        tick_lower,
        tick_upper,
        amount0_desired,
        amount1_desired,
        0,
        0,
        owner,
        DEADLINE,
    )
    receipt = send(w3, manager.functions.mint(params), owner)
    # The receipt also holds the tokens' Transfer logs: not this ABI's, so skip them.
    event = manager.events.IncreaseLiquidity().process_receipt(receipt, errors=DISCARD)[0]["args"]
    return MintedPosition(
        token_id=int(event["tokenId"]),
        liquidity=int(event["liquidity"]),
        amount0=int(event["amount0"]),
        amount1=int(event["amount1"]),
        tick_lower=tick_lower,
        tick_upper=tick_upper,
    )


def full_range_ticks(fee_pips: int) -> tuple[int, int]:
    spacing = TICK_SPACING[fee_pips]
    return (MIN_TICK // spacing + 1) * spacing, (MAX_TICK // spacing) * spacing


def pool_state(w3: Web3, pool: Pool) -> dict[str, int]:
    """V2: reserve0, reserve1. V3: sqrt_price_x96, tick, liquidity."""
    if pool.kind == "v2":
        r0, r1, _ = contract(w3, "UniswapV2Pair", pool.address).functions.getReserves().call()
        return {"reserve0": int(r0), "reserve1": int(r1)}
    v3 = contract(w3, "UniswapV3Pool", pool.address).functions
    slot0 = v3.slot0().call()
    return {
        "sqrt_price_x96": int(slot0[0]),
        "tick": int(slot0[1]),
        "liquidity": int(v3.liquidity().call()),
    }


def pool_states(w3: Web3, pools: list[Pool]) -> tuple[list[dict[str, int]], int]:
    """:func:`pool_state` of every pool and the block number, in one JSON-RPC batch.

    The calls take no arguments, so their calldata is a constant selector and the replies
    are decoded with eth_abi directly: web3's contract layer costs ~10 ms a call in Python,
    which dominated the simulation.
    """
    requests: list[tuple[Any, Any]] = [("eth_blockNumber", [])]
    for pool in pools:
        names = ("getReserves",) if pool.kind == "v2" else ("slot0", "liquidity")
        for name in names:
            call = {"to": pool.address, "data": _STATE_CALLS[name][0]}
            requests.append(("eth_call", [call, "latest"]))
    replies = w3.provider.make_batch_request(requests)
    if not isinstance(replies, list) or any("error" in r for r in replies):
        raise ChainError(f"pool_states: the node refused the batch: {str(replies)[:300]}")
    results = [r["result"] for r in replies]
    block = int(results.pop(0), 16)
    states = []
    for pool in pools:
        if pool.kind == "v2":
            r0, r1, _ = _decode_state("getReserves", results.pop(0))
            states.append({"reserve0": r0, "reserve1": r1})
        else:
            slot0 = _decode_state("slot0", results.pop(0))
            (liquidity,) = _decode_state("liquidity", results.pop(0))
            states.append({"sqrt_price_x96": slot0[0], "tick": slot0[1], "liquidity": liquidity})
    return states, block


# name -> (selector, output ABI types) of the no-argument state getters.
_STATE_CALLS: dict[str, tuple[str, list[str]]] = {
    name: ("0x" + function_signature_to_4byte_selector(f"{name}()").hex(), types)
    for name, types in (
        ("getReserves", ["uint112", "uint112", "uint32"]),
        ("slot0", ["uint160", "int24", "uint16", "uint16", "uint16", "uint8", "bool"]),
        ("liquidity", ["uint128"]),
    )
}


def _decode_state(name: str, data: str) -> tuple[Any, ...]:
    return tuple(abi_decode(_STATE_CALLS[name][1], bytes.fromhex(data[2:])))


def _state_price(pool: Pool, state: dict[str, int]) -> float:
    if pool.kind == "v2":
        return state["reserve1"] / state["reserve0"]
    return (state["sqrt_price_x96"] / Q96) ** 2


def pool_price(w3: Web3, pool: Pool) -> float:
    """The pool's marginal price, token1 per token0 (raw units), fees excluded."""
    return _state_price(pool, pool_state(w3, pool))


def swap_call(
    w3: Web3,
    deployment: Deployment,
    pool: Pool,
    *,
    zero_for_one: bool,
    amount_in: int,
    recipient: str,
    sqrt_price_limit_x96: int = 0,
) -> Any:
    """The router call that swaps ``amount_in`` exactly through ``pool`` (not yet sent).

    For V3 a non-zero ``sqrt_price_limit_x96`` stops the swap at that price, and the router
    then pulls only the input the pool used.
    """
    token_in, token_out = (pool.token0, pool.token1) if zero_for_one else (pool.token1, pool.token0)
    if pool.kind == "v2":
        router = contract(w3, "UniswapV2Router02", deployment.v2_router)
        path = [deployment.token(token_in), deployment.token(token_out)]
        return router.functions.swapExactTokensForTokens(amount_in, 0, path, recipient, DEADLINE)
    router = contract(w3, "SwapRouter", deployment.swap_router)
    params = (
        deployment.token(token_in),
        deployment.token(token_out),
        pool.fee_pips,
        recipient,
        DEADLINE,
        amount_in,
        0,
        sqrt_price_limit_x96,
    )
    return router.functions.exactInputSingle(params)


def arbitrage_trade(
    state: dict[str, int], pool: Pool, cex_price: float, *, budget: dict[str, int]
) -> tuple[bool, int, int] | None:
    """The arbitrageur's trade against ``cex_price`` (token1 per token0): (zero_for_one,
    amount_in, sqrt_price_limit_x96), or None when the pool is within its fee of the price.

    V2 uses the closed-form optimum of ``out(x) - P x``: selling token0 when the pool price
    exceeds P / gamma, ``x = (sqrt(gamma r0 r1 / P) - r0) / gamma``, and symmetrically for
    token1. V3 sends its whole budget with a price limit at P / gamma (or P gamma), where the
    marginal trade stops paying; the pool takes only what it needs to get there.
    """
    gamma = 1.0 - pool.fee_pips / 1e6
    if pool.kind == "v2":
        r0, r1 = float(state["reserve0"]), float(state["reserve1"])
        price = r1 / r0
        if price > cex_price / gamma:
            amount = (math.sqrt(gamma * r0 * r1 / cex_price) - r0) / gamma
            return True, min(int(amount), budget[pool.token0]), 0
        if price < cex_price * gamma:
            amount = (math.sqrt(gamma * r0 * r1 * cex_price) - r1) / gamma
            return False, min(int(amount), budget[pool.token1]), 0
        return None
    # Compared as sqrtPriceX96 integers, as the pool checks the limit: a pool left exactly at
    # last block's limit must not look (by float rounding) like it needs another trade.
    current = state["sqrt_price_x96"]
    sell_limit = sqrt_price_x96(cex_price / gamma)
    if sell_limit < current:
        return True, budget[pool.token0], sell_limit
    buy_limit = sqrt_price_x96(cex_price * gamma)
    if buy_limit > current:
        return False, budget[pool.token1], buy_limit
    return None


@dataclass(frozen=True)
class MarketSimulation:
    """What :func:`simulate_market` did: one row per block, and the totals."""

    blocks: pl.DataFrame  # block, ts, cex price per pool, pool price per pool, swaps
    n_arbitrage_swaps: int
    n_noise_swaps: int


def simulate_market(
    w3: Web3,
    deployment: Deployment,
    pools: list[Pool],
    usd_prices: dict[str, np.ndarray],
    *,
    seed: int,
    start_ts_s: int,
    block_time_s: int = 12,
    noise_swaps_per_block: float = 1.5,
    noise_trade_usd: float = 20_000.0,
    base_fee_gwei: float = 10.0,
    arbitrageur: str,
    traders: list[str],
    progress: bool = True,
) -> MarketSimulation:
    """Mine one block per step of ``usd_prices`` (symbol -> USD price per block).

    In each block the arbitrageur trades every pool back to the CEX price first (it reacts
    to the CEX move since the last block), then a Poisson number of noise swaps follow, each
    in a random pool and direction with a lognormal USD size around ``noise_trade_usd``.
    Accounts must be funded and approved (:func:`research_lib.chain.fund`). Seeded: the same
    inputs give the same blocks.
    """
    n_blocks = len(next(iter(usd_prices.values())))
    for symbol in {p.token0 for p in pools} | {p.token1 for p in pools}:
        if symbol not in usd_prices:
            raise ChainError(f"simulate_market: usd_prices has no series for {symbol!r}")
        if len(usd_prices[symbol]) != n_blocks:
            raise ChainError(
                f"simulate_market: usd_prices[{symbol!r}] has "
                f"{len(usd_prices[symbol])} steps, expected {n_blocks}"
            )
    rng = np.random.default_rng(seed)
    # The arbitrageur's per-trade cap (raw units): V3 arbitrage sends the cap with a price
    # limit and the router pulls only what the pool used.
    budget = {s: 10**27 for s in usd_prices}
    rows: list[dict[str, Any]] = []
    n_arb = n_noise = 0
    # One batched read of every pool per block (the state after the last block is the one
    # the arbitrageur sees), one receipts call per block: a few requests per block in all.
    states, _ = pool_states(w3, pools)
    w3.provider.make_request("evm_setAutomine", [False])
    try:
        for step in tqdm(range(n_blocks), desc="blocks", disable=not progress):
            ts = start_ts_s + step * block_time_s
            sent: dict[str, tuple[Any, str, str]] = {}
            row: dict[str, Any] = {"step": step, "ts": ts}

            for pool, state in zip(pools, states, strict=True):
                cex = usd_prices[pool.token0][step] / usd_prices[pool.token1][step]
                row[f"cex {pool.name}"] = cex
                trade = arbitrage_trade(state, pool, cex, budget=budget)
                if trade is None or trade[1] <= 0:
                    continue
                zero_for_one, amount, limit = trade
                call = swap_call(
                    w3,
                    deployment,
                    pool,
                    zero_for_one=zero_for_one,
                    amount_in=amount,
                    recipient=arbitrageur,
                    sqrt_price_limit_x96=limit,
                )
                _submit(w3, sent, call, arbitrageur, f"arbitrage on {pool.name}")
                n_arb += 1
            for _ in range(rng.poisson(noise_swaps_per_block)):
                pool = pools[rng.integers(len(pools))]
                zero_for_one = bool(rng.integers(2))
                symbol_in = pool.token0 if zero_for_one else pool.token1
                usd = noise_trade_usd * rng.lognormal(0.0, 1.0)
                amount = int(usd / usd_prices[symbol_in][step] * 10**18)
                trader = traders[rng.integers(len(traders))]
                call = swap_call(
                    w3,
                    deployment,
                    pool,
                    zero_for_one=zero_for_one,
                    amount_in=amount,
                    recipient=trader,
                )
                _submit(w3, sent, call, trader, f"noise swap on {pool.name}")
                n_noise += 1
            # The block's base fee is simulated too (a seeded lognormal around base_fee_gwei):
            # gas costs are part of arbitrage sizing, and anvil's own EIP-1559 state is not
            # rewound by evm_revert, so leaving it to the node would break determinism.
            base_fee = int(base_fee_gwei * 10**9 * rng.lognormal(0.0, 0.25))
            w3.provider.make_request("anvil_setNextBlockBaseFeePerGas", [hex(base_fee)])
            w3.provider.make_request("evm_mine", [ts])
            receipts = w3.provider.make_request("eth_getBlockReceipts", ["latest"])["result"]
            mined = {r["transactionHash"]: int(r["status"], 16) for r in receipts}
            for tx_hash, (call, sender, what) in sent.items():
                if mined.get(tx_hash) != 1:
                    raise ChainError(
                        f"simulate_market: the {what} at step {step} "
                        f"{'reverted' if tx_hash in mined else 'was not mined'} (tx {tx_hash}): "
                        f"{_revert_reason(call, sender)}"
                    )
            states, block = pool_states(w3, pools)
            for pool, state in zip(pools, states, strict=True):
                row[f"pool {pool.name}"] = _state_price(pool, state)
            row["block"] = block
            row["swaps"] = len(sent)
            row["base_fee_gwei"] = base_fee / 1e9
            rows.append(row)
    finally:
        w3.provider.make_request("evm_setAutomine", [True])
    return MarketSimulation(pl.DataFrame(rows), n_arb, n_noise)


def _submit(
    w3: Web3, sent: dict[str, tuple[Any, str, str]], call: Any, sender: str, what: str
) -> None:
    """Send ``call`` (mined with the block) and remember it for the receipt check.

    The calldata is encoded with eth_abi and sent as a raw ``eth_sendTransaction``; web3's
    ``transact`` re-encodes through its slow ABI layer (~20 ms a transaction).
    """
    tx = {k: hex(v) if isinstance(v, int) else v for k, v in _sim_tx(sender).items()}
    tx["to"] = call.address
    tx["data"] = _encode_call(call)
    reply = w3.provider.make_request("eth_sendTransaction", [tx])
    if "error" in reply:
        raise ChainError(f"simulate_market: the node refused the {what}: {reply['error']}")
    sent[reply["result"]] = (call, sender, what)


def _encode_call(call: Any) -> str:
    """Calldata of a bound router swap (the two functions the simulation sends)."""
    name = call.fn_name
    if name == "swapExactTokensForTokens":
        types = ["uint256", "uint256", "address[]", "address", "uint256"]
        signature = "swapExactTokensForTokens(uint256,uint256,address[],address,uint256)"
        args = list(call.args)
    elif name == "exactInputSingle":
        inner = "(address,address,uint24,address,uint256,uint256,uint256,uint160)"
        types, signature, args = [inner], f"exactInputSingle({inner})", [tuple(call.args[0])]
    else:
        return call._encode_transaction_data()
    selector = function_signature_to_4byte_selector(signature)
    return "0x" + (selector + abi_encode(types, args)).hex()


def _sim_tx(sender: str) -> dict[str, Any]:
    """Fixed gas fields: web3 would otherwise price each transaction from the node's fee
    history, which an ``evm_revert`` does not rewind, and the same run would sign different
    transactions."""
    return {
        "from": sender,
        "gas": SWAP_GAS,
        "maxFeePerGas": SIM_MAX_FEE_WEI,
        "maxPriorityFeePerGas": SIM_PRIORITY_FEE_WEI,
    }


def _revert_reason(call: Any, sender: str) -> str:
    """Why ``call`` reverts, by replaying it on the latest state (best effort)."""
    try:
        call.call({"from": sender, "gas": SWAP_GAS})
    except Exception as exc:
        return str(exc)
    return "it succeeds when replayed on the latest block (the revert depended on its batch)"


@dataclass
class EmbeddedChain:
    """A running anvil with Uniswap deployed, pools opened, and a simulated history."""

    node: Anvil
    w3: Web3
    deployment: Deployment
    pools: list[Pool]
    simulation: MarketSimulation
    accounts: dict[str, str]  # role -> address (deployer, lp, arbitrageur, traders...)

    @property
    def rpc_url(self) -> str:
        return self.node.rpc_url

    def stop(self) -> None:
        self.node.stop()

    def __enter__(self) -> EmbeddedChain:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# Pool depths at the synthetic market's start prices (WETH ~2,300, WBTC ~42,000 USD):
# ~$23M in each WETH/USDC pool, ~$8M in the WBTC pools, so a noise trade moves a price by
# basis points, as on a mainnet blue-chip pool.
_V2_LIQUIDITY_USD = 23_000_000.0
_V3_LIQUIDITY_USD = 23_000_000.0
_WBTC_LIQUIDITY_USD = 8_000_000.0
_FUNDING_USD = 5_000_000_000.0
# The genesis block sits this long before the history's start; deploying and funding (a few
# seconds of the node's clock) happen in between.
_SETUP_S = 3600


def synthetic_usd_prices(
    *, seed: int, n_blocks: int, block_time_s: int, start_ms: int
) -> dict[str, np.ndarray]:
    """USD prices per block for WETH, WBTC (the synthetic ETHUSDT / BTCUSDT minute closes in
    force at each block's time) and USDC (1.0)."""
    minutes = max(1, math.ceil(n_blocks * block_time_s / 60))
    source = SyntheticSource(SyntheticMarketConfig(seed=seed, symbols=["BTCUSDT", "ETHUSDT"]))
    bars = source.fetch(
        dataset="bars",
        symbols=["BTCUSDT", "ETHUSDT"],
        interval="1m",
        start_ms=start_ms,
        end_ms=start_ms + minutes * 60_000,
    )
    minute_of_block = (np.arange(n_blocks) * block_time_s) // 60
    closes = {
        symbol: bars.filter(pl.col("symbol") == symbol)["close"].to_numpy()[minute_of_block]
        for symbol in ("BTCUSDT", "ETHUSDT")
    }
    return {"WETH": closes["ETHUSDT"], "WBTC": closes["BTCUSDT"], "USDC": np.ones(n_blocks)}


def start_embedded_chain(
    *,
    seed: int = 7,
    n_blocks: int = 120,
    block_time_s: int = 12,
    start_ms: int = 1_704_067_200_000,
    noise_swaps_per_block: float = 1.5,
    noise_trade_usd: float = 5_000.0,
    progress: bool = True,
) -> EmbeddedChain:
    """Start anvil, deploy Uniswap, open pools and mine ``n_blocks`` of seeded market history.

    Pools: V2 WETH/USDC, V3 WETH/USDC at 0.05 % (a full-range position plus a concentrated
    +-10 % one) and 0.3 % (full range), V2 WBTC/USDC and V3 WBTC/WETH 0.3 %: enough for
    two-pool and triangular arbitrage. Prices follow the synthetic market (``seed``) from
    ``start_ms``, and so do the blocks' timestamps: the genesis block and the set-up blocks
    sit in the hour before ``start_ms`` and block ``i`` of the history at
    ``start_ms + (i + 1) * block_time_s``. The node is stopped
    by :meth:`EmbeddedChain.stop` (or a ``with`` block).
    """
    node = Anvil(genesis_ts_s=start_ms // 1000 - _SETUP_S).start()
    try:
        w3 = node.web3()
        # Set-up blocks one second apart instead of at the node's wall clock: the same seed
        # then gives the same block hashes on every run, so an indexer's checkpoint from an
        # earlier run of the embedded chain stays valid.
        w3.provider.make_request("anvil_setBlockTimestampInterval", [1])
        accounts = w3.eth.accounts
        roles = {"deployer": accounts[0], "lp": accounts[1], "arbitrageur": accounts[2]}
        traders = list(accounts[3:7])
        deployment = deploy_uniswap(w3, deployer=roles["deployer"], token_symbols=("USDC", "WBTC"))
        usd = synthetic_usd_prices(
            seed=seed, n_blocks=n_blocks + 1, block_time_s=block_time_s, start_ms=start_ms
        )
        # Raise anvil's dev balances so WETH can be wrapped in pool-sized amounts.
        for account in [roles["lp"], roles["arbitrageur"], *traders]:
            w3.provider.make_request("anvil_setBalance", [account, hex(10**30)])
            fund(
                w3,
                deployment,
                account,
                {
                    symbol: int(_FUNDING_USD / usd[symbol][0] * 10**18)
                    for symbol in ("WETH", "USDC", "WBTC")
                },
            )
        pools = _open_pools(w3, deployment, usd, lp=roles["lp"])
        # Setting up took a few blocks at the node's clock; the history starts after them.
        latest = int(w3.eth.get_block("latest")["timestamp"])
        start_ts_s = start_ms // 1000 + block_time_s
        if start_ts_s <= latest:
            raise ChainError(
                f"start_embedded_chain: setting up took until {latest}, past the first block "
                f"at {start_ts_s} ({_SETUP_S} s after genesis)"
            )
        simulation = simulate_market(
            w3,
            deployment,
            pools,
            {symbol: series[1:] for symbol, series in usd.items()},
            seed=seed,
            start_ts_s=start_ts_s,
            block_time_s=block_time_s,
            noise_swaps_per_block=noise_swaps_per_block,
            noise_trade_usd=noise_trade_usd,
            arbitrageur=roles["arbitrageur"],
            traders=traders,
            progress=progress,
        )
    except BaseException:
        node.stop()
        raise
    roles.update({f"trader{i}": t for i, t in enumerate(traders)})
    return EmbeddedChain(node, w3, deployment, pools, simulation, roles)


def _raw(usd_value: float, usd_price: float) -> int:
    return int(usd_value / usd_price * 10**18)


def _open_pools(
    w3: Web3, deployment: Deployment, usd: dict[str, np.ndarray], *, lp: str
) -> list[Pool]:
    price0 = {s: float(series[0]) for s, series in usd.items()}
    pools = [
        create_v2_pool(
            w3,
            deployment,
            {base: _raw(depth_usd / 2, price0[base]), "USDC": _raw(depth_usd / 2, 1.0)},
            provider=lp,
        )
        for base, depth_usd in (("WETH", _V2_LIQUIDITY_USD), ("WBTC", _WBTC_LIQUIDITY_USD))
    ]
    for (a, b), fee, depth_usd in (
        (("WETH", "USDC"), 500, _V3_LIQUIDITY_USD),
        (("WETH", "USDC"), 3000, _V3_LIQUIDITY_USD),
        (("WBTC", "WETH"), 3000, _WBTC_LIQUIDITY_USD),
    ):
        token0, token1 = sorted_symbols(deployment, a, b)
        price = price0[token0] / price0[token1]
        pool = create_v3_pool(w3, deployment, (a, b), fee_pips=fee, price=price, sender=lp)
        lower, upper = full_range_ticks(fee)
        amount0 = _raw(depth_usd / 2, price0[token0])
        amount1 = _raw(depth_usd / 2, price0[token1])
        mint_v3_position(
            w3,
            deployment,
            pool,
            tick_lower=lower,
            tick_upper=upper,
            amount0_desired=amount0,
            amount1_desired=amount1,
            owner=lp,
        )
        if fee == 500:
            # A concentrated position, +-10 % around the price, as most V3 liquidity is.
            spacing = TICK_SPACING[fee]
            tick = math.floor(math.log(price) / math.log(1.0001))
            width = round(math.log(1.1) / math.log(1.0001) / spacing) * spacing
            centre = tick // spacing * spacing
            mint_v3_position(
                w3,
                deployment,
                pool,
                tick_lower=centre - width,
                tick_upper=centre + width,
                amount0_desired=amount0,
                amount1_desired=amount1,
                owner=lp,
            )
        pools.append(pool)
    return pools
