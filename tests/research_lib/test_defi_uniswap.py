"""research_lib.defi.uniswap / uniswap_v3: exact integer ports of the Uniswap V2 and V3 maths.

Vectors are numbers from Uniswap's own tests (v2 Pair / Router02 specs; v3-core TickMath,
SqrtPriceMath, SwapMath specs and the UniswapV3Pool.swaps snapshot; v3-periphery
LiquidityAmounts spec). References written here: TickBitmap / PoolTicksCounter on literal
256-bit words, and exact rationals. The chain cross-checks live elsewhere.
"""

from __future__ import annotations

import copy
import doctest
from decimal import Decimal, getcontext
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from research_lib.defi import uniswap, uniswap_v3
from research_lib.defi.uniswap import (
    MAX_SQRT_RATIO,
    MAX_TICK,
    MAX_UINT256,
    MIN_SQRT_RATIO,
    MIN_TICK,
    Q96,
    SolidityRevert,
    amount0_delta,
    amount1_delta,
    compute_swap_step,
    max_liquidity_per_tick,
    mul_div,
    mul_div_rounding_up,
    next_initialized_tick_within_one_word,
    next_sqrt_price_from_input,
    next_sqrt_price_from_output,
    sqrt_price_x96_at_tick,
    tick_at_sqrt_price_x96,
    uniswap_v2_amount_in,
    uniswap_v2_amount_out,
    uniswap_v2_amounts_in,
    uniswap_v2_amounts_out,
)
from research_lib.defi.uniswap_v3 import (
    V3PoolState,
    amounts_for_liquidity,
    liquidity_for_amounts,
)

E18 = 10**18
MAX_INT256 = 2**255 - 1
POOL_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def encode_price_sqrt(reserve1: int, reserve0: int) -> int:
    """The Uniswap tests' ``encodePriceSqrt``: floor(sqrt(reserve1 / reserve0) * 2**96)."""
    getcontext().prec = 120
    return int((Decimal(reserve1) / Decimal(reserve0)).sqrt() * Decimal(Q96))


def test_docstring_examples_run() -> None:
    for module in (uniswap, uniswap_v3):
        assert doctest.testmod(module).failed == 0


# --- Uniswap V2 ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("swap", "reserve_in", "reserve_out", "expected"),
    [  # v2-core UniswapV2Pair.spec.ts swapTestCases (amounts in units of 1e18)
        (1, 5, 10, 1662497915624478906), (1, 10, 5, 453305446940074565),
        (2, 5, 10, 2851015155847869602), (2, 10, 5, 831248957812239453),
        (1, 10, 10, 906610893880149131), (1, 100, 100, 987158034397061298),
        (1, 1000, 1000, 996006981039903216),
    ],
)  # fmt: skip
def test_v2_amount_out_matches_pair_spec(
    swap: int, reserve_in: int, reserve_out: int, expected: int
) -> None:
    assert uniswap_v2_amount_out(swap * E18, reserve_in * E18, reserve_out * E18) == expected


def test_v2_router_spec_vectors_and_reverts() -> None:
    # UniswapV2Router02.spec.ts: getAmountOut(2, 100, 100) = 1, getAmountIn(1, 100, 100) = 2,
    # and getAmountsOut / getAmountsIn over a 10000/10000 pair.
    assert uniswap_v2_amount_out(2, 100, 100) == 1
    assert uniswap_v2_amount_in(1, 100, 100) == 2
    assert uniswap_v2_amounts_out(2, [(10_000, 10_000)]) == [2, 1]
    assert uniswap_v2_amounts_in(1, [(10_000, 10_000)]) == [2, 1]
    cases = [
        (lambda: uniswap_v2_amount_out(0, 100, 100), "INSUFFICIENT_INPUT_AMOUNT"),
        (lambda: uniswap_v2_amount_out(2, 0, 100), "INSUFFICIENT_LIQUIDITY"),
        (lambda: uniswap_v2_amount_in(0, 100, 100), "INSUFFICIENT_OUTPUT_AMOUNT"),
        (lambda: uniswap_v2_amount_in(1, 100, 0), "INSUFFICIENT_LIQUIDITY"),
        (lambda: uniswap_v2_amount_in(101, 100, 100), "ds-math-sub-underflow"),
        (lambda: uniswap_v2_amounts_out(2, []), "INVALID_PATH"),
        (lambda: uniswap_v2_amount_out(2**255, 2**100, 2**100), "ds-math-mul-overflow"),
    ]
    for call, reason in cases:
        with pytest.raises(SolidityRevert, match=reason):
            call()
    with pytest.raises(ValueError, match="fee_bps"):
        uniswap_v2_amount_out(1, 100, 100, fee_bps=10_000)


reserves = st.integers(1_000, 2**112 - 1)  # UniswapV2Pair stores uint112 reserves


def pair_k_check(reserve_in: int, reserve_out: int, amount_in: int, amount_out: int) -> bool:
    """UniswapV2Pair.swap's K check on the balances after the swap (0.3% fee)."""
    adjusted_in = (reserve_in + amount_in) * 1000 - amount_in * 3
    adjusted_out = (reserve_out - amount_out) * 1000
    return adjusted_in * adjusted_out >= reserve_in * reserve_out * 1000**2


@given(reserves, reserves, st.integers(1, 2**100))
@settings(max_examples=300)
def test_v2_amount_out_is_the_largest_output_the_pair_accepts(
    reserve_in: int, reserve_out: int, amount_in: int
) -> None:
    out = uniswap_v2_amount_out(amount_in, reserve_in, reserve_out)
    assert 0 <= out < reserve_out
    # k (fee-adjusted) never decreases, and one more wei would break it.
    assert pair_k_check(reserve_in, reserve_out, amount_in, out)
    assert not pair_k_check(reserve_in, reserve_out, amount_in, out + 1)
    assert (reserve_in + amount_in) * (reserve_out - out) >= reserve_in * reserve_out


@given(reserves, reserves, st.integers(1, 2**100), st.sampled_from([30, 25, 5, 100]))
@settings(max_examples=300)
def test_v2_amount_in_and_out_round_trip(
    reserve_in: int, reserve_out: int, amount_in: int, fee_bps: int
) -> None:
    out = uniswap_v2_amount_out(amount_in, reserve_in, reserve_out, fee_bps=fee_bps)
    assume(out > 0)
    needed = uniswap_v2_amount_in(out, reserve_in, reserve_out, fee_bps=fee_bps)
    # getAmountIn is floor + 1, so it can exceed the amount that produced `out` by one wei,
    # and what it asks for always buys at least `out`.
    assert needed <= amount_in + 1
    assert uniswap_v2_amount_out(needed, reserve_in, reserve_out, fee_bps=fee_bps) >= out


@given(st.integers(1, 2**80), st.lists(st.tuples(reserves, reserves), min_size=1, max_size=4))
@settings(max_examples=200)
def test_v2_multi_hop_chains_single_hops(amount: int, path: list[tuple[int, int]]) -> None:
    try:
        amounts = uniswap_v2_amounts_out(amount, path)
    except SolidityRevert as error:  # a hop paid 0, so the next one reverts, as in the router
        assert error.reason == "UniswapV2Library: INSUFFICIENT_INPUT_AMOUNT"
        return
    for i, (reserve_in, reserve_out) in enumerate(path):
        assert amounts[i + 1] == uniswap_v2_amount_out(amounts[i], reserve_in, reserve_out)
    try:
        backwards = uniswap_v2_amounts_in(amounts[-1], path)
    except SolidityRevert:  # the + 1 of getAmountIn asked for a whole reserve
        return
    assert backwards[-1] == amounts[-1]
    assert uniswap_v2_amounts_out(backwards[0], path)[-1] >= amounts[-1]


def test_v2_numerical_extremes() -> None:
    # Reserves near the uint112 cap and a single wei: exact integers, no float drift.
    top = 2**112 - 1
    assert uniswap_v2_amount_out(top, top, top) == top * 9970 * top // (top * 10_000 + top * 9970)
    assert uniswap_v2_amount_out(1, 1, top) == 9970 * top // (10_000 + 9970)
    assert uniswap_v2_amount_out(1, top, 1) == 0


# --- FullMath, TickMath ---------------------------------------------------------------------


@given(st.integers(0, MAX_UINT256), st.integers(0, MAX_UINT256), st.integers(1, MAX_UINT256))
def test_mul_div_is_floor_and_ceil_of_the_exact_ratio(a: int, b: int, d: int) -> None:
    exact = Fraction(a * b, d)
    if exact >= 2**256:
        with pytest.raises(SolidityRevert):
            mul_div(a, b, d)
        return
    down = mul_div(a, b, d)
    assert down == exact.numerator // exact.denominator
    if exact == down:
        assert mul_div_rounding_up(a, b, d) == down
    elif down < MAX_UINT256:
        assert mul_div_rounding_up(a, b, d) == down + 1
    with pytest.raises(SolidityRevert):
        mul_div(a, b, 0)


def test_tick_math_spec_vectors() -> None:
    # TickMath.spec.ts: the bounds, their neighbours, and the reverts 'T' / 'R'.
    assert sqrt_price_x96_at_tick(MIN_TICK) == MIN_SQRT_RATIO == 4295128739
    assert sqrt_price_x96_at_tick(MIN_TICK + 1) == 4295343490
    assert sqrt_price_x96_at_tick(MAX_TICK - 1) == 1461373636630004318706518188784493106690254656249
    assert sqrt_price_x96_at_tick(MAX_TICK) == MAX_SQRT_RATIO
    assert sqrt_price_x96_at_tick(0) == Q96
    assert tick_at_sqrt_price_x96(MIN_SQRT_RATIO) == MIN_TICK
    assert tick_at_sqrt_price_x96(4295343490) == MIN_TICK + 1
    assert tick_at_sqrt_price_x96(1461373636630004318706518188784493106690254656249) == MAX_TICK - 1
    assert tick_at_sqrt_price_x96(MAX_SQRT_RATIO - 1) == MAX_TICK - 1
    for bad in (MIN_TICK - 1, MAX_TICK + 1):
        with pytest.raises(SolidityRevert, match=r"^T:"):
            sqrt_price_x96_at_tick(bad)
    for bad in (MIN_SQRT_RATIO - 1, MAX_SQRT_RATIO):
        with pytest.raises(SolidityRevert, match=r"^R:"):
            tick_at_sqrt_price_x96(bad)


@given(st.integers(MIN_TICK, MAX_TICK))
@settings(max_examples=300)
def test_tick_to_sqrt_price_to_tick_identity_and_accuracy(tick: int) -> None:
    sqrt_price = sqrt_price_x96_at_tick(tick)
    if tick < MAX_TICK:
        assert tick_at_sqrt_price_x96(sqrt_price) == tick
        assert sqrt_price_x96_at_tick(tick + 1) > sqrt_price
    getcontext().prec = 80
    exact = (Decimal("1.0001") ** tick).sqrt() * Decimal(Q96)
    # The contract's fixed point is within ~2e-10 relative of the exact value everywhere.
    assert abs(Decimal(sqrt_price) - exact) / exact < Decimal("1e-9")


@given(st.integers(MIN_SQRT_RATIO, MAX_SQRT_RATIO - 1))
@settings(max_examples=300)
def test_tick_at_sqrt_price_is_the_greatest_tick_at_or_below(sqrt_price: int) -> None:
    tick = tick_at_sqrt_price_x96(sqrt_price)
    assert sqrt_price_x96_at_tick(tick) <= sqrt_price
    assert tick == MAX_TICK or sqrt_price < sqrt_price_x96_at_tick(tick + 1)


# --- SqrtPriceMath, SwapMath, LiquidityAmounts -------------------------------------------------


def test_sqrt_price_math_spec_vectors() -> None:
    price, liquidity, tenth = encode_price_sqrt(1, 1), E18, E18 // 10
    after_in, after_out = next_sqrt_price_from_input, next_sqrt_price_from_output
    assert after_in(price, liquidity, tenth, zero_for_one=False) == 87150978765690771352898345369
    assert after_in(price, liquidity, tenth, zero_for_one=True) == 72025602285694852357767227579
    assert after_in(price, 10 * E18, 2**100, zero_for_one=True) == 624999999995069620
    assert after_in(price, 1, MAX_UINT256 // 2, zero_for_one=True) == 1
    assert after_in(1, 1, 2**255, zero_for_one=True) == 1
    assert after_in(price, tenth, 0, zero_for_one=True) == price
    assert after_out(price, liquidity, tenth, zero_for_one=False) == 88031291682515930659493278152
    assert after_out(price, liquidity, tenth, zero_for_one=True) == 71305346262837903834189555302
    reverts = [
        (next_sqrt_price_from_input, (2**160 - 1, 1024, 1024, False)),  # overflows the price
        (next_sqrt_price_from_input, (0, 1, 1, True)),
        (next_sqrt_price_from_input, (1, 0, 1, True)),
        (next_sqrt_price_from_output, (2**104, 1024, 4, False)),  # = virtual reserve of token0
        (next_sqrt_price_from_output, (2**104, 1024, 5, False)),
        (next_sqrt_price_from_output, (2**104, 1024, 262144, True)),  # = virtual reserve of token1
        (next_sqrt_price_from_output, (price, 1, MAX_UINT256, True)),
        (next_sqrt_price_from_output, (price, 1, MAX_UINT256, False)),
    ]
    for function, (p, l_, amount, zero_for_one) in reverts:
        with pytest.raises(SolidityRevert):
            function(p, l_, amount, zero_for_one=zero_for_one)

    p121 = encode_price_sqrt(121, 100)
    assert amount0_delta(p121, price, E18, round_up=True) == 90909090909090910
    assert amount0_delta(p121, price, E18, round_up=False) == 90909090909090909
    assert amount1_delta(price, p121, E18, round_up=True) == 100000000000000000
    assert amount1_delta(price, p121, E18, round_up=False) == 99999999999999999
    assert amount0_delta(price, encode_price_sqrt(2, 1), 0, round_up=True) == 0
    high, low = encode_price_sqrt(2**96, 1), encode_price_sqrt(2**90, 1)
    assert amount0_delta(high, low, E18, round_up=True) == (
        amount0_delta(high, low, E18, round_up=False) + 1
    )
    # "sqrtP * sqrtQ overflows": the fallback branch of getNextSqrtPriceFromAmount0RoundingUp.
    sqrt_p = 1025574284609383690408304870162715216695788925244
    big_l = 50015962439936049619261659728067971248
    sqrt_q = next_sqrt_price_from_input(sqrt_p, big_l, 406, zero_for_one=True)
    assert sqrt_q == 1025574284609383582644711336373707553698163132913
    assert amount0_delta(sqrt_p, sqrt_q, big_l, round_up=True) == 406


@pytest.mark.parametrize(
    ("current", "target", "liquidity", "remaining", "fee", "expected"),
    [  # SwapMath.spec.ts: (sqrtQ, amountIn, amountOut, feeAmount); None = "not the target"
        (Q96, encode_price_sqrt(101, 100), 2 * E18, E18, 600,
         ("target", 9975124224178055, 9925619580021728, 5988667735148)),
        (Q96, encode_price_sqrt(101, 100), 2 * E18, -E18, 600,
         ("target", 9975124224178055, 9925619580021728, 5988667735148)),
        (Q96, encode_price_sqrt(1000, 100), 2 * E18, E18, 600,
         (None, 999400000000000000, 666399946655997866, 600000000000000)),
        (Q96, encode_price_sqrt(10000, 100), 2 * E18, -E18, 600,
         (None, 2000000000000000000, E18, 1200720432259356)),
        (417332158212080721273783715441582, 1452870262520218020823638996,
         159344665391607089467575320103, -1, 1,
         (417332158212080721273783715441581, 1, 1, 1)),
        (2, 1, 1, 3915081100057732413702495386755767, 1,
         (1, 39614081257132168796771975168, 0, 39614120871253040049813)),
        (2413, 79887613182836312, 1985041575832132834610021537970, 10, 1872, (2413, 0, 0, 10)),
        (2**104, 2**104 * 11 // 10, 1024, -4, 3000, ("target", 26215, 0, 79)),
        (2**104, 2**104 * 9 // 10, 1024, -263000, 3000, ("target", 1, 26214, 1)),
    ],
)  # fmt: skip
def test_compute_swap_step_spec_vectors(
    current: int, target: int, liquidity: int, remaining: int, fee: int, expected: tuple
) -> None:
    step = compute_swap_step(current, target, liquidity, remaining, fee)
    price, amount_in, amount_out, fee_amount = expected
    assert (step.amount_in, step.amount_out, step.fee_amount) == (amount_in, amount_out, fee_amount)
    if price == "target":
        assert step.sqrt_price_next_x96 == target
    elif price is None:  # stopped short of the target, at the price the whole input reaches
        assert step.sqrt_price_next_x96 != target
        if remaining > 0:
            less_fee = remaining - fee_amount
            assert step.sqrt_price_next_x96 == next_sqrt_price_from_input(
                current, liquidity, less_fee, zero_for_one=current >= target
            )
    else:
        assert step.sqrt_price_next_x96 == price
    if remaining > 0:
        assert step.amount_in + step.fee_amount <= remaining
    else:
        assert step.amount_out <= -remaining


def test_liquidity_amounts_spec_vectors() -> None:
    # LiquidityAmounts.spec.ts (v3-periphery), range 100/110 .. 110/100, amounts 100 / 200.
    lower, upper = encode_price_sqrt(100, 110), encode_price_sqrt(110, 100)
    below, above = encode_price_sqrt(99, 110), encode_price_sqrt(111, 100)
    cases = [(Q96, 2148, (99, 99)), (below, 1048, (99, 0)), (above, 2097, (0, 199))]
    for price, liquidity, amounts in [*cases, (lower, 1048, (99, 0)), (upper, 2097, (0, 199))]:
        assert liquidity_for_amounts(price, lower, upper, 100, 200) == liquidity
        assert amounts_for_liquidity(price, lower, upper, liquidity) == amounts


# --- TickBitmap and PoolTicksCounter, against literal 256-bit-word references ----------------


def bitmap_words(ticks: list[int], spacing: int) -> dict[int, int]:
    words: dict[int, int] = {}
    for tick in ticks:
        compressed = tick // spacing
        words[compressed >> 8] = words.get(compressed >> 8, 0) | (1 << (compressed % 256))
    return words


def solidity_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def reference_next_tick(words: dict[int, int], tick: int, spacing: int, lte: bool) -> tuple:
    """TickBitmap.nextInitializedTickWithinOneWord, bit for bit."""
    compressed = solidity_div(tick, spacing)
    if tick < 0 and tick % spacing != 0:
        compressed -= 1
    if lte:
        word, bit = compressed >> 8, compressed % 256
        masked = words.get(word, 0) & ((1 << bit) - 1 + (1 << bit))
        if masked:
            return (compressed - (bit - (masked.bit_length() - 1))) * spacing, True
        return (compressed - bit) * spacing, False
    word, bit = (compressed + 1) >> 8, (compressed + 1) % 256
    masked = words.get(word, 0) & (~((1 << bit) - 1) & MAX_UINT256)
    if masked:
        lsb = (masked & -masked).bit_length() - 1
        return (compressed + 1 + (lsb - bit)) * spacing, True
    return (compressed + 1 + (255 - bit)) * spacing, False


def reference_ticks_crossed(words: dict[int, int], spacing: int, before: int, after: int) -> int:
    """PoolTicksCounter.countInitializedTicksCrossed (v3-periphery 1.4.4), mask for mask."""
    c_before, c_after = solidity_div(before, spacing), solidity_div(after, spacing)
    w_before, b_before = c_before >> 8, c_before % 256
    w_after, b_after = c_after >> 8, c_after % 256
    after_init = bool(words.get(w_after, 0) & (1 << b_after)) and after % spacing == 0
    before_init = bool(words.get(w_before, 0) & (1 << b_before)) and before % spacing == 0
    after_init, before_init = after_init and before > after, before_init and before < after
    (w_low, b_low), (w_high, b_high) = sorted([(w_before, b_before), (w_after, b_after)])
    mask, count = (MAX_UINT256 << b_low) & MAX_UINT256, 0
    while w_low <= w_high:
        if w_low == w_high:
            mask &= MAX_UINT256 >> (255 - b_high)
        count += bin(words.get(w_low, 0) & mask).count("1")
        w_low, mask = w_low + 1, MAX_UINT256
    return count - after_init - before_init


@given(
    st.sampled_from([1, 10, 60, 200]),
    st.lists(st.integers(-1500, 1500), max_size=25, unique=True),
    st.integers(-1600, 1600),
    st.integers(0, 199),
    st.booleans(),
)
@settings(max_examples=400)
def test_next_initialized_tick_matches_the_bitmap(
    spacing: int, compressed: list[int], base: int, offset: int, lte: bool
) -> None:
    ticks = sorted(c * spacing for c in compressed)
    tick = base * spacing + offset % spacing  # ticks off the spacing grid too
    expected = reference_next_tick(bitmap_words(ticks, spacing), tick, spacing, lte)
    assert next_initialized_tick_within_one_word(ticks, tick, spacing, lte=lte) == expected


@given(
    st.sampled_from([1, 10, 60]),
    st.lists(st.integers(-700, 700), max_size=25, unique=True),
    st.integers(-800 * 60, 800 * 60),
    st.integers(-800 * 60, 800 * 60),
)
@settings(max_examples=300)
def test_quoter_tick_count_matches_pool_ticks_counter(
    spacing: int, compressed: list[int], before: int, after: int
) -> None:
    ticks = [c * spacing for c in compressed]
    pool = V3PoolState(
        Q96, 0, 0, 3000, spacing, ticks={t: uniswap_v3.TickInfo(1, 0) for t in ticks}
    )
    expected = reference_ticks_crossed(bitmap_words(ticks, spacing), spacing, before, after)
    assert pool.count_initialized_ticks_crossed(before, after) == expected


# --- The pool against the UniswapV3Pool.swaps.spec.ts snapshot --------------------------------

FULL = 2 * E18
SNAPSHOT_POOLS: dict[str, tuple[int, int, int, list[tuple[int, int, int]]]] = {
    # The spec's pools, by short name: fee pips, tick spacing, start price, (lower, upper, L).
    "low fee 1:1": (500, 10, Q96, [(-887270, 887270, FULL)]),  # 2e18 max range liquidity
    "medium fee 1:1": (3000, 60, Q96, [(-887220, 887220, FULL)]),
    "high fee 1:1": (10000, 200, Q96, [(-887200, 887200, FULL)]),
    "medium fee 10:1": (3000, 60, encode_price_sqrt(10, 1), [(-887220, 887220, FULL)]),
    "0 liquidity around price": (3000, 60, Q96, [(-887220, -60, FULL), (60, 887220, FULL)]),
    "additional liquidity around price": (
        3000, 60, Q96, [(-887220, 887220, FULL), (-887220, -60, FULL), (60, 887220, FULL)]
    ),
    "close to max price": (3000, 60, encode_price_sqrt(2**127, 1), [(-887220, 887220, FULL)]),
    "at the max ratio": (3000, 60, MAX_SQRT_RATIO - 1, [(-887220, 887220, FULL)]),
    "at the min ratio": (3000, 60, MIN_SQRT_RATIO, [(-887220, 887220, FULL)]),
}  # fmt: skip

SNAPSHOT_BALANCES = {  # amount0Before, amount1Before: what the mints cost
    "low fee 1:1": (FULL, FULL),
    "0 liquidity around price": (1994009290088178439, 1994009290088178439),
    "additional liquidity around price": (3994009290088178439, 3994009290088178439),
    "close to max price": (1, 26087635650665564424699143612505016738),
    "at the max ratio": (0, 36796311329002736532545403775337522448),
    "at the min ratio": (36796311322104302062438284732106019258, 0),
}

P25, P52 = encode_price_sqrt(2, 5), encode_price_sqrt(5, 2)
# (pool, how, amount or price limit, amount0, amount1, fee growth 0, fee growth 1, tick after)
SNAPSHOT_SWAPS = [
    ("low fee 1:1", "exact0For1", E18, E18, -666444407401233536,
     85070591730234956148210572796405514, 0, -8107),
    ("low fee 1:1", "exact0For1", 1000, 1000, -998, 170141183460469231731, 0, -1),
    ("medium fee 1:1", "exact0For1", E18, E18, -665331998665331998,
     510423550381407695195061911147652317, 0, -8090),
    ("medium fee 1:1", "exact1For0", E18, -665331998665331998, E18,
     0, 510423550381407695195061911147652317, 8089),
    ("medium fee 1:1", "0ForExact1", E18, 2006018054162487463, -E18,
     1023918857334819954209013958517557896, 0, -13864),
    ("medium fee 1:1", "toLower", P25, 1165774985123750584, -735088935932648267,
     595039006852697554786973994761078087, 0, -9164),
    ("high fee 1:1", "exact0For1", E18, E18, -662207357859531772,
     1701411834604692317316873037158841057, 0, -8043),
    ("high fee 1:1", "1ForExact0", E18, -E18, 2020202020202020203,
     0, 3437195625464025050172418213103875650, 13863),
    ("high fee 1:1", "0ForExact1", 1000, 1012, -1000, 1871553018065161549048, 0, -1),
    ("high fee 1:1", "toHigher", P52, -735088935932648267, 1174017838553918518,
     0, 1997487844552658120479227965844634309, 9163),
    ("medium fee 10:1", "exact0For1", E18, E18, -3869747612262812754,
     510423550381407865336245371616884048, 0, 4098),
    ("medium fee 10:1", "exact1For0", E18, -86123526743846551, E18,
     0, 510423550381407695195061911147652317, 25954),
    ("medium fee 10:1", "toLower", P25, 2537434431428990438, -5059644256269406930,
     1295166291350014007196790362622908786, 0, -9164),
    ("0 liquidity around price", "exact0For1", 1000, 1000, -991, 510423550381407695195, 0, -61),
    ("0 liquidity around price", "exact0For1", E18, E18, -662011820624678025,
     510423550381407695195061911147652317, 0, -8130),
    ("0 liquidity around price", "0ForExact1", 1000, 1011, -1000, 680564733841876926926, 0, -61),
    ("0 liquidity around price", "1ForExact0", E18, -E18, 2024171064311638316,
     0, 1033184581225259164735720748018047287, 13983),
    ("0 liquidity around price", "toLower", P25, 1159748196632793863, -729098226020826705,
     591962792073745646583043420635066071, 0, -9164),
    ("additional liquidity around price", "exact0For1", E18, E18, -795933705287758544,
     256749882580179971840679703106063897, 0, -4476),
    ("additional liquidity around price", "0ForExact1", E18, 1342022152495072924, -E18,
     344037963272993171369654596359692757, 0, -5794),
    ("additional liquidity around price", "1ForExact0", 1000, -1000, 1005,
     0, 680564733841876926926, 0),
    ("additional liquidity around price", "toHigher", P52, -1464187161953474971,
     2325523181756544449, 0, 595039006852697724928157455230309818, 9163),
    ("close to max price", "exact0For1", E18, E18, -26087635650665564420687107504180041533,
     510423550381413479995299567101531162, 0, 13923),
    ("close to max price", "1ForExact0", 1000, 0, 10740898373457544742072477595619363803,
     0, 5482407482066087054477299856254072312542046383926535301, 887271),
    ("at the max ratio", "exact0For1", 1000, 1000, -36792225529204286454178948640580261338,
     2381976568446569244235, 0, 705098),
    ("at the max ratio", "0ForExact1", 1000, 2, -1000, 170141183460469231731, 0, 887219),
    ("at the max ratio", "toLower", P25, 3171793039286238109,
     -36796311329002736531280492711270170687, 1618957864187523123655042148763283097, 0, -9164),
    ("at the min ratio", "exact1For0", E18, -36796311322104302058426248623781044040, E18,
     0, 510423550381413820277666488039994629, -13924),
    ("at the min ratio", "1ForExact0", 1000, -1000, 2, 0, 170141183460469231731, -887220),
]  # fmt: skip

SNAPSHOT_SPL = [  # cases the snapshot records as "revert SPL"
    ("medium fee 1:1", "toLower", P52),
    ("medium fee 1:1", "toHigher", P25),
    ("medium fee 10:1", "toHigher", P52),
    ("at the max ratio", "exact1For0", 1000),
    ("at the min ratio", "exact0For1", 1000),
]


def snapshot_pool(name: str) -> V3PoolState:
    fee, spacing, price, positions = SNAPSHOT_POOLS[name]
    pool = V3PoolState.initialize(price, fee_pips=fee, tick_spacing=spacing)
    paid = [pool.mint(lower, upper, liquidity) for lower, upper, liquidity in positions]
    if name in SNAPSHOT_BALANCES:  # the snapshot's pool balances before the swap
        assert (sum(p[0] for p in paid), sum(p[1] for p in paid)) == SNAPSHOT_BALANCES[name]
    return pool


def snapshot_swap(pool: V3PoolState, how: str, value: int) -> uniswap_v3.V3SwapResult:
    """The v3-core test callee's swap helpers."""
    low, high = MIN_SQRT_RATIO + 1, MAX_SQRT_RATIO - 1
    args = {
        "exact0For1": (True, value, low),
        "exact1For0": (False, value, high),
        "0ForExact1": (True, -value, low),
        "1ForExact0": (False, -value, high),
        "toLower": (True, MAX_INT256, value),
        "toHigher": (False, MAX_INT256, value),
    }[how]
    return pool.swap(*args)


@pytest.mark.parametrize("case", SNAPSHOT_SWAPS, ids=lambda case: f"{case[0]}-{case[1]}")
def test_swap_matches_snapshot(case: tuple[str, str, int, int, int, int, int, int]) -> None:
    name, how, value, amount0, amount1, growth0, growth1, tick_after = case
    pool = snapshot_pool(name)
    before = copy.deepcopy(pool)
    result = snapshot_swap(pool, how, value)
    assert (result.amount0, result.amount1, result.tick_after) == (amount0, amount1, tick_after)
    assert (pool.fee_growth_global0_x128, pool.fee_growth_global1_x128) == (growth0, growth1)
    assert (pool.sqrt_price_x96, pool.tick) == (result.sqrt_price_x96_after, tick_after)
    # QuoterV2 on the untouched pool gives the same numbers and leaves it as it was; it
    # refuses an exact output that is only partly filled, so those are left out.
    zero_for_one = how in ("exact0For1", "0ForExact1")
    if how.startswith("exact"):
        quote = before.quote_exact_input_single(zero_for_one, value)
        assert quote.amount == -(amount1 if zero_for_one else amount0)
    elif value == -(amount1 if zero_for_one else amount0):
        quote = before.quote_exact_output_single(zero_for_one, value)
        assert quote.amount == (amount0 if zero_for_one else amount1)
    else:
        return
    assert quote.sqrt_price_x96_after == result.sqrt_price_x96_after
    assert before == snapshot_pool(name)


@pytest.mark.parametrize(("name", "how", "value"), SNAPSHOT_SPL)
def test_swap_price_limit_reverts_and_leaves_the_pool(name: str, how: str, value: int) -> None:
    pool = snapshot_pool(name)
    with pytest.raises(SolidityRevert, match=r"^SPL:"):
        snapshot_swap(pool, how, value)
    assert pool == snapshot_pool(name)


def test_swap_steps_stop_at_uninitialised_word_boundaries() -> None:
    # Low fee, spacing 10: a word is 2560 ticks, so a swap from 0 to -8107 ends steps on the
    # uninitialised word ends 0, -2560, -5120, -7680 and aims its last at -10240. The
    # snapshot amounts above are only reached with these extra steps.
    result = snapshot_swap(snapshot_pool("low fee 1:1"), "exact0For1", E18)
    boundaries = [s.tick_next for s in result.steps if not s.initialized]
    assert boundaries == [0, -2560, -5120, -7680, -10240]
    assert result.steps[-1].sqrt_price_end_x96 == result.sqrt_price_x96_after
    assert result.ticks_crossed == 0


# --- Pool properties on random positions and swaps --------------------------------------------

Position = tuple[str, int, int, int]  # owner, tick_lower, tick_upper, liquidity
Drawn = tuple[V3PoolState, list[Position], tuple[int, int]]  # pool, positions, mint costs


@st.composite
def random_pools(draw: st.DrawFn) -> Drawn:
    """A pool at a random price with a few positions around it; also what the mints cost."""
    fee, spacing = draw(st.sampled_from([(100, 1), (500, 10), (3000, 60), (10000, 200)]))
    tick0 = draw(st.integers(-60_000, 60_000))
    low, high = sqrt_price_x96_at_tick(tick0), sqrt_price_x96_at_tick(tick0 + 1)
    price = low + (high - low) * draw(st.integers(0, 999)) // 1000
    pool = V3PoolState.initialize(price, fee_pips=fee, tick_spacing=spacing)
    max_t = MAX_TICK // spacing * spacing
    positions: list[Position] = []
    if draw(st.booleans()):
        positions.append(("full", -max_t, max_t, draw(st.integers(10**9, 10**22))))
    centre = pool.tick // spacing
    for i in range(draw(st.integers(1, 5))):
        lower = (centre + draw(st.integers(-400, 400))) * spacing
        upper = lower + draw(st.integers(1, 400)) * spacing
        positions.append((f"lp{i}", lower, upper, draw(st.integers(10**6, 10**22))))
    cost0 = cost1 = 0
    for owner, lower, upper, liquidity in positions:
        amount0, amount1 = pool.mint(lower, upper, liquidity, owner=owner)
        cost0, cost1 = cost0 + amount0, cost1 + amount1
    return pool, positions, (cost0, cost1)


def limit_for(zero_for_one: bool) -> int:
    return MIN_SQRT_RATIO + 1 if zero_for_one else MAX_SQRT_RATIO - 1


@given(random_pools(), st.booleans(), st.integers(1, 10**21), st.booleans())
@POOL_SETTINGS
def test_swap_steps_add_up_and_active_liquidity_follows_the_ticks(
    drawn: Drawn, zero_for_one: bool, amount: int, exact_input: bool
) -> None:
    pool, positions, _ = drawn
    result = pool.swap(zero_for_one, amount if exact_input else -amount, limit_for(zero_for_one))
    paid = sum(step.amount_in + step.fee_amount for step in result.steps)
    received = sum(step.amount_out for step in result.steps)
    expected = (paid, -received) if zero_for_one else (-received, paid)
    assert (result.amount0, result.amount1) == expected
    assert (paid if exact_input else received) <= amount
    for before, after in zip(result.steps, result.steps[1:], strict=False):
        assert after.sqrt_price_start_x96 == before.sqrt_price_end_x96
    crossings = [
        s for s in result.steps if s.initialized and s.sqrt_price_end_x96 == s.sqrt_price_next_x96
    ]
    assert result.ticks_crossed == len(crossings)
    # After the crossings, the active liquidity is that of the positions holding the tick.
    assert pool.liquidity == sum(liq for _, lo, hi, liq in positions if lo <= pool.tick < hi)
    assert tick_at_sqrt_price_x96(pool.sqrt_price_x96) in (pool.tick, pool.tick + 1)


@given(random_pools(), st.booleans(), st.integers(1, 10**21))
@POOL_SETTINGS
def test_exact_input_then_the_same_output_exactly(
    drawn: Drawn, zero_for_one: bool, amount: int
) -> None:
    pool, _, _ = drawn
    limit = limit_for(zero_for_one)
    quote = pool.quote_exact_input_single(zero_for_one, amount) if pool.liquidity else None
    forward = pool.copy().swap(zero_for_one, amount, limit)
    out = -(forward.amount1 if zero_for_one else forward.amount0)
    if quote is not None and out > 0:
        assert (quote.amount, quote.sqrt_price_x96_after) == (out, forward.sqrt_price_x96_after)
    assume(out > 0)
    backward = pool.copy().swap(zero_for_one, -out, limit)
    assert -(backward.amount1 if zero_for_one else backward.amount0) == out
    # What `amount` bought costs no more than `amount`, up to the rounding of each step: the
    # exact-output price rounds past the target, by up to a wei of output at the final price.
    price = Fraction(backward.sqrt_price_x96_after**2, Q96 * Q96)
    wei_of_output = 1 / price if zero_for_one else price
    slack = (len(backward.steps) + 1) * (wei_of_output + 1)
    assert (backward.amount0 if zero_for_one else backward.amount1) <= amount + slack


@given(
    st.integers(-50_000, 50_000),
    st.integers(0, 999),
    st.integers(10**10, 10**27),
    st.sampled_from([100, 500, 3000, 10000]),
    st.booleans(),
    st.integers(1, 10**6),
)
@settings(max_examples=200, deadline=None)
def test_swap_in_one_range_is_the_constant_product_on_virtual_reserves(
    tick0: int, offset: int, liquidity: int, fee: int, zero_for_one: bool, ppm: int
) -> None:
    low, high = sqrt_price_x96_at_tick(tick0), sqrt_price_x96_at_tick(tick0 + 1)
    price = low + (high - low) * offset // 1000
    pool = V3PoolState.initialize(price, fee_pips=fee, tick_spacing=60)
    pool.mint(-887220, 887220, liquidity)
    reserve0, reserve1 = Fraction(liquidity * Q96, price), Fraction(liquidity * price, Q96)
    amount = max(1, int((reserve0 if zero_for_one else reserve1) * ppm / 10**6))
    result = pool.swap(zero_for_one, amount, limit_for(zero_for_one))
    net = Fraction(amount * (10**6 - fee), 10**6)
    k = liquidity * liquidity  # x * y = L**2 on the virtual reserves
    if zero_for_one:
        out, exact = -result.amount1, reserve1 - k / (reserve0 + net)
    else:
        out, exact = -result.amount0, reserve0 - k / (reserve1 + net)
    # Each step rounds against the trader: its price by < 1 unit of Q96 (L / 2**96 of token1),
    # its fee up and its input less fee down (a wei of input each, worth the price), its output.
    p = Fraction(price * price, Q96 * Q96)
    per_step = liquidity / Fraction(Q96) * (1 + 1 / p) + 2 * (p + 1 / p) + 3
    assert out <= exact
    assert exact - out <= per_step * len(result.steps)


@given(
    random_pools(),
    st.lists(st.tuples(st.booleans(), st.integers(1, 10**21), st.booleans()), max_size=6),
    st.sampled_from([0, 4, 10]),
)
@POOL_SETTINGS
def test_pool_stays_solvent_and_pays_no_more_fees_than_it_took(
    drawn: Drawn, swaps: list[tuple[bool, int, bool]], protocol: int
) -> None:
    pool, positions, (balance0, balance1) = drawn
    pool.fee_protocol = protocol + (protocol << 4)
    fees, protocol_fees = [0, 0], [0, 0]
    for zero_for_one, amount, exact_input in swaps:
        signed = amount if exact_input else -amount
        try:
            result = pool.swap(zero_for_one, signed, limit_for(zero_for_one))
        except SolidityRevert as error:  # already at the price limit
            assert error.reason == "SPL"
            continue
        balance0, balance1 = balance0 + result.amount0, balance1 + result.amount1
        side = 0 if zero_for_one else 1
        fees[side] += sum(step.fee_amount for step in result.steps)
        if protocol:
            protocol_fees[side] += sum(step.fee_amount // protocol for step in result.steps)
    assert [pool.protocol_fees_token0, pool.protocol_fees_token1] == protocol_fees
    lp_fees = [0, 0]
    for owner, lower, upper, liquidity in positions:
        owed = pool.position_fees_owed(lower, upper, owner=owner)
        pool.burn(lower, upper, 0, owner=owner)  # the poke moves fees into tokens owed
        assert pool.collect(lower, upper, owner=owner) == owed
        lp_fees = [lp_fees[0] + owed[0], lp_fees[1] + owed[1]]
        principal = pool.burn(lower, upper, liquidity, owner=owner)
        assert pool.collect(lower, upper, owner=owner) == principal
        balance0, balance1 = balance0 - owed[0] - principal[0], balance1 - owed[1] - principal[1]
    assert balance0 >= pool.protocol_fees_token0 and balance1 >= pool.protocol_fees_token1
    assert lp_fees[0] + protocol_fees[0] <= fees[0] and lp_fees[1] + protocol_fees[1] <= fees[1]
    assert pool.liquidity == 0 and pool.ticks == {}


@given(st.lists(st.tuples(st.booleans(), st.integers(10**9, 10**17)), min_size=1, max_size=8))
@settings(max_examples=100, deadline=None)
def test_a_lone_lp_collects_every_fee_but_rounding(swaps: list[tuple[bool, int]]) -> None:
    pool = V3PoolState.initialize(Q96, fee_pips=3000, tick_spacing=60)
    pool.mint(-887220, 887220, 10**20, owner="lp")
    fees, steps = [0, 0], [0, 0]
    for zero_for_one, amount in swaps:
        result = pool.swap(zero_for_one, amount, limit_for(zero_for_one))
        fees[0 if zero_for_one else 1] += sum(s.fee_amount for s in result.steps)
        steps[0 if zero_for_one else 1] += len(result.steps)
    pool.burn(-887220, 887220, 0, owner="lp")
    collected = pool.collect(-887220, 887220, owner="lp")
    for side in (0, 1):
        # Fee growth floors per step (< L / 2**128 wei each) and the owed amount floors once.
        assert fees[side] - 1 - steps[side] <= collected[side] <= fees[side]


# --- Reverts are the contract's, and leave the pool as it was ---------------------------------


def test_pool_reverts_carry_the_contract_reason_and_change_nothing() -> None:
    pool = V3PoolState.initialize(Q96, fee_pips=3000, tick_spacing=60)
    pool.mint(-600, 600, 10**18, owner="a")
    cap = max_liquidity_per_tick(60)
    assert cap == pool.max_liquidity_per_tick == 11505743598341114571880798222544994
    cases = [
        (lambda: pool.mint(600, -600, 1), "TLU"),
        (lambda: pool.mint(MIN_TICK - 60, 0, 1), "TLM"),
        (lambda: pool.mint(0, MAX_TICK + 1, 1), "TUM"),
        (lambda: pool.mint(-600, 660, cap), "LO"),  # -600 already holds 1e18
        (lambda: pool.mint(-600, 61, 1), ""),  # flipTick: 61 is off the spacing grid
        (lambda: pool.mint(-600, 600, 0), ""),
        (lambda: pool.burn(-600, 600, 10**18 + 1, owner="a"), "LS"),
        (lambda: pool.burn(-600, 600, 1, owner="b"), "LS"),
        (lambda: pool.burn(-60, 60, 0, owner="a"), "NP"),
        (lambda: pool.swap(True, 0, MIN_SQRT_RATIO + 1), "AS"),
        (lambda: pool.swap(True, 1, Q96), "SPL"),
        (lambda: pool.swap(False, 1, MAX_SQRT_RATIO), "SPL"),
        (lambda: pool.quote_exact_output_single(True, 10**30), "Unexpected error"),
    ]
    untouched = copy.deepcopy(pool)
    for call, reason in cases:
        with pytest.raises(SolidityRevert) as raised:
            call()
        assert raised.value.reason == reason
        assert pool == untouched
    # A swap that only moves through empty ticks pays nothing; QuoterV2 refuses it.
    empty = V3PoolState.initialize(Q96, fee_pips=3000, tick_spacing=60)
    with pytest.raises(SolidityRevert, match="Unexpected error"):
        empty.quote_exact_input_single(True, 1000)
    assert empty.swap(True, 1000, encode_price_sqrt(1, 2)).amount0 == 0


def test_burn_clears_ticks_and_position_keeps_its_fees() -> None:
    pool = V3PoolState.initialize(Q96, fee_pips=3000, tick_spacing=60)
    pool.mint(-120, 120, 10**18, owner="a")
    pool.mint(-120, 60, 10**18, owner="b")
    pool.swap(False, 7 * 10**15, MAX_SQRT_RATIO - 1)  # up through tick 60: b leaves the range
    assert 60 <= pool.tick < 120 and pool.liquidity == 10**18
    owed_b = pool.position_fees_owed(-120, 60, owner="b")
    assert owed_b[1] > 0 and owed_b[0] == 0
    released = pool.burn(-120, 60, 10**18, owner="b")
    assert sorted(pool.ticks) == [-120, 120]  # 60 cleared, -120 still held by a
    assert pool.ticks[-120].liquidity_gross == 10**18
    assert pool.collect(-120, 60, owner="b", amount1_requested=1) == (0, 1)
    rest = pool.collect(-120, 60, owner="b")
    assert rest == (released[0] + owed_b[0], released[1] + owed_b[1] - 1)
