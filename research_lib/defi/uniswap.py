"""Exact integer ports of the Uniswap V2 and V3 maths: same results as the contracts, to the wei.

Every function is a line-by-line port on Python ints, with the contract's rounding direction,
its bounds (uint128/uint160/uint256, int24 ticks) and its ``require`` checks, which raise
``SolidityRevert`` (a ``ValueError``) carrying the contract's reason string ("" for a bare
``require``). Float paths for sweeps belong in ``kernels.amm``; these answer "what would the
contract return", and the chain tests compare them with the deployed contracts.

Which Solidity each port mirrors (v2-periphery 1.1.0-beta.0, v3-core 1.0.1, v3-periphery 1.4.4):

=========================================  =====================================================
``uniswap_v2_amount_out``                  UniswapV2Library.getAmountOut
``uniswap_v2_amount_in``                   UniswapV2Library.getAmountIn
``uniswap_v2_amounts_out``                 UniswapV2Library.getAmountsOut (router getAmountsOut)
``uniswap_v2_amounts_in``                  UniswapV2Library.getAmountsIn (router getAmountsIn)
``mul_div``                                FullMath.mulDiv
``mul_div_rounding_up``                    FullMath.mulDivRoundingUp
``div_rounding_up``                        UnsafeMath.divRoundingUp
``add_liquidity_delta``                    LiquidityMath.addDelta
``sqrt_price_x96_at_tick``                 TickMath.getSqrtRatioAtTick
``tick_at_sqrt_price_x96``                 TickMath.getTickAtSqrtRatio
``next_sqrt_price_from_amount0``           SqrtPriceMath.getNextSqrtPriceFromAmount0RoundingUp
``next_sqrt_price_from_amount1``           SqrtPriceMath.getNextSqrtPriceFromAmount1RoundingDown
``next_sqrt_price_from_input``             SqrtPriceMath.getNextSqrtPriceFromInput
``next_sqrt_price_from_output``            SqrtPriceMath.getNextSqrtPriceFromOutput
``amount0_delta``                          SqrtPriceMath.getAmount0Delta (uint128, bool roundUp)
``amount1_delta``                          SqrtPriceMath.getAmount1Delta (uint128, bool roundUp)
``compute_swap_step``                      SwapMath.computeSwapStep
``max_liquidity_per_tick``                 Tick.tickSpacingToMaxLiquidityPerTick
``next_initialized_tick_within_one_word``  TickBitmap.nextInitializedTickWithinOneWord
=========================================  =====================================================

The pool itself (ticks, positions, fee growth, the swap loop, QuoterV2) and the periphery's
``LiquidityAmounts`` are in ``research_lib.defi.uniswap_v3``.

Examples
--------
>>> uniswap_v2_amount_out(10**18, 100 * 10**18, 200_000 * 10**9)
1974316068794
>>> sqrt_price_x96_at_tick(0) == 2**96, tick_at_sqrt_price_x96(2**96)
(True, 0)
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import NamedTuple

MAX_UINT128 = 2**128 - 1
MAX_UINT160 = 2**160 - 1
MAX_UINT256 = 2**256 - 1
Q96 = 2**96  # FixedPoint96.Q96
Q128 = 2**128  # FixedPoint128.Q128
MIN_TICK = -887272  # TickMath.MIN_TICK
MAX_TICK = 887272  # TickMath.MAX_TICK
MIN_SQRT_RATIO = 4295128739  # TickMath.MIN_SQRT_RATIO == getSqrtRatioAtTick(MIN_TICK)
MAX_SQRT_RATIO = 1461446703485210103287273052203988822378723970342  # getSqrtRatioAtTick(MAX_TICK)


class SolidityRevert(ValueError):
    """A ``require`` of the ported contract failed.

    ``reason`` is the contract's revert string ("" for a bare ``require``), so a model's
    failure can be compared with the chain's revert; the message adds the values involved.
    """

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        super().__init__(f"{reason or 'require'}: {detail}")


def _uint(name: str, value: int, bits: int) -> int:
    # Solidity cannot receive an out-of-range uint; Python can, so refuse it at the boundary.
    if not isinstance(value, int) or value < 0 or value >> bits:
        raise ValueError(f"{name}={value!r} must be an int in [0, 2**{bits}); pass a uint{bits}")
    return value


def _int(name: str, value: int, bits: int) -> int:
    half = 1 << (bits - 1)
    if not isinstance(value, int) or not -half <= value < half:
        raise ValueError(f"{name}={value!r} must be an int in [-2**{bits - 1}, 2**{bits - 1})")
    return value


# --- Uniswap V2: UniswapV2Library ---


def _v2_checked_mul(x: int, y: int) -> int:
    # SafeMath.mul: the library's products are uint256 and revert rather than wrap.
    z = x * y
    if z > MAX_UINT256:
        raise SolidityRevert("ds-math-mul-overflow", f"{x} * {y} overflows uint256")
    return z


def _v2_fee_factor(fee_bps: int) -> int:
    if not isinstance(fee_bps, int) or not 0 <= fee_bps < 10_000:
        raise ValueError(f"fee_bps={fee_bps!r} must be an int in [0, 10000); Uniswap V2 is 30")
    return 10_000 - fee_bps


def uniswap_v2_amount_out(
    amount_in: int, reserve_in: int, reserve_out: int, *, fee_bps: int = 30
) -> int:
    """Output of a V2 swap of exactly ``amount_in``: ``UniswapV2Library.getAmountOut``.

    ``floor(a*(1-f)*R_out / (R_in + a*(1-f)))`` on raw units (wei), rounded down. With
    ``fee_bps=30`` the contract's 997/1000 becomes 9970/10000, the same fraction, so the floor
    is identical to the wei; other fees serve V2 forks.

    Examples
    --------
    >>> uniswap_v2_amount_out(2, 100, 100)
    1
    """
    _uint("amount_in", amount_in, 256)
    _uint("reserve_in", reserve_in, 256)
    _uint("reserve_out", reserve_out, 256)
    keep = _v2_fee_factor(fee_bps)
    if amount_in == 0:
        raise SolidityRevert("UniswapV2Library: INSUFFICIENT_INPUT_AMOUNT", "amount_in=0")
    if reserve_in == 0 or reserve_out == 0:
        raise SolidityRevert(
            "UniswapV2Library: INSUFFICIENT_LIQUIDITY",
            f"reserve_in={reserve_in}, reserve_out={reserve_out}; both must be > 0",
        )
    amount_in_with_fee = _v2_checked_mul(amount_in, keep)
    numerator = _v2_checked_mul(amount_in_with_fee, reserve_out)
    denominator = _v2_checked_mul(reserve_in, 10_000) + amount_in_with_fee
    if denominator > MAX_UINT256:
        raise SolidityRevert("ds-math-add-overflow", "reserve_in*10000 + amount_in_with_fee")
    return numerator // denominator


def uniswap_v2_amount_in(
    amount_out: int, reserve_in: int, reserve_out: int, *, fee_bps: int = 30
) -> int:
    """Input needed for exactly ``amount_out`` from a V2 pair: ``UniswapV2Library.getAmountIn``.

    ``floor(R_in*b / ((R_out - b)*(1-f))) + 1`` on raw units; the ``+ 1`` is the contract's,
    so the result can exceed the exact minimum by one wei. ``fee_bps`` as in
    ``uniswap_v2_amount_out``.

    Examples
    --------
    >>> uniswap_v2_amount_in(1, 100, 100)
    2
    """
    _uint("amount_out", amount_out, 256)
    _uint("reserve_in", reserve_in, 256)
    _uint("reserve_out", reserve_out, 256)
    keep = _v2_fee_factor(fee_bps)
    if amount_out == 0:
        raise SolidityRevert("UniswapV2Library: INSUFFICIENT_OUTPUT_AMOUNT", "amount_out=0")
    if reserve_in == 0 or reserve_out == 0:
        raise SolidityRevert(
            "UniswapV2Library: INSUFFICIENT_LIQUIDITY",
            f"reserve_in={reserve_in}, reserve_out={reserve_out}; both must be > 0",
        )
    if amount_out > reserve_out:
        raise SolidityRevert(
            "ds-math-sub-underflow", f"amount_out={amount_out} > reserve_out={reserve_out}"
        )
    numerator = _v2_checked_mul(_v2_checked_mul(reserve_in, amount_out), 10_000)
    denominator = _v2_checked_mul(reserve_out - amount_out, keep)
    if denominator == 0:
        # Solidity 0.6 division by zero is an invalid opcode: a revert with no reason.
        raise SolidityRevert("", f"amount_out={amount_out} equals reserve_out; division by 0")
    return numerator // denominator + 1


def uniswap_v2_amounts_out(
    amount_in: int, reserves_path: Sequence[tuple[int, int]], *, fee_bps: int = 30
) -> list[int]:
    """Amounts along a multi-hop V2 route, exact input: ``UniswapV2Library.getAmountsOut``.

    ``reserves_path`` holds ``(reserve_in, reserve_out)`` of each pair in swap order (a
    router ``path`` of ``n`` tokens has ``n - 1``). Returns the router's array:
    ``amounts[0] == amount_in`` and ``amounts[i + 1]`` is the output of hop ``i``.

    Examples
    --------
    >>> uniswap_v2_amounts_out(10_000, [(10**6, 2 * 10**6), (5 * 10**5, 10**6)])
    [10000, 19743, 37876]
    """
    if len(reserves_path) < 1:
        raise SolidityRevert("UniswapV2Library: INVALID_PATH", "reserves_path needs >= 1 pair")
    amounts = [amount_in]
    for reserve_in, reserve_out in reserves_path:
        amounts.append(uniswap_v2_amount_out(amounts[-1], reserve_in, reserve_out, fee_bps=fee_bps))
    return amounts


def uniswap_v2_amounts_in(
    amount_out: int, reserves_path: Sequence[tuple[int, int]], *, fee_bps: int = 30
) -> list[int]:
    """Amounts along a multi-hop V2 route, exact output: ``UniswapV2Library.getAmountsIn``.

    ``reserves_path`` as in ``uniswap_v2_amounts_out``. Returns the router's array, filled
    from the last hop backwards: ``amounts[-1] == amount_out`` and ``amounts[i]`` is the
    input hop ``i`` needs.

    Examples
    --------
    >>> uniswap_v2_amounts_in(37876, [(10**6, 2 * 10**6), (5 * 10**5, 10**6)])
    [10000, 19743, 37876]
    """
    if len(reserves_path) < 1:
        raise SolidityRevert("UniswapV2Library: INVALID_PATH", "reserves_path needs >= 1 pair")
    amounts = [0] * len(reserves_path) + [amount_out]
    for i in range(len(reserves_path), 0, -1):
        reserve_in, reserve_out = reserves_path[i - 1]
        amounts[i - 1] = uniswap_v2_amount_in(amounts[i], reserve_in, reserve_out, fee_bps=fee_bps)
    return amounts


# --- Uniswap V3: FullMath, UnsafeMath, LiquidityMath ---


def mul_div(a: int, b: int, denominator: int) -> int:
    """``floor(a * b / denominator)`` with a 512-bit product: ``FullMath.mulDiv``.

    Reverts (bare ``require``) when ``denominator == 0`` or the result exceeds uint256.

    Examples
    --------
    >>> mul_div(10**30, 10**30, 10**40)
    100000000000000000000
    """
    if denominator == 0:
        raise SolidityRevert("", "FullMath.mulDiv denominator == 0")
    result = a * b // denominator
    if result > MAX_UINT256:
        raise SolidityRevert("", "FullMath.mulDiv result >= 2**256")
    return result


def mul_div_rounding_up(a: int, b: int, denominator: int) -> int:
    """``ceil(a * b / denominator)`` with a 512-bit product: ``FullMath.mulDivRoundingUp``.

    Examples
    --------
    >>> mul_div_rounding_up(7, 3, 2)
    11
    """
    result = mul_div(a, b, denominator)
    if a * b % denominator:
        if result >= MAX_UINT256:
            raise SolidityRevert("", "FullMath.mulDivRoundingUp result + 1 >= 2**256")
        result += 1
    return result


def div_rounding_up(x: int, y: int) -> int:
    """``ceil(x / y)``, and ``0`` when ``y == 0`` as the EVM's ``div``: ``UnsafeMath``.

    Examples
    --------
    >>> div_rounding_up(7, 2), div_rounding_up(7, 0)
    (4, 0)
    """
    if y == 0:
        return 0  # EVM div/mod by zero return 0; the assembly does not check
    return x // y + (1 if x % y else 0)


def add_liquidity_delta(x: int, y: int) -> int:
    """``x + y`` for a uint128 liquidity and an int128 delta: ``LiquidityMath.addDelta``.

    Examples
    --------
    >>> add_liquidity_delta(10, -3)
    7
    """
    z = x + y
    if y < 0 and z < 0:
        raise SolidityRevert("LS", f"liquidity {x} minus {-y} underflows")
    if y >= 0 and z > MAX_UINT128:
        raise SolidityRevert("LA", f"liquidity {x} plus {y} overflows uint128")
    return z


# --- TickMath ---

# TickMath.getSqrtRatioAtTick: 2**128 / sqrt(1.0001) ** (2**i), for bit i of |tick|, i >= 1.
_TICK_RATIO_FACTORS = (
    (0x2, 0xFFF97272373D413259A46990580E213A),
    (0x4, 0xFFF2E50F5F656932EF12357CF3C7FDCC),
    (0x8, 0xFFE5CACA7E10E4E61C3624EAA0941CD0),
    (0x10, 0xFFCB9843D60F6159C9DB58835C926644),
    (0x20, 0xFF973B41FA98C081472E6896DFB254C0),
    (0x40, 0xFF2EA16466C96A3843EC78B326B52861),
    (0x80, 0xFE5DEE046A99A2A811C461F1969C3053),
    (0x100, 0xFCBE86C7900A88AEDCFFC83B479AA3A4),
    (0x200, 0xF987A7253AC413176F2B074CF7815E54),
    (0x400, 0xF3392B0822B70005940C7A398E4B70F3),
    (0x800, 0xE7159475A2C29B7443B29C7FA6E889D9),
    (0x1000, 0xD097F3BDFD2022B8845AD8F792AA5825),
    (0x2000, 0xA9F746462D870FDF8A65DC1F90E061E5),
    (0x4000, 0x70D869A156D2A1B890BB3DF62BAF32F7),
    (0x8000, 0x31BE135F97D08FD981231505542FCFA6),
    (0x10000, 0x9AA508B5B7A84E1C677DE54F3E99BC9),
    (0x20000, 0x5D6AF8DEDB81196699C329225EE604),
    (0x40000, 0x2216E584F5FA1EA926041BEDFE98),
    (0x80000, 0x48A170391F7DC42444E8FA2),
)


def sqrt_price_x96_at_tick(tick: int) -> int:
    """``sqrt(1.0001 ** tick) * 2**96``, rounded up: ``TickMath.getSqrtRatioAtTick``.

    Parameters
    ----------
    tick
        An int24 tick in ``[MIN_TICK, MAX_TICK]``.

    Returns
    -------
    int
        The Q64.96 sqrt price (uint160), rounded up so ``tick_at_sqrt_price_x96`` of it is
        ``tick`` again.

    Examples
    --------
    >>> sqrt_price_x96_at_tick(MIN_TICK), sqrt_price_x96_at_tick(-1)
    (4295128739, 79224201403219477170569942574)
    """
    if not isinstance(tick, int):
        raise ValueError(f"tick={tick!r} must be an int")
    abs_tick = -tick if tick < 0 else tick
    if abs_tick > MAX_TICK:
        raise SolidityRevert("T", f"|tick|={abs_tick} > MAX_TICK={MAX_TICK}")
    ratio = 0xFFFCB933BD6FAD37AA2D162D1A594001 if abs_tick & 0x1 else 1 << 128
    for bit, factor in _TICK_RATIO_FACTORS:
        if abs_tick & bit:
            ratio = (ratio * factor) >> 128
    if tick > 0:
        ratio = MAX_UINT256 // ratio
    # Q128.128 -> Q64.96, rounding up so getTickAtSqrtRatio of the result is consistent.
    return (ratio >> 32) + (1 if ratio % (1 << 32) else 0)


def tick_at_sqrt_price_x96(sqrt_price_x96: int) -> int:
    """Greatest tick whose sqrt price is <= ``sqrt_price_x96``: ``TickMath.getTickAtSqrtRatio``.

    Parameters
    ----------
    sqrt_price_x96
        A Q64.96 sqrt price in ``[MIN_SQRT_RATIO, MAX_SQRT_RATIO)``.

    Returns
    -------
    int
        The tick, computed with the contract's fixed-point log2 (14 fraction bits) and its
        final check against ``sqrt_price_x96_at_tick``.

    Examples
    --------
    >>> tick_at_sqrt_price_x96(MIN_SQRT_RATIO), tick_at_sqrt_price_x96(MAX_SQRT_RATIO - 1)
    (-887272, 887271)
    """
    _uint("sqrt_price_x96", sqrt_price_x96, 160)
    if not MIN_SQRT_RATIO <= sqrt_price_x96 < MAX_SQRT_RATIO:
        raise SolidityRevert(
            "R",
            f"sqrt_price_x96={sqrt_price_x96} outside [MIN_SQRT_RATIO, MAX_SQRT_RATIO)",
        )
    ratio = sqrt_price_x96 << 32
    # The assembly's eight shift-and-compare rounds compute exactly the most significant bit.
    msb = ratio.bit_length() - 1
    r = ratio >> (msb - 127) if msb >= 128 else ratio << (127 - msb)
    log_2 = (msb - 128) << 64
    for shift in range(63, 49, -1):
        r = (r * r) >> 127
        f = r >> 128
        log_2 |= f << shift  # Python's | on negatives is two's complement, as the EVM's or
        r >>= f
    log_sqrt10001 = log_2 * 255738958999603826347141  # Q128.128
    tick_low = (log_sqrt10001 - 3402992956809132418596140100660247210) >> 128
    tick_hi = (log_sqrt10001 + 291339464771989622907027621153398088495) >> 128
    if tick_low == tick_hi:
        return tick_low
    return tick_hi if sqrt_price_x96_at_tick(tick_hi) <= sqrt_price_x96 else tick_low


# --- Tick, TickBitmap ---


def _sdiv(a: int, b: int) -> int:
    # Solidity's signed division truncates toward zero; Python's // floors.
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def max_liquidity_per_tick(tick_spacing: int) -> int:
    """Most gross liquidity one tick may hold: ``Tick.tickSpacingToMaxLiquidityPerTick``.

    Examples
    --------
    >>> max_liquidity_per_tick(60)
    11505743598341114571880798222544994
    """
    min_tick = _sdiv(MIN_TICK, tick_spacing) * tick_spacing
    max_tick = _sdiv(MAX_TICK, tick_spacing) * tick_spacing
    num_ticks = (max_tick - min_tick) // tick_spacing + 1
    return MAX_UINT128 // num_ticks


def next_initialized_tick_within_one_word(
    initialized_ticks: list[int], tick: int, tick_spacing: int, *, lte: bool
) -> tuple[int, bool]:
    """Next initialised tick, searching one 256-spacing word: ``nextInitializedTickWithinOneWord``.

    Parameters
    ----------
    initialized_ticks
        Sorted initialised ticks (each a multiple of ``tick_spacing``); stands in for the bitmap.
    tick
        Starting tick.
    tick_spacing
        The pool's tick spacing.
    lte
        Search at or below ``tick`` (a zero-for-one swap) instead of strictly above it.

    Returns
    -------
    tuple[int, bool]
        The tick and whether it is initialised; when the word holds none, the word's last tick
        in the search direction, uninitialised, as the contract returns.

    Examples
    --------
    >>> next_initialized_tick_within_one_word([-600, 60], -1, 60, lte=True)
    (-600, True)
    >>> next_initialized_tick_within_one_word([-600, 60], 0, 60, lte=True)  # -600: word below
    (0, False)
    >>> next_initialized_tick_within_one_word([], 0, 60, lte=False)
    (15300, False)
    """
    compressed = tick // tick_spacing  # floor = the contract's truncate-then-decrement
    if lte:
        word_first = (compressed >> 8) << 8
        i = bisect.bisect_right(initialized_ticks, compressed * tick_spacing) - 1
        if i >= 0 and initialized_ticks[i] >= word_first * tick_spacing:
            return initialized_ticks[i], True
        return word_first * tick_spacing, False
    # Start from the word of the next compressed tick: the current one does not matter.
    word_last = (((compressed + 1) >> 8) << 8) + 255
    i = bisect.bisect_left(initialized_ticks, (compressed + 1) * tick_spacing)
    if i < len(initialized_ticks) and initialized_ticks[i] <= word_last * tick_spacing:
        return initialized_ticks[i], True
    return word_last * tick_spacing, False


# --- SqrtPriceMath ---


def next_sqrt_price_from_amount0(
    sqrt_price_x96: int, liquidity: int, amount: int, *, add: bool
) -> int:
    """Sqrt price after adding/removing token0: ``getNextSqrtPriceFromAmount0RoundingUp``.

    ``L * sqrtP / (L +- amount * sqrtP)``, falling back to ``L / (L / sqrtP + amount)``
    when the uint256 product overflows, exactly where the contract does.

    Examples
    --------
    >>> next_sqrt_price_from_amount0(2**96, 10**18, 10**17, add=True)
    72025602285694852357767227579
    """
    _uint("sqrt_price_x96", sqrt_price_x96, 160)
    _uint("liquidity", liquidity, 128)
    _uint("amount", amount, 256)
    if amount == 0:
        return sqrt_price_x96  # short-circuit: otherwise the result need not equal the input
    numerator1 = liquidity << 96
    product = amount * sqrt_price_x96
    if add:
        # The contract tries the precise formula only when neither product nor sum overflow.
        if product <= MAX_UINT256:
            denominator = numerator1 + product
            if denominator <= MAX_UINT256:
                return mul_div_rounding_up(numerator1, sqrt_price_x96, denominator)
        bound = numerator1 // sqrt_price_x96 + amount  # LowGasSafeMath.add
        if bound > MAX_UINT256:
            raise SolidityRevert("", "numerator1 / sqrtPX96 + amount overflows uint256")
        return div_rounding_up(numerator1, bound)
    if product > MAX_UINT256 or numerator1 <= product:
        raise SolidityRevert(
            "", f"removing amount0={amount} needs more than the virtual reserve of token0"
        )
    result = mul_div_rounding_up(numerator1, sqrt_price_x96, numerator1 - product)
    if result > MAX_UINT160:
        raise SolidityRevert("", f"next sqrt price {result} overflows uint160 (toUint160)")
    return result


def next_sqrt_price_from_amount1(
    sqrt_price_x96: int, liquidity: int, amount: int, *, add: bool
) -> int:
    """Sqrt price after adding/removing token1: ``getNextSqrtPriceFromAmount1RoundingDown``.

    ``sqrtP +- amount / L`` in Q96, rounding the quotient down when adding and up when
    removing so the price always rounds down.

    Examples
    --------
    >>> next_sqrt_price_from_amount1(2**96, 10**18, 10**17, add=True)
    87150978765690771352898345369
    """
    _uint("sqrt_price_x96", sqrt_price_x96, 160)
    _uint("liquidity", liquidity, 128)
    _uint("amount", amount, 256)
    if add:
        # ``(amount << 96) // L`` and ``mulDiv(amount, Q96, L)`` are equal; the contract picks
        # by size only for gas, but mulDiv can still revert on a huge quotient.
        if liquidity == 0:
            raise SolidityRevert("", "division by liquidity=0")  # checked ``/`` reverts
        if amount <= MAX_UINT160:
            quotient = (amount << 96) // liquidity
        else:
            quotient = mul_div(amount, Q96, liquidity)
        result = sqrt_price_x96 + quotient
        if result > MAX_UINT160:
            raise SolidityRevert("", f"next sqrt price {result} overflows uint160 (toUint160)")
        return result
    quotient = (
        div_rounding_up(amount << 96, liquidity)
        if amount <= MAX_UINT160
        else mul_div_rounding_up(amount, Q96, liquidity)
    )
    if sqrt_price_x96 <= quotient:
        raise SolidityRevert(
            "", f"removing amount1={amount} needs more than the virtual reserve of token1"
        )
    return sqrt_price_x96 - quotient


def next_sqrt_price_from_input(
    sqrt_price_x96: int, liquidity: int, amount_in: int, *, zero_for_one: bool
) -> int:
    """Sqrt price after swapping ``amount_in`` in: ``SqrtPriceMath.getNextSqrtPriceFromInput``.

    Rounds so that the price never passes the target of a step.

    Examples
    --------
    >>> next_sqrt_price_from_input(2**96, 10**18, 10**17, zero_for_one=False)
    87150978765690771352898345369
    """
    if sqrt_price_x96 <= 0:
        raise SolidityRevert("", "require(sqrtPX96 > 0)")
    if liquidity <= 0:
        raise SolidityRevert("", "require(liquidity > 0)")
    if zero_for_one:
        return next_sqrt_price_from_amount0(sqrt_price_x96, liquidity, amount_in, add=True)
    return next_sqrt_price_from_amount1(sqrt_price_x96, liquidity, amount_in, add=True)


def next_sqrt_price_from_output(
    sqrt_price_x96: int, liquidity: int, amount_out: int, *, zero_for_one: bool
) -> int:
    """Sqrt price after taking ``amount_out`` out: ``SqrtPriceMath.getNextSqrtPriceFromOutput``.

    Rounds so that the price always passes the target of a step.

    Examples
    --------
    >>> next_sqrt_price_from_output(2**96, 10**18, 10**17, zero_for_one=True)
    71305346262837903834189555302
    """
    if sqrt_price_x96 <= 0:
        raise SolidityRevert("", "require(sqrtPX96 > 0)")
    if liquidity <= 0:
        raise SolidityRevert("", "require(liquidity > 0)")
    if zero_for_one:
        return next_sqrt_price_from_amount1(sqrt_price_x96, liquidity, amount_out, add=False)
    return next_sqrt_price_from_amount0(sqrt_price_x96, liquidity, amount_out, add=False)


def amount0_delta(
    sqrt_ratio_a_x96: int, sqrt_ratio_b_x96: int, liquidity: int, *, round_up: bool
) -> int:
    """Token0 between two sqrt prices for ``liquidity``: ``SqrtPriceMath.getAmount0Delta``.

    ``L * (sqrtB - sqrtA) / (sqrtB * sqrtA)`` in the contract's two divisions; the order of
    the two prices does not matter.

    Examples
    --------
    >>> amount0_delta(87150978765690771352898345369, 2**96, 10**18, round_up=True)
    90909090909090910
    """
    _uint("sqrt_ratio_a_x96", sqrt_ratio_a_x96, 160)
    _uint("sqrt_ratio_b_x96", sqrt_ratio_b_x96, 160)
    _uint("liquidity", liquidity, 128)
    if sqrt_ratio_a_x96 > sqrt_ratio_b_x96:
        sqrt_ratio_a_x96, sqrt_ratio_b_x96 = sqrt_ratio_b_x96, sqrt_ratio_a_x96
    numerator1 = liquidity << 96
    numerator2 = sqrt_ratio_b_x96 - sqrt_ratio_a_x96
    if sqrt_ratio_a_x96 == 0:
        raise SolidityRevert("", "require(sqrtRatioAX96 > 0)")
    if round_up:
        return div_rounding_up(
            mul_div_rounding_up(numerator1, numerator2, sqrt_ratio_b_x96), sqrt_ratio_a_x96
        )
    return mul_div(numerator1, numerator2, sqrt_ratio_b_x96) // sqrt_ratio_a_x96


def amount1_delta(
    sqrt_ratio_a_x96: int, sqrt_ratio_b_x96: int, liquidity: int, *, round_up: bool
) -> int:
    """Token1 between two sqrt prices for ``liquidity``: ``SqrtPriceMath.getAmount1Delta``.

    ``L * (sqrtB - sqrtA) / 2**96``; the order of the two prices does not matter.

    Examples
    --------
    >>> amount1_delta(2**96, 87150978765690771352898345369, 10**18, round_up=True)
    100000000000000000
    """
    _uint("sqrt_ratio_a_x96", sqrt_ratio_a_x96, 160)
    _uint("sqrt_ratio_b_x96", sqrt_ratio_b_x96, 160)
    _uint("liquidity", liquidity, 128)
    if sqrt_ratio_a_x96 > sqrt_ratio_b_x96:
        sqrt_ratio_a_x96, sqrt_ratio_b_x96 = sqrt_ratio_b_x96, sqrt_ratio_a_x96
    if round_up:
        return mul_div_rounding_up(liquidity, sqrt_ratio_b_x96 - sqrt_ratio_a_x96, Q96)
    return mul_div(liquidity, sqrt_ratio_b_x96 - sqrt_ratio_a_x96, Q96)


def _to_int256(value: int) -> int:
    if value >= 1 << 255:
        raise SolidityRevert("", f"{value} does not fit int256 (SafeCast.toInt256)")
    return value


# --- SwapMath ---


class SwapStep(NamedTuple):
    """The four values ``SwapMath.computeSwapStep`` returns."""

    sqrt_price_next_x96: int
    amount_in: int
    amount_out: int
    fee_amount: int


def compute_swap_step(
    sqrt_price_current_x96: int,
    sqrt_price_target_x96: int,
    liquidity: int,
    amount_remaining: int,
    fee_pips: int,
) -> SwapStep:
    """One step of a V3 swap inside a single liquidity range: ``SwapMath.computeSwapStep``.

    Parameters
    ----------
    sqrt_price_current_x96, sqrt_price_target_x96
        Q64.96 sqrt prices; the direction is ``zero_for_one = current >= target``.
    liquidity
        Active liquidity (uint128).
    amount_remaining
        int256: ``> 0`` exact input still to spend (fee included), ``< 0`` exact output
        still to receive.
    fee_pips
        Pool fee in hundredths of a bip (3000 = 0.3%).

    Returns
    -------
    SwapStep
        Price reached (never past the target), input without fee, output, and fee.

    Examples
    --------
    >>> step = compute_swap_step(2**96, 79623317895830914510639640423, 2 * 10**18, 10**18, 600)
    >>> step.amount_in, step.amount_out, step.fee_amount
    (9975124224178055, 9925619580021728, 5988667735148)
    """
    _uint("sqrt_price_current_x96", sqrt_price_current_x96, 160)
    _uint("sqrt_price_target_x96", sqrt_price_target_x96, 160)
    _uint("liquidity", liquidity, 128)
    _int("amount_remaining", amount_remaining, 256)
    if not isinstance(fee_pips, int) or not 0 <= fee_pips < 1_000_000:
        raise ValueError(f"fee_pips={fee_pips!r} must be in [0, 1e6); 3000 is a 0.3% pool")
    zero_for_one = sqrt_price_current_x96 >= sqrt_price_target_x96
    exact_in = amount_remaining >= 0
    amount_in = amount_out = 0
    if exact_in:
        remaining_less_fee = mul_div(amount_remaining, 1_000_000 - fee_pips, 1_000_000)
        amount_in = (
            amount0_delta(sqrt_price_target_x96, sqrt_price_current_x96, liquidity, round_up=True)
            if zero_for_one
            else amount1_delta(
                sqrt_price_current_x96, sqrt_price_target_x96, liquidity, round_up=True
            )
        )
        if remaining_less_fee >= amount_in:
            sqrt_price_next = sqrt_price_target_x96
        else:
            sqrt_price_next = next_sqrt_price_from_input(
                sqrt_price_current_x96, liquidity, remaining_less_fee, zero_for_one=zero_for_one
            )
    else:
        amount_out = (
            amount1_delta(sqrt_price_target_x96, sqrt_price_current_x96, liquidity, round_up=False)
            if zero_for_one
            else amount0_delta(
                sqrt_price_current_x96, sqrt_price_target_x96, liquidity, round_up=False
            )
        )
        if -amount_remaining >= amount_out:
            sqrt_price_next = sqrt_price_target_x96
        else:
            sqrt_price_next = next_sqrt_price_from_output(
                sqrt_price_current_x96, liquidity, -amount_remaining, zero_for_one=zero_for_one
            )
    reached = sqrt_price_target_x96 == sqrt_price_next
    # Recompute whichever amount the branch above did not pin to the full step.
    if zero_for_one:
        if not (reached and exact_in):
            amount_in = amount0_delta(
                sqrt_price_next, sqrt_price_current_x96, liquidity, round_up=True
            )
        if not (reached and not exact_in):
            amount_out = amount1_delta(
                sqrt_price_next, sqrt_price_current_x96, liquidity, round_up=False
            )
    else:
        if not (reached and exact_in):
            amount_in = amount1_delta(
                sqrt_price_current_x96, sqrt_price_next, liquidity, round_up=True
            )
        if not (reached and not exact_in):
            amount_out = amount0_delta(
                sqrt_price_current_x96, sqrt_price_next, liquidity, round_up=False
            )
    # Cap the output at what is still wanted: rounding can overshoot by a wei.
    if not exact_in and amount_out > -amount_remaining:
        amount_out = -amount_remaining
    if exact_in and sqrt_price_next != sqrt_price_target_x96:
        fee_amount = amount_remaining - amount_in  # the rest of the input is all fee
    else:
        fee_amount = mul_div_rounding_up(amount_in, fee_pips, 1_000_000 - fee_pips)
    return SwapStep(sqrt_price_next, amount_in, amount_out, fee_amount)
