"""DEX arbitrage: detect price cycles across pools, size them exactly, and execute them.

- Sizing a V2 cycle in closed form. Each V2 hop maps ``x`` to ``a x / (b + c x)`` (the
  contract's ``getAmountOut`` before its floor, with ``a = k R_out``, ``b = 10000 R_in``,
  ``c = k``, ``k = 10000 - fee_bps``), and such maps compose into one of the same shape: a
  whole cycle is one constant-product pool with "virtual reserves". Its profit
  ``A x / (B + C x) - x`` peaks at ``x* = (sqrt(A B) - B) / C`` and is positive iff ``A > B``.
  :func:`v2_cycle_optimal_amount_in` takes ``x*`` in integers, then checks with the exact
  ``uniswap_v2_amount_out`` the inputs whose real profit could still beat the best found.
  The answer is the integer optimum, to the wei, when it reaches ``floor`` of the real
  optimum (a certificate) or when those inputs number at most ``scan_limit``; otherwise it
  is within the hops' rounding of it. :func:`v2_cycle_brute_force` tries every input.
- Any other cycle (V3 hops) is sized by :func:`size_cycle`: bracketing and golden section
  over exact quotes through the path (:func:`maximise_integer` is a plain ternary search).
- Detection: tokens are nodes and each pool gives two edges weighted ``-log(rate)``, the
  marginal rate after fee; a negative cycle is a loop whose rates multiply above 1.
  :func:`find_negative_cycles` enumerates every simple cycle up to ``max_hops`` (DEX token
  graphs are small) and reports each once; :func:`bellman_ford_negative_cycle` finds one in
  a large graph by predecessor walk-back.
- On a chain: :func:`find_opportunities` / :func:`scan_pools` read live pool states (V2
  reserves; V3 legs quoted by QuoterV2 through ``eth_call``, which runs the pool's own
  code), size every negative cycle, and net it of gas; :func:`execute_cycle` sends the hops
  as separate router swaps with ``amountOutMin`` equal to the predicted output of each hop,
  so a wrong prediction reverts instead of losing money.

Examples
--------
>>> size = v2_cycle_optimal_amount_in([(10**6, 2 * 10**6), (2 * 10**6, 11 * 10**5)])
>>> size.amount_in, size.profit
(22932, 1047)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from web3 import Web3

from research_lib.chain import Deployment, approve_all, balance_of, contract, send
from research_lib.chain_market import DEADLINE, Q96, Pool, pool_state
from research_lib.defi.uniswap import uniswap_v2_amount_out

_INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class CycleSize:
    """An input for a cycle and what it returns: ``amounts_out[i]`` is the output of hop
    ``i`` (raw units), ``profit = amounts_out[-1] - amount_in`` in the start token. No
    profitable input is ``amount_in=0`` with zero outputs and profit."""

    amount_in: int
    amounts_out: tuple[int, ...]
    profit: int


def _check_int(name: str, value: object, *, minimum: int = 0) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name}={value!r} must be an int >= {minimum}")
    return value


def _hop_fees(fee_bps: int | Sequence[int], n_hops: int) -> list[int]:
    fees = [fee_bps] * n_hops if isinstance(fee_bps, int) else list(fee_bps)
    if len(fees) != n_hops:
        raise ValueError(f"fee_bps has {len(fees)} entries for {n_hops} hops; give one per hop")
    for fee in fees:
        if not isinstance(fee, int) or not 0 <= fee < 10_000:
            raise ValueError(f"fee_bps={fee!r} must be an int in [0, 10000); Uniswap V2 is 30")
    return fees


def _check_path(reserves_path: Sequence[tuple[int, int]]) -> None:
    if len(reserves_path) < 2:
        raise ValueError(f"reserves_path has {len(reserves_path)} hops; a cycle needs >= 2")
    for i, (reserve_in, reserve_out) in enumerate(reserves_path):
        _check_int(f"reserves_path[{i}].reserve_in", reserve_in, minimum=1)
        _check_int(f"reserves_path[{i}].reserve_out", reserve_out, minimum=1)


def _v2_path_out(
    amount_in: int, reserves_path: Sequence[tuple[int, int]], fees: Sequence[int]
) -> tuple[int, ...]:
    amounts, amount = [], amount_in
    for (r_in, r_out), fee in zip(reserves_path, fees, strict=True):
        # The router would revert on a zero input; as a quote, nothing comes out.
        amount = uniswap_v2_amount_out(amount, r_in, r_out, fee_bps=fee) if amount else 0
        amounts.append(amount)
    return tuple(amounts)


def _v2_virtual_pool(
    reserves_path: Sequence[tuple[int, int]], fees: Sequence[int]
) -> tuple[int, int, int]:
    # (A, B, C) with out(x) = A x / (B + C x); composing a1 x/(b1 + c1 x) then
    # a2 y/(b2 + c2 y) gives (a1 a2) x / (b1 b2 + (b2 c1 + a1 c2) x).
    big_a, big_b, big_c = 1, 1, 0
    for (reserve_in, reserve_out), fee in zip(reserves_path, fees, strict=True):
        keep = 10_000 - fee
        a, b, c = keep * reserve_out, 10_000 * reserve_in, keep
        big_a, big_b, big_c = big_a * a, big_b * b, b * big_c + big_a * c
    return big_a, big_b, big_c


def v2_cycle_optimal_amount_in(
    reserves_path: Sequence[tuple[int, int]],
    *,
    fee_bps: int | Sequence[int] = 30,
    scan_limit: int = 2048,
) -> CycleSize:
    """The profit-maximising input of a cycle of V2 pools, in closed form, as an exact integer.

    Parameters
    ----------
    reserves_path
        ``(reserve_in, reserve_out)`` of each pool in swap order (raw units); the last hop
        returns the first hop's input token. Two hops are the two-pool arbitrage (buy on
        pool A, sell on pool B).
    fee_bps
        The pools' fee, one for all hops or one per hop (Uniswap V2: 30).
    scan_limit
        The most integer inputs checked around the real optimum ``x*`` (see the module
        notes: an exact optimum is certified or found by the scan for pools below ~1e5).

    Returns
    -------
    CycleSize
        The input (one of those tying for the best profit), each hop's exact output
        (``UniswapV2Library.getAmountOut``) and the profit; ``amount_in=0`` when no input
        gains (the pools agree within their fees).

    Examples
    --------
    >>> v2_cycle_optimal_amount_in([(10**6, 2 * 10**6), (2 * 10**6, 10**6)]).amount_in
    0
    """
    _check_path(reserves_path)
    _check_int("scan_limit", scan_limit, minimum=1)
    fees = _hop_fees(fee_bps, len(reserves_path))
    none = CycleSize(0, (0,) * len(reserves_path), 0)
    big_a, big_b, big_c = _v2_virtual_pool(reserves_path, fees)
    if big_a <= big_b:
        return none  # even the first wei loses: the real profit is concave and <= 0

    def evaluate(x: int) -> CycleSize:
        amounts = _v2_path_out(x, reserves_path, fees)
        return CycleSize(x, amounts, amounts[-1] - x)

    x_star = max(1, (math.isqrt(big_a * big_b) - big_b) // big_c)
    best = max((evaluate(max(1, x_star + d)) for d in range(-2, 3)), key=_rank)
    # Floors only lower outputs, so the real profit G bounds the integer one everywhere:
    # G(x*) = (sqrt(A) - sqrt(B))^2 / C caps it, and only inputs with G(x) >= target can do
    # better than best. G(x) >= t <=> C x^2 + (B + C t - A) x + t B <= 0.
    if 0 < best.profit == (big_a + big_b - math.isqrt(4 * big_a * big_b)) // big_c:
        return best
    target = max(best.profit, 1)
    half_b = big_a - big_b - big_c * target
    disc = half_b * half_b - 4 * big_c * target * big_b
    if disc < 0:
        return best if best.profit > 0 else none
    root = math.isqrt(disc) + 1
    lo = max(1, (half_b - root) // (2 * big_c))
    hi = -((-(half_b + root)) // (2 * big_c))
    if hi - lo + 1 > scan_limit:
        lo = max(lo, x_star - scan_limit // 2)
        hi = min(hi, lo + scan_limit - 1)
    for x in range(lo, hi + 1):
        best = max(best, evaluate(x), key=_rank)
    return best if best.profit > 0 else none


def _rank(size: CycleSize) -> tuple[int, int]:
    # The larger profit wins; among equal profits the smaller input (less capital at risk).
    return size.profit, -size.amount_in


def v2_cycle_brute_force(
    reserves_path: Sequence[tuple[int, int]],
    *,
    fee_bps: int | Sequence[int] = 30,
    max_amount_in: int,
) -> CycleSize:
    """Every integer input from 1 to ``max_amount_in`` through a V2 cycle; the best one.

    The reference for :func:`v2_cycle_optimal_amount_in`, vectorised in int64: it refuses
    pools deep enough to overflow (about ``reserve_out * max_amount_in > 9e14``).

    Examples
    --------
    >>> v2_cycle_brute_force(
    ...     [(10**6, 2 * 10**6), (2 * 10**6, 11 * 10**5)], max_amount_in=10**6
    ... ).profit
    1047
    """
    _check_path(reserves_path)
    _check_int("max_amount_in", max_amount_in, minimum=1)
    fees = _hop_fees(fee_bps, len(reserves_path))
    bound = max_amount_in  # the largest input a hop can see: then below reserve_out
    for reserve_in, reserve_out in reserves_path:
        if 10_000 * (bound * reserve_out + reserve_in) > _INT64_MAX:
            raise ValueError(
                f"v2_cycle_brute_force: reserves_path {list(reserves_path)} with "
                f"max_amount_in={max_amount_in} overflows int64; use smaller pools "
                "or maximise_integer"
            )
        bound = reserve_out
    x = np.arange(1, max_amount_in + 1, dtype=np.int64)
    amount = x
    outs = []
    for (reserve_in, reserve_out), fee in zip(reserves_path, fees, strict=True):
        with_fee = amount * (10_000 - fee)
        amount = with_fee * reserve_out // (reserve_in * 10_000 + with_fee)
        outs.append(amount)
    profit = amount - x
    best = int(np.argmax(profit))  # the first maximum: the smallest input
    if profit[best] <= 0:
        return CycleSize(0, (0,) * len(reserves_path), 0)
    return CycleSize(int(x[best]), tuple(int(o[best]) for o in outs), int(profit[best]))


def maximise_integer(
    profit: Callable[[int], int], *, lo: int, hi: int, scan_width: int = 32
) -> tuple[int, int]:
    """``(x, profit(x))`` maximising a unimodal integer function on ``[lo, hi]``.

    Ternary search down to ``scan_width`` inputs, then every one of those (floors make a
    concave profit jagged by a few wei, so the scan finds the best of the last window).

    Examples
    --------
    >>> maximise_integer(lambda x: -((x - 1234) ** 2), lo=0, hi=10**9)
    (1234, 0)
    """
    _check_int("scan_width", scan_width, minimum=3)
    if lo > hi:
        raise ValueError(f"lo={lo} > hi={hi}: the search interval is empty")
    while hi - lo + 1 > scan_width:
        third = (hi - lo) // 3
        m1, m2 = lo + third, hi - third
        if profit(m1) < profit(m2):
            lo = m1 + 1
        else:
            hi = m2
    return max(((x, profit(x)) for x in range(lo, hi + 1)), key=lambda t: (t[1], -t[0]))


def size_cycle(
    quote_path: Callable[[int], Sequence[int]],
    *,
    n_hops: int,
    amount_in_hint: int,
    scan_width: int = 8,
) -> CycleSize:
    """The best input of any cycle of ``n_hops`` from exact quotes: ``quote_path(x)`` returns
    each hop's output for input ``x`` (it may raise where the pools cannot fill ``x``).

    The optimum is bracketed by doubling from ``amount_in_hint`` (the cycle's profit is
    concave in its input, up to rounding), narrowed by golden section (one quote per step)
    to about ``sqrt(x)`` inputs, where the profit's curvature (~1/depth, and the input is
    below the depth) leaves under a wei to gain, then the best of ``scan_width`` inputs
    around the better point is taken: within a few wei of the integer optimum. Quotes are
    cached, so a slow quote (an ``eth_call``) is asked once per input.

    Examples
    --------
    >>> path = [(10**6, 2 * 10**6), (2 * 10**6, 11 * 10**5)]
    >>> from research_lib.defi.uniswap import uniswap_v2_amounts_out
    >>> quote = lambda x: uniswap_v2_amounts_out(x, path)[1:]
    >>> size_cycle(quote, n_hops=2, amount_in_hint=1000).profit  # the optimum is 1047
    1046
    """
    _check_int("n_hops", n_hops, minimum=1)
    _check_int("amount_in_hint", amount_in_hint, minimum=1)
    cache: dict[int, tuple[int, ...]] = {}

    def quote(x: int) -> tuple[int, ...]:
        if x not in cache:
            try:
                cache[x] = tuple(int(a) for a in quote_path(x))
            except Exception:
                cache[x] = ()  # the pools cannot fill x: treated as losing all of it
        return cache[x]

    def profit(x: int) -> int:
        amounts = quote(x)
        return amounts[-1] - x if x > 0 and len(amounts) == n_hops else -x - 1

    # Concave: profit(2h) >= profit(h) puts the optimum above h (ties push on, out of the
    # few-wei rounding noise of tiny inputs); the first drop puts it below 2h.
    lo, hi = 1, amount_in_hint
    while profit(2 * hi) >= profit(hi) and hi < 2**256:
        lo, hi = hi, 2 * hi
    hi *= 2
    # Golden section, one new quote per step: the new point splits the larger side of the
    # best point so far at 0.382 (robust to integer rounding, unlike mirrored points).
    a, b = lo, hi
    r = a + (b - a) * 381_966 // 1_000_000
    while b - a > max(4 * scan_width, math.isqrt(b)):
        if r - a > b - r:
            n = min(r - (r - a) * 381_966 // 1_000_000, r - 1)
        else:
            n = max(r + (b - r) * 381_966 // 1_000_000, r + 1)
        u, v = min(r, n), max(r, n)
        if profit(u) < profit(v):
            a, r = u, v
        else:
            b, r = v, u
    lo, hi = max(a, r - scan_width // 2), min(b, r + scan_width // 2)
    x, best = maximise_integer(profit, lo=lo, hi=max(lo, hi), scan_width=scan_width)
    if best <= 0:
        return CycleSize(0, (0,) * n_hops, 0)
    return CycleSize(x, quote(x), best)


# --- detection ---


@dataclass(frozen=True)
class Edge:
    """One direction of one pool: swap ``token_in`` for ``token_out`` at the marginal
    ``rate`` (``token_out`` per ``token_in`` for a tiny trade, after the pool's fee)."""

    pool: str
    token_in: str
    token_out: str
    rate: float

    def __post_init__(self) -> None:
        if not (self.rate > 0 and math.isfinite(self.rate)):
            raise ValueError(f"Edge({self.pool!r}).rate={self.rate!r} must be positive, finite")
        if self.token_in == self.token_out:
            raise ValueError(f"Edge({self.pool!r}): token_in == token_out == {self.token_in!r}")

    @property
    def weight(self) -> float:
        return -math.log(self.rate)


def cycle_log_gain(edges: Sequence[Edge], cycle: Sequence[int]) -> float:
    """``log`` of the product of the cycle's marginal rates (``-`` its total weight), summed
    exactly rounded (``math.fsum``), so every rotation gives the same value."""
    return -math.fsum(edges[i].weight for i in cycle)


def _canonical(cycle: Sequence[int]) -> tuple[int, ...]:
    start = cycle.index(min(cycle))
    return tuple(cycle[start:]) + tuple(cycle[:start])


def find_negative_cycles(
    edges: Sequence[Edge], *, max_hops: int = 4, min_log_gain: float = 1e-12
) -> list[tuple[int, ...]]:
    """Every simple cycle of at most ``max_hops`` edges whose rates multiply above 1.

    A cycle visits each token once and each pool once; it is a tuple of indices into
    ``edges`` in swap order, reported once, rotated to start at its smallest index. Cycles
    whose :func:`cycle_log_gain` is at most ``min_log_gain`` are left out (float noise).
    Sorted by gain, best first. The enumeration is exhaustive, which suits DEX graphs of a
    few tokens; for large graphs use :func:`bellman_ford_negative_cycle`.

    Examples
    --------
    >>> edges = [Edge("p", "A", "B", 2.0), Edge("q", "B", "A", 0.6), Edge("q", "A", "B", 1.6)]
    >>> find_negative_cycles(edges)
    [(0, 1)]
    """
    _check_int("max_hops", max_hops, minimum=2)
    out_edges: dict[str, list[int]] = {}
    for i, edge in enumerate(edges):
        out_edges.setdefault(edge.token_in, []).append(i)
    found: list[tuple[int, ...]] = []

    def extend(path: list[int], tokens: set[str], pools: set[str]) -> None:
        last = edges[path[-1]]
        for j in out_edges.get(last.token_out, []):
            # Only edges after the first: each cycle is built once, from its smallest index.
            edge = edges[j]
            if j <= path[0] or edge.pool in pools:
                continue
            if edge.token_out == edges[path[0]].token_in:
                found.append((*path, j))
            elif edge.token_out not in tokens and len(path) + 1 < max_hops:
                path.append(j)
                tokens.add(edge.token_out)
                pools.add(edge.pool)
                extend(path, tokens, pools)
                path.pop()
                tokens.discard(edge.token_out)
                pools.discard(edge.pool)

    for i, edge in enumerate(edges):
        extend([i], {edge.token_in, edge.token_out}, {edge.pool})
    negative = [c for c in found if cycle_log_gain(edges, c) > min_log_gain]
    return sorted(negative, key=lambda c: -cycle_log_gain(edges, c))


def bellman_ford_negative_cycle(
    edges: Sequence[Edge], *, min_log_gain: float = 1e-12
) -> tuple[int, ...] | None:
    """One negative cycle (indices into ``edges``, as :func:`find_negative_cycles` reports
    them), or ``None``: Bellman-Ford from a virtual source joined to every token, then a
    walk back along the predecessors from an edge that still relaxes.

    An edge relaxes only by more than ``min_log_gain / n_tokens``, so float noise in an
    arbitrage-free market finds nothing. O(tokens x edges). The two edges of a pool must
    quote one price (its round trip loses its fee), as a pool's always do.

    Examples
    --------
    >>> edges = [Edge("p", "A", "B", 2.0), Edge("q", "B", "A", 0.6)]
    >>> bellman_ford_negative_cycle(edges)
    (0, 1)
    """
    tokens = sorted({e.token_in for e in edges} | {e.token_out for e in edges})
    eps = min_log_gain / max(len(tokens), 1)
    dist = dict.fromkeys(tokens, 0.0)
    pred: dict[str, int] = {}
    # A negative cycle keeps relaxing; once the predecessor graph closes a loop, that loop
    # is negative (CLRS 24.1). Checked every round: cheap for token graphs.
    for _ in range(4 * len(tokens)):
        relaxed = False
        for i, e in enumerate(edges):
            if dist[e.token_in] + e.weight < dist[e.token_out] - eps:
                dist[e.token_out] = dist[e.token_in] + e.weight
                pred[e.token_out] = i
                relaxed = True
        if not relaxed:
            return None
        cycle = _predecessor_cycle(edges, pred, min_log_gain)
        if cycle is not None:
            return cycle
    return None


def _predecessor_cycle(
    edges: Sequence[Edge], pred: Mapping[str, int], min_log_gain: float
) -> tuple[int, ...] | None:
    done: set[str] = set()
    for origin in pred:
        walk: list[str] = []
        token = origin
        while token in pred and token not in done and token not in walk:
            walk.append(token)
            token = edges[pred[token]].token_in
        done.update(walk)
        if token in walk:  # walked back into a loop: collect it in swap order
            loop = walk[walk.index(token) :]
            cycle = [pred[t] for t in reversed(loop)]
            pools = {edges[i].pool for i in cycle}
            if len(pools) == len(cycle) and cycle_log_gain(edges, cycle) > min_log_gain:
                return _canonical(cycle)
    return None


def gas_cost_in_token(*, gas_units: int, gas_price_wei: int, token_per_eth: float) -> int:
    """The gas bill in a token's raw units, rounded up: ``gas_units * gas_price_wei`` wei
    at ``token_per_eth`` token per ETH (raw units per wei: the human price when the token
    has 18 decimals).

    Examples
    --------
    >>> gas_cost_in_token(gas_units=100_000, gas_price_wei=10**10, token_per_eth=2000.0)
    2000000000000000000
    """
    _check_int("gas_units", gas_units)
    _check_int("gas_price_wei", gas_price_wei)
    if not (token_per_eth > 0 and math.isfinite(token_per_eth)):
        raise ValueError(f"token_per_eth={token_per_eth!r} must be positive and finite")
    return math.ceil(gas_units * gas_price_wei * token_per_eth)


# --- on a chain ---


@dataclass(frozen=True)
class Opportunity:
    """A sized cycle on the chain: ``tokens`` runs from the start token back to it (one more
    entry than ``pools``); amounts and profits are raw units of the start token."""

    tokens: tuple[str, ...]
    pools: tuple[Pool, ...]
    log_gain: float
    size: CycleSize
    gas_units: int
    gas_cost: int
    net_profit: int
    net_profit_eth: float

    @property
    def profitable(self) -> bool:
        return self.net_profit > 0


def _pool_edges(pool: Pool, state: Mapping[str, int]) -> list[Edge]:
    gamma = 1.0 - pool.fee_pips / 1e6
    if pool.kind == "v2":
        r0, r1 = state["reserve0"], state["reserve1"]
        if r0 == 0 or r1 == 0:
            return []
        price = r1 / r0
    else:
        if state["liquidity"] == 0:
            return []  # no liquidity at the current price: not even a wei trades there
        price = (state["sqrt_price_x96"] / Q96) ** 2
    return [
        Edge(pool.address, pool.token0, pool.token1, price * gamma),
        Edge(pool.address, pool.token1, pool.token0, gamma / price),
    ]


def _hop_quote(
    w3: Web3, deployment: Deployment, pool: Pool, token_in: str, state: Mapping[str, int]
) -> Callable[[int], int]:
    zero_for_one = token_in == pool.token0
    if pool.kind == "v2":
        r0, r1 = state["reserve0"], state["reserve1"]
        reserve_in, reserve_out = (r0, r1) if zero_for_one else (r1, r0)
        fee = pool.fee_pips // 100
        return lambda x: uniswap_v2_amount_out(x, reserve_in, reserve_out, fee_bps=fee)
    quoter = contract(w3, "QuoterV2", deployment.quoter_v2)
    token_out = pool.token1 if zero_for_one else pool.token0
    addresses = deployment.token(token_in), deployment.token(token_out)

    def quote(x: int) -> int:
        params = (*addresses, x, pool.fee_pips, 0)
        return int(quoter.functions.quoteExactInputSingle(params).call()[0])

    return quote


def find_opportunities(
    w3: Web3,
    deployment: Deployment,
    pools: Sequence[Pool],
    *,
    gas_price_wei: int,
    start_token_prices: Mapping[str, float],
    gas_units_per_hop: int = 150_000,
    max_hops: int = 3,
) -> list[Opportunity]:
    """Every negative cycle across ``pools`` at the latest block, sized and netted of gas.

    Parameters
    ----------
    gas_price_wei
        What the cycle pays per gas unit; a cycle costs ``gas_units_per_hop`` per hop (each
        hop is one router swap).
    start_token_prices
        Token symbol -> token per ETH (raw units per wei), for every token of ``pools``;
        its order is the preference for the start token: a cycle starts (and counts its
        profit) at the first of these tokens it visits.
    max_hops
        The longest cycle searched.

    Returns
    -------
    list[Opportunity]
        Sorted by net profit in ETH, best first. V2-only cycles are sized in closed form,
        the others by :func:`size_cycle` over QuoterV2 ``eth_call`` quotes; a cycle whose
        gross profit does not cover its gas is kept, with ``profitable`` False.

    Examples
    --------
    >>> opps = find_opportunities(  # doctest: +SKIP
    ...     w3, deployment, pools, gas_price_wei=10**10,
    ...     start_token_prices={"WETH": 1.0, "USDC": 2300.0, "WBTC": 0.055},
    ... )
    """
    _check_int("gas_price_wei", gas_price_wei)
    _check_int("gas_units_per_hop", gas_units_per_hop)
    symbols = {p.token0 for p in pools} | {p.token1 for p in pools}
    missing = sorted(symbols - set(start_token_prices))
    if missing:
        raise ValueError(f"start_token_prices has no price for {missing}; give token per ETH")
    for symbol, price in start_token_prices.items():
        if not (price > 0 and math.isfinite(price)):
            raise ValueError(f"start_token_prices[{symbol!r}]={price!r} must be positive")
    by_address = {pool.address: pool for pool in pools}
    states = {pool.address: pool_state(w3, pool) for pool in pools}
    edges = [e for pool in pools for e in _pool_edges(pool, states[pool.address])]
    preference = list(start_token_prices)
    opportunities = []
    for cycle in find_negative_cycles(edges, max_hops=max_hops):
        start = min(range(len(cycle)), key=lambda k: preference.index(edges[cycle[k]].token_in))
        hops = [edges[i] for i in (*cycle[start:], *cycle[:start])]
        hop_pools = tuple(by_address[e.pool] for e in hops)
        if all(p.kind == "v2" for p in hop_pools):
            path = [
                _v2_reserves(states[e.pool], p, e.token_in)
                for p, e in zip(hop_pools, hops, strict=True)
            ]
            fees = [p.fee_pips // 100 for p in hop_pools]
            size = v2_cycle_optimal_amount_in(path, fee_bps=fees)
        else:
            size = _size_mixed_cycle(w3, deployment, hop_pools, hops, states)
        token = hops[0].token_in
        gas_units = gas_units_per_hop * len(hops)
        gas_cost = gas_cost_in_token(
            gas_units=gas_units,
            gas_price_wei=gas_price_wei,
            token_per_eth=start_token_prices[token],
        )
        net = size.profit - gas_cost
        opportunities.append(
            Opportunity(
                tokens=(token, *(e.token_out for e in hops)),
                pools=hop_pools,
                log_gain=cycle_log_gain(edges, cycle),
                size=size,
                gas_units=gas_units,
                gas_cost=gas_cost,
                net_profit=net,
                net_profit_eth=net / start_token_prices[token],
            )
        )
    return sorted(opportunities, key=lambda o: -o.net_profit_eth)


def _v2_reserves(state: Mapping[str, int], pool: Pool, token_in: str) -> tuple[int, int]:
    r0, r1 = state["reserve0"], state["reserve1"]
    return (r0, r1) if token_in == pool.token0 else (r1, r0)


def _size_mixed_cycle(
    w3: Web3,
    deployment: Deployment,
    hop_pools: Sequence[Pool],
    hops: Sequence[Edge],
    states: Mapping[str, Mapping[str, int]],
) -> CycleSize:
    quotes = [
        _hop_quote(w3, deployment, p, e.token_in, states[p.address])
        for p, e in zip(hop_pools, hops, strict=True)
    ]

    def quote_path(x: int) -> list[int]:
        amounts = []
        for quote in quotes:
            x = quote(x) if x > 0 else 0
            amounts.append(x)
        return amounts

    # A thousandth of the first pool's depth in the input token: the bracket's first guess.
    first, state = hop_pools[0], states[hop_pools[0].address]
    if first.kind == "v2":
        depth = _v2_reserves(state, first, hops[0].token_in)[0]
    else:  # V3 virtual reserves: L / sqrt(P) of token0, L sqrt(P) of token1
        liquidity, sqrt_price = state["liquidity"], state["sqrt_price_x96"]
        zero_in = hops[0].token_in == first.token0
        depth = liquidity * Q96 // sqrt_price if zero_in else liquidity * sqrt_price // Q96
    return size_cycle(quote_path, n_hops=len(hops), amount_in_hint=max(depth // 1000, 1))


_EXACT_COLUMNS = ("amount_in", "gross_profit", "gas_cost", "net_profit")
_FRAME_SCHEMA: dict[str, Any] = {
    "start_token": pl.String,
    "path": pl.List(pl.String),
    "pools": pl.List(pl.String),
    "pool_addresses": pl.List(pl.String),
    "n_hops": pl.Int64,
    "log_gain": pl.Float64,
    **{name: pl.Float64 for name in _EXACT_COLUMNS},
    **{f"{name}_exact": pl.String for name in _EXACT_COLUMNS},
    "net_profit_eth": pl.Float64,
    "profitable": pl.Boolean,
}


def opportunities_frame(opportunities: Sequence[Opportunity]) -> pl.DataFrame:
    """One row per opportunity. Raw amounts (start token) are floats for analysis and exact
    decimal strings in the ``*_exact`` columns (they exceed int64)."""
    rows = []
    for o in opportunities:
        values = (o.size.amount_in, o.size.profit, o.gas_cost, o.net_profit)
        exact = dict(zip(_EXACT_COLUMNS, values, strict=True))
        rows.append(
            {
                "start_token": o.tokens[0],
                "path": list(o.tokens),
                "pools": [p.name for p in o.pools],
                "pool_addresses": [p.address for p in o.pools],
                "n_hops": len(o.pools),
                "log_gain": o.log_gain,
                **{k: float(v) for k, v in exact.items()},
                **{f"{k}_exact": str(v) for k, v in exact.items()},
                "net_profit_eth": o.net_profit_eth,
                "profitable": o.profitable,
            }
        )
    return pl.DataFrame(rows, schema=_FRAME_SCHEMA)


def scan_pools(
    w3: Web3,
    deployment: Deployment,
    pools: Sequence[Pool],
    *,
    gas_price_wei: int,
    start_token_prices: Mapping[str, float],
    gas_units_per_hop: int = 150_000,
    max_hops: int = 3,
) -> pl.DataFrame:
    """:func:`find_opportunities` as a frame (:func:`opportunities_frame`), best first.

    Examples
    --------
    >>> scan_pools(  # doctest: +SKIP
    ...     chain.w3, chain.deployment, chain.pools, gas_price_wei=10**10,
    ...     start_token_prices={"WETH": 1.0, "USDC": 2300.0, "WBTC": 0.055},
    ... ).select("path", "pools", "net_profit")
    """
    return opportunities_frame(
        find_opportunities(
            w3,
            deployment,
            pools,
            gas_price_wei=gas_price_wei,
            start_token_prices=start_token_prices,
            gas_units_per_hop=gas_units_per_hop,
            max_hops=max_hops,
        )
    )


@dataclass(frozen=True)
class Execution:
    """What :func:`execute_cycle` did: each hop's realised output (the sender's balance
    change in the hop's output token), the realised profit, and each swap's gas used."""

    amount_in: int
    amounts_out: tuple[int, ...]
    profit: int
    gas_used: tuple[int, ...]


def execute_cycle(
    w3: Web3, deployment: Deployment, opportunity: Opportunity, *, sender: str
) -> Execution:
    """Send the cycle's hops as separate router swaps from ``sender``, as predicted.

    Hop ``i`` swaps exactly the predicted input (the predicted output of hop ``i - 1``)
    with ``amountOutMin`` equal to its predicted output, so a stale or wrong prediction
    reverts (:class:`research_lib.chain.ChainError`) rather than trading at a loss. The
    hops are separate transactions: another trade between them can make a later one
    revert, leaving the earlier hops done. ``sender`` must be an unlocked account holding
    the input; the routers are approved for it here if needed.

    Examples
    --------
    >>> best = find_opportunities(w3, deployment, pools, **kw)[0]  # doctest: +SKIP
    >>> execute_cycle(w3, deployment, best, sender=account).profit  # doctest: +SKIP
    """
    size = opportunity.size
    if size.amount_in <= 0:
        raise ValueError("opportunity.size.amount_in=0: the cycle has no profitable input")
    start = opportunity.tokens[0]
    held = balance_of(w3, deployment, start, sender)
    if held < size.amount_in:
        raise ValueError(
            f"sender {sender} holds {held} {start}, less than amount_in={size.amount_in}; fund it"
        )
    for symbol in set(opportunity.tokens):
        approve_all(w3, deployment, sender, symbol)
    realised, gas_used = [], []
    amount_in = size.amount_in
    for i in range(len(opportunity.pools)):
        token_out = opportunity.tokens[i + 1]
        before = balance_of(w3, deployment, token_out, sender)
        receipt = send(w3, _hop_swap(w3, deployment, opportunity, i, amount_in, sender), sender)
        realised.append(balance_of(w3, deployment, token_out, sender) - before)
        gas_used.append(int(receipt["gasUsed"]))
        amount_in = size.amounts_out[i]
    return Execution(
        size.amount_in, tuple(realised), realised[-1] - size.amount_in, tuple(gas_used)
    )


def _hop_swap(
    w3: Web3, deployment: Deployment, opp: Opportunity, hop: int, amount_in: int, recipient: str
) -> Any:
    pool, token_in, token_out = opp.pools[hop], opp.tokens[hop], opp.tokens[hop + 1]
    amount_out_min = opp.size.amounts_out[hop]
    if pool.kind == "v2":
        router = contract(w3, "UniswapV2Router02", deployment.v2_router)
        path = [deployment.token(token_in), deployment.token(token_out)]
        return router.functions.swapExactTokensForTokens(
            amount_in, amount_out_min, path, recipient, DEADLINE
        )
    router = contract(w3, "SwapRouter", deployment.swap_router)
    addresses = deployment.token(token_in), deployment.token(token_out)
    params = (*addresses, pool.fee_pips, recipient, DEADLINE, amount_in, amount_out_min, 0)
    return router.functions.exactInputSingle(params)
