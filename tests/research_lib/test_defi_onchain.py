"""The AMM maths against the real Uniswap contracts on anvil, to the wei.

- V2: ``uniswap_v2_amount_out`` / ``_in`` (and multi-hop) equal Router02's
  ``getAmountsOut`` / ``getAmountsIn`` on pairs opened with random reserves.
- V3: ``V3PoolState`` (the exact port of the pool) quotes exactly what QuoterV2 quotes for
  random positions and swaps that cross initialised ticks, and the executed swap's event
  amounts equal the model's.
- LP fees: a position minted through the NonfungiblePositionManager, swaps, then
  ``collect``: the exact model's fees equal the collected fees to the wei, and the float LP
  backtest kernel (``kernels.amm.range_backtest``) agrees to 1e-9.

Each example runs inside an ``evm_snapshot`` that is reverted, on the session's chain.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web3.exceptions import ContractLogicError, Web3RPCError
from web3.logs import DISCARD

from kernels.amm import FEES0, FEES1, N_MINUTE_FIELDS, range_backtest
from research_lib.chain import contract, send, snapshot
from research_lib.chain_market import (
    TICK_SPACING,
    create_v2_pool,
    create_v3_pool,
    mint_v3_position,
    pool_state,
    swap_call,
)
from research_lib.defi.uniswap import (
    MAX_SQRT_RATIO,
    MIN_SQRT_RATIO,
    uniswap_v2_amount_in,
    uniswap_v2_amount_out,
    uniswap_v2_amounts_in,
    uniswap_v2_amounts_out,
)
from research_lib.defi.uniswap_v3 import V3PoolState

CHAIN_SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)


@CHAIN_SETTINGS
@given(
    # A first deposit must mint more than the pair's MINIMUM_LIQUIDITY (1,000).
    reserve_in=st.integers(10**4, 10**27),
    reserve_out=st.integers(10**4, 10**27),
    amount=st.integers(1, 10**26),
)
def test_v2_amounts_equal_the_routers(embedded_chain, reserve_in, reserve_out, amount) -> None:
    w3, dep = embedded_chain.w3, embedded_chain.deployment
    lp = embedded_chain.accounts["lp"]
    router = contract(w3, "UniswapV2Router02", dep.v2_router).functions
    with snapshot(w3):
        # A WBTC/WETH pair does not exist on the embedded chain: open it with these reserves
        # (the deployer holds the rest of the test token's supply; WETH is wrapped ETH).
        wbtc = contract(w3, "ERC20", dep.token("WBTC")).functions
        send(w3, wbtc.transfer(lp, reserve_in), dep.deployer)
        send(w3, contract(w3, "WETH9", dep.weth).functions.deposit(), lp, value_wei=reserve_out)
        create_v2_pool(w3, dep, {"WBTC": reserve_in, "WETH": reserve_out}, provider=lp)
        path = [dep.token("WBTC"), dep.token("WETH")]
        assert router.getAmountsOut(amount, path).call() == [
            amount,
            uniswap_v2_amount_out(amount, reserve_in, reserve_out),
        ]
        # Two hops: WBTC -> WETH -> USDC through the simulated WETH/USDC pair's reserves.
        usdc_pair = next(p for p in embedded_chain.pools if p.kind == "v2" and "WETH" in p.name)
        state = pool_state(w3, usdc_pair)
        weth_usdc = (
            (state["reserve0"], state["reserve1"])
            if usdc_pair.token0 == "WETH"
            else (state["reserve1"], state["reserve0"])
        )
        hops = [(reserve_in, reserve_out), weth_usdc]
        three = [*path, dep.token("USDC")]
        _same_answer_or_revert(
            lambda: uniswap_v2_amounts_out(amount, hops),
            router.getAmountsOut(amount, three).call,
        )
        _same_answer_or_revert(
            lambda: [uniswap_v2_amount_in(amount, reserve_in, reserve_out), amount],
            router.getAmountsIn(amount, path).call,
        )
        _same_answer_or_revert(
            lambda: uniswap_v2_amounts_in(amount, hops), router.getAmountsIn(amount, three).call
        )


def _same_answer_or_revert(model, contract_call) -> None:
    """Both give the same amounts, or both refuse (the model raises where Solidity reverts)."""
    try:
        expected = model()
    except ValueError:
        # A require() reverts with a reason; a division by zero hits Solidity 0.6's
        # invalid opcode, which the node reports as a plain RPC error.
        with pytest.raises((ContractLogicError, Web3RPCError)):
            contract_call()
        return
    assert contract_call() == expected


def _router_limit(zero_for_one: bool) -> int:
    """The price limit SwapRouter passes when the caller gives 0: no limit."""
    return MIN_SQRT_RATIO + 1 if zero_for_one else MAX_SQRT_RATIO - 1


def _fresh_v3_pool(chain, *, fee_pips: int, tick: int):
    """A new WBTC/USDC pool at ``tick`` (none exists on the embedded chain)."""
    w3, dep = chain.w3, chain.deployment
    price = math.pow(1.0001, tick)
    pool = create_v3_pool(
        w3, dep, ("WBTC", "USDC"), fee_pips=fee_pips, price=price, sender=chain.accounts["lp"]
    )
    slot0 = contract(w3, "UniswapV3Pool", pool.address).functions.slot0().call()
    model = V3PoolState.initialize(slot0[0], fee_pips=fee_pips, tick_spacing=TICK_SPACING[fee_pips])
    return pool, model


def _mint_both(chain, pool, model, lower: int, upper: int, amount: int):
    position = mint_v3_position(
        chain.w3,
        chain.deployment,
        pool,
        tick_lower=lower,
        tick_upper=upper,
        amount0_desired=amount,
        amount1_desired=amount,
        owner=chain.accounts["lp"],
    )
    # The manager owns every pool position it mints: one (owner, range) per range here.
    paid = model.mint(lower, upper, position.liquidity, owner="npm")
    assert paid == (position.amount0, position.amount1)
    return position


positions_strategy = st.lists(
    st.tuples(st.integers(-40, 39), st.integers(1, 20), st.integers(10**17, 10**21)),
    min_size=1,
    max_size=4,
)


@CHAIN_SETTINGS
@given(
    fee_pips=st.sampled_from([500, 3000]),
    positions=positions_strategy,
    zero_for_one=st.booleans(),
    amount_in=st.integers(10**12, 10**22),
)
def test_v3_swaps_across_ticks_equal_quoterv2_and_the_pool(
    embedded_chain, fee_pips, positions, zero_for_one, amount_in
) -> None:
    w3, dep = embedded_chain.w3, embedded_chain.deployment
    spacing = TICK_SPACING[fee_pips]
    trader = embedded_chain.accounts["trader3"]
    with snapshot(w3):
        pool, model = _fresh_v3_pool(embedded_chain, fee_pips=fee_pips, tick=0)
        for start, width, amount in positions:
            _mint_both(
                embedded_chain, pool, model, start * spacing, (start + width) * spacing, amount
            )
        token_in = pool.token0 if zero_for_one else pool.token1
        token_out = pool.token1 if zero_for_one else pool.token0
        quoter = contract(w3, "QuoterV2", dep.quoter_v2).functions
        params = (dep.token(token_in), dep.token(token_out), amount_in, fee_pips, 0)
        try:
            out, sqrt_after, crossed, _ = quoter.quoteExactInputSingle(params).call()
        except Exception:
            # The pool ran out of liquidity in that direction: the model must refuse too.
            with pytest.raises(ValueError):
                model.quote_exact_input_single(zero_for_one, amount_in)
            return
        quote = model.quote_exact_input_single(zero_for_one, amount_in)
        assert (quote.amount, quote.sqrt_price_x96_after, quote.initialized_ticks_crossed) == (
            out,
            sqrt_after,
            crossed,
        )
        receipt = send(
            w3,
            swap_call(
                w3, dep, pool, zero_for_one=zero_for_one, amount_in=amount_in, recipient=trader
            ),
            trader,
        )
        pool_contract = contract(w3, "UniswapV3Pool", pool.address)
        (event,) = pool_contract.events.Swap().process_receipt(receipt, errors=DISCARD)
        result = model.swap(zero_for_one, amount_in, _router_limit(zero_for_one))
        args = event["args"]
        assert (result.amount0, result.amount1) == (args["amount0"], args["amount1"])
        assert (result.sqrt_price_x96_after, result.tick_after) == (
            args["sqrtPriceX96"],
            args["tick"],
        )
        assert pool_state(w3, pool)["liquidity"] == model.liquidity


def test_lp_fees_from_the_models_equal_what_collect_pays(embedded_chain) -> None:
    w3, dep = embedded_chain.w3, embedded_chain.deployment
    lp, trader = embedded_chain.accounts["lp"], embedded_chain.accounts["trader2"]
    rng = np.random.default_rng(4)
    with snapshot(w3):
        pool, model = _fresh_v3_pool(embedded_chain, fee_pips=3000, tick=0)
        # Background liquidity over a wide range, then our position inside it.
        _mint_both(embedded_chain, pool, model, -6000, 6000, 10**22)
        ours = _mint_both(embedded_chain, pool, model, -600, 600, 10**21)
        rows = [(pool_state(w3, pool)["sqrt_price_x96"], 0, 0, 0)]
        pool_contract = contract(w3, "UniswapV3Pool", pool.address)
        for _ in range(12):
            zero_for_one = bool(rng.integers(2))
            amount = int(rng.uniform(1e18, 3e19))
            receipt = send(
                w3,
                swap_call(
                    w3, dep, pool, zero_for_one=zero_for_one, amount_in=amount, recipient=trader
                ),
                trader,
            )
            (event,) = pool_contract.events.Swap().process_receipt(receipt, errors=DISCARD)
            args = event["args"]
            model.swap(zero_for_one, amount, _router_limit(zero_for_one))
            assert -600 <= args["tick"] < 600, "the swaps must stay inside our range"
            rows.append(
                (
                    args["sqrtPriceX96"],
                    max(args["amount0"], 0),
                    max(args["amount1"], 0),
                    args["liquidity"],
                )
            )
        manager = contract(w3, "NonfungiblePositionManager", dep.position_manager)
        collect = manager.functions.collect((ours.token_id, lp, 2**128 - 1, 2**128 - 1))
        collected = collect.call({"from": lp})
        send(w3, collect, lp)
    # The exact model: poke, then collect, as the manager does.
    model.burn(-600, 600, 0, owner="npm")
    assert model.collect(-600, 600, owner="npm") == tuple(collected)
    assert collected[0] > 0 and collected[1] > 0
    # The float LP backtest on the same swaps: our share of each swap's fee while in range.
    sqrt_price = np.array([r[0] / 2**96 for r in rows])
    in0 = np.array([float(r[1]) for r in rows])
    in1 = np.array([float(r[2]) for r in rows])
    pool_l = np.array([float(r[3] - ours.liquidity) for r in rows])
    out = np.empty((N_MINUTE_FIELDS, len(rows)))
    range_backtest(sqrt_price, in0, in1, pool_l, 0.003, -600, 600, float(ours.liquidity), out)
    np.testing.assert_allclose([out[FEES0].sum(), out[FEES1].sum()], collected, rtol=1e-9)
