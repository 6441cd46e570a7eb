"""Arbitrage: closed-form V2 sizing against brute force, cycle detection against exhaustive
enumeration, and detection plus execution on the embedded anvil chain (real Uniswap
bytecode), where the realised profit must match the prediction to within a wei per hop."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from research_lib.chain import ChainError, send, snapshot
from research_lib.chain_market import Pool, create_v2_pool, pool_state, swap_call
from research_lib.defi.arbitrage import (
    Edge,
    Opportunity,
    bellman_ford_negative_cycle,
    cycle_log_gain,
    execute_cycle,
    find_negative_cycles,
    find_opportunities,
    gas_cost_in_token,
    maximise_integer,
    opportunities_frame,
    scan_pools,
    size_cycle,
    v2_cycle_brute_force,
    v2_cycle_optimal_amount_in,
)
from research_lib.defi.uniswap import uniswap_v2_amounts_out

reserve = st.integers(10**3, 10**6)
fee = st.integers(0, 100)


def _virtual_pool(path: list[tuple[int, int]], fees: list[int]) -> tuple[Fraction, Fraction]:
    """(m, d): the cycle's real output is m x / (1 + x / d); composed from each hop's map."""
    m, inv_d = Fraction(1), Fraction(0)
    for (r_in, r_out), f in zip(path, fees, strict=True):
        g = Fraction(10_000 - f, 10_000)
        # y = g r_out x / (r_in + g x) = (g r_out / r_in) x / (1 + x g / r_in)
        m, inv_d = m * g * r_out / r_in, inv_d + m * g / r_in
    return m, 1 / inv_d if inv_d else Fraction(math.inf)


def _two_pool(ra_in: int, ra_out: int, rb_in: int, premium: float) -> list[tuple[int, int]]:
    # Pool B prices the intermediate token `premium` times pool A's price.
    return [(ra_in, ra_out), (rb_in, max(1, round(rb_in * ra_in / ra_out * premium)))]


@settings(max_examples=80, deadline=None)
@given(reserve, reserve, reserve, st.floats(0.9, 1.3), fee, fee)
def test_closed_form_equals_the_brute_force_optimum_to_the_wei(
    ra_in: int, ra_out: int, rb_in: int, premium: float, fee_a: int, fee_b: int
) -> None:
    path = _two_pool(ra_in, ra_out, rb_in, premium)
    assume(path[1][1] <= 10**9)
    closed = v2_cycle_optimal_amount_in(path, fee_bps=[fee_a, fee_b], scan_limit=2**16)
    # Profit is positive only below x = d (m - 1) < ra_in here (m <= 1.3, d < 1.02 ra_in).
    brute = v2_cycle_brute_force(path, fee_bps=[fee_a, fee_b], max_amount_in=ra_in)
    assert closed.profit == brute.profit >= 0
    if closed.amount_in:
        outs = uniswap_v2_amounts_out(closed.amount_in, path, fee_bps=30)[1:]
        if fee_a == fee_b == 30:
            assert tuple(outs) == closed.amounts_out
        assert closed.amounts_out[-1] - closed.amount_in == closed.profit > 0


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(reserve, reserve), min_size=3, max_size=3), fee)
def test_three_hop_closed_form_equals_brute_force(path: list[tuple[int, int]], f: int) -> None:
    m, d = _virtual_pool(path, [f] * 3)
    bound = math.floor(d * (m - 1)) + 1 if m > 1 else 1
    assume(bound <= 2 * 10**6)
    closed = v2_cycle_optimal_amount_in(path, fee_bps=f, scan_limit=2**16)
    brute = v2_cycle_brute_force(path, fee_bps=f, max_amount_in=bound)
    assert closed.profit == brute.profit
    if closed.amount_in:  # an input of that profit (ties need not pick the same one)
        assert uniswap_v2_amounts_out(closed.amount_in, path, fee_bps=f)[-1] == (
            closed.amount_in + closed.profit
        )


@settings(max_examples=30, deadline=None)
@given(
    st.integers(10**15, 10**27),
    st.integers(10**15, 10**27),
    st.floats(0.5, 2.0),
    st.floats(1.0, 1.2),
)
def test_closed_form_on_deep_pools_beats_ternary_search(
    ra_in: int, rb_in: int, price: float, premium: float
) -> None:
    path = _two_pool(ra_in, round(ra_in * price), rb_in, premium)
    closed = v2_cycle_optimal_amount_in(path)
    m, d = _virtual_pool(path, [30, 30])
    if m <= 1:
        assert closed.amount_in == 0
        return
    # The real optimum (sqrt(m) - 1)^2 d caps every integer profit; rounding of the two hops
    # costs under a wei of each output token (the first worth < 2.4 wei of the start token).
    p, q, s = m.numerator, m.denominator, 10**40  # sqrt(p / q) >= isqrt(p q s^2) / (q s)
    cap = math.floor((m + 1 - Fraction(2 * math.isqrt(p * q * s * s), q * s)) * d)
    _, ternary = maximise_integer(
        lambda x: uniswap_v2_amounts_out(x, path)[-1] - x, lo=1, hi=2 * ra_in
    )
    assert cap - 5 <= closed.profit <= cap
    assert closed.profit >= ternary - 2
    sized = size_cycle(
        lambda x: uniswap_v2_amounts_out(x, path)[1:], n_hops=2, amount_in_hint=ra_in // 1000
    )
    assert abs(sized.profit - closed.profit) <= 3


@settings(max_examples=60, deadline=None)
@given(reserve, reserve, reserve, st.floats(0.5, 1.0), fee, fee)
def test_no_opportunity_when_the_pools_agree_within_fees(
    ra_in: int, ra_out: int, rb_in: int, u: float, fee_a: int, fee_b: int
) -> None:
    # A x (1-fa)(1-fb) below 1: rb_out <= ra_in rb_in / ((1-fa)(1-fb) ra_out).
    keep = (10_000 - fee_a) * (10_000 - fee_b)
    rb_out = max(1, math.floor(Fraction(10**8 * ra_in * rb_in, keep * ra_out) * Fraction(u)))
    path = [(ra_in, ra_out), (rb_in, rb_out)]
    assert v2_cycle_optimal_amount_in(path, fee_bps=[fee_a, fee_b]).amount_in == 0
    brute = v2_cycle_brute_force(path, fee_bps=[fee_a, fee_b], max_amount_in=10**4)
    assert brute.profit == brute.amount_in == 0


@settings(max_examples=40, deadline=None)
@given(reserve, reserve, reserve, st.floats(1.0, 1.3), fee, fee)
def test_profit_falls_as_fees_and_gas_rise(
    ra_in: int, ra_out: int, rb_in: int, premium: float, f1: int, f2: int
) -> None:
    path = _two_pool(ra_in, ra_out, rb_in, premium)
    low, high = sorted((f1, f2))
    cheap = v2_cycle_optimal_amount_in(path, fee_bps=low, scan_limit=2**16)
    dear = v2_cycle_optimal_amount_in(path, fee_bps=high, scan_limit=2**16)
    assert cheap.profit >= dear.profit >= 0
    costs = [
        gas_cost_in_token(gas_units=300_000, gas_price_wei=g, token_per_eth=2300.0)
        for g in (0, 10**9, 10**11)
    ]
    assert costs[0] == 0 < costs[1] < costs[2]


def test_inputs_are_checked_with_the_field_named() -> None:
    with pytest.raises(ValueError, match="fee_bps=10000"):
        v2_cycle_optimal_amount_in([(10, 10), (10, 10)], fee_bps=10_000)
    with pytest.raises(ValueError, match=r"reserves_path\[1\].reserve_out=0"):
        v2_cycle_optimal_amount_in([(10, 10), (10, 0)])
    with pytest.raises(ValueError, match="a cycle needs >= 2"):
        v2_cycle_optimal_amount_in([(10, 10)])
    with pytest.raises(ValueError, match="overflows int64"):
        v2_cycle_brute_force([(10**20, 10**20), (10**20, 10**20)], max_amount_in=10)
    with pytest.raises(ValueError, match=r"rate=-1\.0"):
        Edge("p", "A", "B", -1.0)
    with pytest.raises(ValueError, match="max_hops=1"):
        find_negative_cycles([], max_hops=1)
    with pytest.raises(ValueError, match="gas_price_wei=-1"):
        gas_cost_in_token(gas_units=1, gas_price_wei=-1, token_per_eth=1.0)
    pool = Pool("v2", "0x" + "11" * 20, "WBTC", "WETH", 3000)
    with pytest.raises(ValueError, match=r"start_token_prices has no price for \['WBTC'\]"):
        find_opportunities(None, None, [pool], gas_price_wei=1, start_token_prices={"WETH": 1.0})


# --- detection ---


def _market(
    prices: dict[str, float], pools: list[tuple[str, str, str]], *, fee: float
) -> list[Edge]:
    """Both directions of each (name, a, b) pool at the prices' ratio, after ``fee``."""
    edges = []
    for name, a, b in pools:
        edges.append(Edge(name, a, b, prices[a] / prices[b] * (1 - fee)))
        edges.append(Edge(name, b, a, prices[b] / prices[a] * (1 - fee)))
    return edges


def _brute_force_cycles(edges: list[Edge], max_hops: int) -> set[tuple[int, ...]]:
    found = set()
    for k in range(2, max_hops + 1):
        for combo in itertools.permutations(range(len(edges)), k):
            hops = [edges[i] for i in combo]
            linked = all(hops[i].token_out == hops[(i + 1) % k].token_in for i in range(k))
            distinct = len({h.token_in for h in hops}) == len({h.pool for h in hops}) == k
            if linked and distinct and cycle_log_gain(edges, combo) > 1e-12:
                start = combo.index(min(combo))
                found.add(combo[start:] + combo[:start])
    return found


TRIANGLE = [("p1", "WETH", "USDC"), ("p2", "WBTC", "USDC"), ("p3", "WBTC", "WETH")]
PRICES = {"WETH": 2300.0, "USDC": 1.0, "WBTC": 42_000.0}


def test_consistent_prices_have_no_cycle_and_a_planted_one_is_found() -> None:
    edges = _market(PRICES, [*TRIANGLE, ("p4", "WETH", "USDC")], fee=0.003)
    assert find_negative_cycles(edges) == []
    assert bellman_ford_negative_cycle(edges) is None
    # Even fee-free consistent prices make no cycle (float noise is not an opportunity).
    assert find_negative_cycles(_market(PRICES, TRIANGLE, fee=0.0)) == []
    # Plant a 2 % dearer WBTC in p3 (edges 4 and 5): only triangles selling WBTC there pay.
    planted = [*edges[:4], *_market({**PRICES, "WBTC": 42_000 * 1.02}, TRIANGLE[2:], fee=0.003)]
    planted += edges[6:]
    cycles = find_negative_cycles(planted)
    assert cycles and all(4 in c for c in cycles)
    # WBTC -> WETH (p3), then to USDC through p1 or p4, then back to WBTC (p2): two cycles.
    routes = {tuple(planted[i].pool for i in c[c.index(4) :] + c[: c.index(4)]) for c in cycles}
    assert routes == {("p3", "p1", "p2"), ("p3", "p4", "p2")}
    assert bellman_ford_negative_cycle(planted) in cycles
    assert cycle_log_gain(planted, cycles[0]) == pytest.approx(math.log(1.02 * 0.997**3))


@pytest.mark.parametrize("seed", range(25))
def test_cycles_match_exhaustive_enumeration_on_random_graphs(seed: int) -> None:
    rng = np.random.default_rng(seed)
    tokens = [f"T{i}" for i in range(int(rng.integers(2, 5)))]
    prices = {t: float(np.exp(rng.normal(0, 3))) for t in tokens}
    pairs = list(itertools.combinations(tokens, 2))
    pools = [(f"p{k}", *pairs[rng.integers(len(pairs))]) for k in range(int(rng.integers(2, 7)))]
    # Each pool quotes its own noisy price: some loops pay, most don't.
    edges = []
    for name, a, b in pools:
        price, gamma = prices[a] / prices[b] * np.exp(rng.normal(0, 0.01)), 0.997
        edges += [Edge(name, a, b, price * gamma), Edge(name, b, a, gamma / price)]
    expected = _brute_force_cycles(edges, len(tokens))
    found = find_negative_cycles(edges, max_hops=len(tokens))
    assert len(found) == len(set(found)) and set(found) == expected
    gains = [cycle_log_gain(edges, c) for c in found]
    assert gains == sorted(gains, reverse=True)
    assert set(find_negative_cycles(edges, max_hops=2)) == {c for c in expected if len(c) == 2}
    bf = bellman_ford_negative_cycle(edges)
    assert (bf is None) == (not expected) and (bf is None or bf in expected)


# --- on the embedded chain ---


def _price(w3, pool: Pool, base: str) -> float:
    """``pool``'s mid price of ``base`` in the other token (raw units, all 18 decimals)."""
    state = pool_state(w3, pool)
    if pool.kind == "v2":
        p = state["reserve1"] / state["reserve0"]
    else:
        p = (state["sqrt_price_x96"] / 2**96) ** 2
    return p if base == pool.token0 else 1 / p


def _prices_per_eth(w3, eth_usdc: Pool, btc_usdc: Pool) -> dict[str, float]:
    usdc_per_eth = _price(w3, eth_usdc, "WETH")
    return {"WETH": 1.0, "USDC": usdc_per_eth, "WBTC": usdc_per_eth / _price(w3, btc_usdc, "WBTC")}


def _push(w3, dep, pool: Pool, symbol: str, fraction: float, trader: str) -> None:
    """Sell ``fraction`` of ``pool``'s ``symbol`` reserve into it (a V2 pool)."""
    state = pool_state(w3, pool)
    amount = int(state["reserve0" if symbol == pool.token0 else "reserve1"] * fraction)
    call = swap_call(
        w3, dep, pool, zero_for_one=symbol == pool.token0, amount_in=amount, recipient=trader
    )
    send(w3, call, trader)


def _execute_and_compare(w3, dep, opp: Opportunity, sender: str) -> None:
    realised = execute_cycle(w3, dep, opp, sender=sender)
    hops = len(opp.pools)
    for got, predicted in zip(realised.amounts_out, opp.size.amounts_out, strict=True):
        assert abs(got - predicted) <= 1
    assert abs(realised.profit - opp.size.profit) <= hops
    assert realised.profit > opp.gas_cost
    print(
        f"{' > '.join(opp.tokens)} via {[p.name for p in opp.pools]}: in {opp.size.amount_in}, "
        f"predicted {opp.size.profit}, realised {realised.profit}, gas {realised.gas_used}"
    )


def test_v2_vs_v3_mispricing_is_found_and_realised(embedded_chain) -> None:
    w3, dep, pools = embedded_chain.w3, embedded_chain.deployment, embedded_chain.pools
    v2_eth, v2_btc, v3_005, v3_03 = pools[0], pools[1], pools[2], pools[3]
    arbitrageur = embedded_chain.accounts["arbitrageur"]
    with snapshot(w3):
        _push(w3, dep, v2_eth, "WETH", 0.03, embedded_chain.accounts["trader0"])
        prices = _prices_per_eth(w3, v3_005, v2_btc)
        opps = find_opportunities(w3, dep, pools, gas_price_wei=10**10, start_token_prices=prices)
        frame = opportunities_frame(opps)
        assert frame["profitable"].to_list()[:2] == [True, True]
        routes = {tuple(p.address for p in o.pools) for o in opps}
        # V2 sells WETH cheap now: buy it there, sell it on either V3 WETH/USDC pool.
        assert (v3_005.address, v2_eth.address) in routes
        assert (v3_03.address, v2_eth.address) in routes
        best = opps[0]
        assert {p.kind for p in best.pools} == {"v2", "v3"} and best.tokens[0] == "WETH"
        _execute_and_compare(w3, dep, best, arbitrageur)
        # The same prediction is stale now: amountOutMin makes the first hop revert.
        with pytest.raises(ChainError, match="revert"):
            execute_cycle(w3, dep, best, sender=arbitrageur)


def test_v2_triangle_is_found_sized_in_closed_form_and_realised(embedded_chain) -> None:
    w3, dep, pools = embedded_chain.w3, embedded_chain.deployment, embedded_chain.pools
    v2_eth, v2_btc = pools[0], pools[1]
    with snapshot(w3):
        prices = _prices_per_eth(w3, v2_eth, v2_btc)
        wbtc = 4_000_000 * 10**18 // 42_000
        btc_eth = create_v2_pool(
            w3,
            dep,
            {"WBTC": wbtc, "WETH": round(wbtc / prices["WBTC"])},
            provider=embedded_chain.accounts["lp"],
        )
        triangle = [v2_eth, v2_btc, btc_eth]
        # Opened at the other two pools' price: every loop pays three fees, none gains.
        quiet = scan_pools(w3, dep, triangle, gas_price_wei=0, start_token_prices=prices)
        assert quiet.is_empty()
        _push(w3, dep, btc_eth, "WBTC", 0.02, embedded_chain.accounts["trader1"])
        frame = scan_pools(w3, dep, triangle, gas_price_wei=10**10, start_token_prices=prices)
        assert frame.height == 1 and frame["n_hops"][0] == 3 and frame["profitable"][0]
        assert frame["path"][0].to_list() == ["WETH", "WBTC", "USDC", "WETH"]
        # Gas only subtracts: the same cycle nets less at a higher gas price, and nothing
        # at an absurd one (kept, marked not profitable).
        nets = [
            scan_pools(w3, dep, triangle, gas_price_wei=g, start_token_prices=prices)
            for g in (10**9, 10**11, 10**20)
        ]
        assert {int(n["gross_profit_exact"][0]) for n in nets} == {
            int(frame["gross_profit_exact"][0])
        }
        assert nets[0]["net_profit"][0] > nets[1]["net_profit"][0] > 0 > nets[2]["net_profit"][0]
        assert not nets[2]["profitable"][0]
        (opp,) = find_opportunities(
            w3, dep, triangle, gas_price_wei=10**10, start_token_prices=prices
        )
        # The scanner's V2-only sizing is the closed form on the live reserves.
        reserves = []
        for pool, token in zip(opp.pools, opp.tokens, strict=False):
            s = pool_state(w3, pool)
            r = (s["reserve0"], s["reserve1"])
            reserves.append(r if token == pool.token0 else r[::-1])
        assert opp.size == v2_cycle_optimal_amount_in(reserves)
        _execute_and_compare(w3, dep, opp, embedded_chain.accounts["arbitrageur"])
