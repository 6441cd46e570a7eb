"""A Uniswap V3 pool in memory, exact to the wei: ticks, positions, fee growth, swap, QuoterV2.

``V3PoolState`` holds what ``UniswapV3Pool`` stores that moves tokens (slot0's price and
tick, the active liquidity, the initialised ticks, the positions, the fee growth and protocol
fees) and runs the contract's own code paths on it, built on the library ports of
``research_lib.defi.uniswap``. The oracle (observations, seconds and tick cumulatives) is left
out: it never changes an amount. The periphery's ``LiquidityAmounts`` is here too.

Which Solidity each part mirrors (v3-core 1.0.1, v3-periphery 1.4.4):

- ``V3PoolState.initialize``: UniswapV3Pool.initialize.
- ``mint`` / ``burn``: UniswapV3Pool.mint / burn through _modifyPosition, _updatePosition,
  Tick.update, TickBitmap.flipTick, Position.update and Tick.clear.
- ``collect``: UniswapV3Pool.collect. ``fee_growth_inside``: Tick.getFeeGrowthInside.
  ``position_fees_owed``: Position.update with a zero delta (what a ``burn(0)`` poke credits).
- ``swap``: the UniswapV3Pool.swap loop, with Tick.cross and
  TickBitmap.nextInitializedTickWithinOneWord.
- ``quote_exact_input_single`` / ``quote_exact_output_single``: QuoterV2's functions of the
  same name; ``count_initialized_ticks_crossed``: PoolTicksCounter.countInitializedTicksCrossed.
- ``liquidity_for_amount0`` / ``liquidity_for_amount1`` / ``liquidity_for_amounts`` /
  ``amounts_for_liquidity``: LiquidityAmounts' getLiquidityForAmount0 / getLiquidityForAmount1
  / getLiquidityForAmounts / getAmountsForLiquidity.

The tick bitmap is a sorted list searched as the bitmap is (``uniswap.
next_initialized_tick_within_one_word``), word boundaries included. A state change is atomic:
every check runs before any write, so a failed call leaves the pool as a revert would.

Examples
--------
>>> pool = V3PoolState.initialize(2**96, fee_pips=3000, tick_spacing=60)
>>> pool.mint(-887220, 887220, 2 * 10**18)
(2000000000000000000, 2000000000000000000)
>>> result = pool.swap(True, 10**18, MIN_SQRT_RATIO + 1)
>>> result.amount0, result.amount1, result.tick_after
(1000000000000000000, -665331998665331998, -8090)
"""

from __future__ import annotations

import bisect
import copy
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from research_lib.defi.uniswap import (
    MAX_SQRT_RATIO,
    MAX_TICK,
    MAX_UINT128,
    MIN_SQRT_RATIO,
    MIN_TICK,
    Q96,
    Q128,
    SolidityRevert,
    _int,
    _sdiv,
    _to_int256,
    _uint,
    add_liquidity_delta,
    amount0_delta,
    amount1_delta,
    compute_swap_step,
    max_liquidity_per_tick,
    mul_div,
    next_initialized_tick_within_one_word,
    sqrt_price_x96_at_tick,
    tick_at_sqrt_price_x96,
)

_MOD_256 = 1 << 256  # uint256 arithmetic in Solidity 0.7 wraps; fee growth relies on it
_MOD_128 = 1 << 128


def _signed_amount_delta(
    amount_delta: Callable[..., int], sqrt_a: int, sqrt_b: int, liquidity_delta: int
) -> int:
    # SqrtPriceMath's int128 overloads of getAmount0Delta / getAmount1Delta: round up what
    # the pool is owed (a mint) and down what it pays out (a burn).
    if liquidity_delta < 0:
        return -_to_int256(amount_delta(sqrt_a, sqrt_b, -liquidity_delta, round_up=False))
    return _to_int256(amount_delta(sqrt_a, sqrt_b, liquidity_delta, round_up=True))


@dataclass
class TickInfo:
    """``Tick.Info`` without the oracle fields, which move no token."""

    liquidity_gross: int
    liquidity_net: int
    fee_growth_outside0_x128: int = 0
    fee_growth_outside1_x128: int = 0


@dataclass
class PositionInfo:
    """``Position.Info``: liquidity, fee growth inside at the last update, tokens owed."""

    liquidity: int = 0
    fee_growth_inside0_last_x128: int = 0
    fee_growth_inside1_last_x128: int = 0
    tokens_owed0: int = 0
    tokens_owed1: int = 0


_ZERO_TICK = TickInfo(0, 0)  # an uninitialised tick reads as zeros, like a Solidity mapping
_ZERO_POSITION = PositionInfo()


class V3SwapStep(NamedTuple):
    """One pass of the swap loop: the contract's ``StepComputations`` plus where it ended."""

    sqrt_price_start_x96: int
    tick_next: int
    initialized: bool
    sqrt_price_next_x96: int  # price at tick_next; the step's target unless the limit is nearer
    liquidity: int  # active during the step, before any crossing at its end
    sqrt_price_end_x96: int
    amount_in: int  # without fee
    amount_out: int
    fee_amount: int  # whole fee of the step, protocol share included


class V3SwapResult(NamedTuple):
    """What ``V3PoolState.swap`` returns; amounts are signed as the pool's: > 0 paid in."""

    amount0: int
    amount1: int
    sqrt_price_x96_after: int
    tick_after: int
    ticks_crossed: int  # initialised ticks actually crossed (Tick.cross calls)
    steps: tuple[V3SwapStep, ...]


class V3Quote(NamedTuple):
    """QuoterV2's answer, without its gas estimate."""

    amount: int
    sqrt_price_x96_after: int
    initialized_ticks_crossed: int


def _fee_growth_inside(
    pool: V3PoolState, lower: TickInfo, upper: TickInfo, tick_lower: int, tick_upper: int
) -> tuple[int, int]:
    # Tick.getFeeGrowthInside: "outside" flips meaning with the side the current tick is on.
    tick, g0, g1 = pool.tick, pool.fee_growth_global0_x128, pool.fee_growth_global1_x128
    if tick >= tick_lower:
        below0, below1 = lower.fee_growth_outside0_x128, lower.fee_growth_outside1_x128
    else:
        below0 = (g0 - lower.fee_growth_outside0_x128) % _MOD_256
        below1 = (g1 - lower.fee_growth_outside1_x128) % _MOD_256
    if tick < tick_upper:
        above0, above1 = upper.fee_growth_outside0_x128, upper.fee_growth_outside1_x128
    else:
        above0 = (g0 - upper.fee_growth_outside0_x128) % _MOD_256
        above1 = (g1 - upper.fee_growth_outside1_x128) % _MOD_256
    return (g0 - below0 - above0) % _MOD_256, (g1 - below1 - above1) % _MOD_256


def _updated_position(
    position: PositionInfo, liquidity_delta: int, inside0: int, inside1: int
) -> PositionInfo:
    # Position.update, returning the new value instead of writing storage.
    if liquidity_delta == 0:
        if position.liquidity == 0:
            raise SolidityRevert("NP", "poke of a position with no liquidity")
        liquidity_next = position.liquidity
    else:
        liquidity_next = add_liquidity_delta(position.liquidity, liquidity_delta)
    growth0 = (inside0 - position.fee_growth_inside0_last_x128) % _MOD_256
    growth1 = (inside1 - position.fee_growth_inside1_last_x128) % _MOD_256
    # uint128(...) truncates, and tokensOwed += wraps: "withdraw before you hit max fees".
    owed0 = (position.tokens_owed0 + mul_div(growth0, position.liquidity, Q128)) % _MOD_128
    owed1 = (position.tokens_owed1 + mul_div(growth1, position.liquidity, Q128)) % _MOD_128
    return PositionInfo(liquidity_next, inside0, inside1, owed0, owed1)


def _quoter_error(error: SolidityRevert) -> SolidityRevert:
    # QuoterV2.parseRevertReason re-raises a reason string but turns an empty revert into this.
    if error.reason:
        return error
    return SolidityRevert("Unexpected error", str(error))


@dataclass
class V3PoolState:
    """A V3 pool's token-moving state, with the contract's mint, burn, collect and swap.

    Parameters
    ----------
    sqrt_price_x96, tick
        slot0's Q64.96 sqrt price and tick.
    liquidity
        Active liquidity (uint128).
    fee_pips
        Fee in hundredths of a bip: 500, 3000 or 10000 on mainnet.
    tick_spacing
        10, 60 or 200 on mainnet.
    ticks
        Initialised ticks only (``liquidity_gross > 0``); a key present means its bitmap bit
        is set. ``mint`` and ``burn`` keep it so.
    positions
        Keyed by ``(owner, tick_lower, tick_upper)`` like the contract's hash of the three.
    fee_growth_global0_x128, fee_growth_global1_x128
        Fee per unit of liquidity ever earned, Q128.128, wrapping at 2**256.
    fee_protocol
        slot0.feeProtocol: ``token0's + (token1's << 4)``, each 0 or 4..10 (1/n of the fee).
    protocol_fees_token0, protocol_fees_token1
        Protocol fees accrued (uint128, wrapping).

    Examples
    --------
    >>> pool = V3PoolState.initialize(2**96, fee_pips=500, tick_spacing=10)
    >>> pool.tick, pool.max_liquidity_per_tick == max_liquidity_per_tick(10)
    (0, True)
    """

    sqrt_price_x96: int
    tick: int
    liquidity: int
    fee_pips: int
    tick_spacing: int
    ticks: dict[int, TickInfo] = field(default_factory=dict)
    positions: dict[tuple[str, int, int], PositionInfo] = field(default_factory=dict)
    fee_growth_global0_x128: int = 0
    fee_growth_global1_x128: int = 0
    fee_protocol: int = 0
    protocol_fees_token0: int = 0
    protocol_fees_token1: int = 0

    def __post_init__(self) -> None:
        _uint("sqrt_price_x96", self.sqrt_price_x96, 160)
        _int("tick", self.tick, 24)
        _uint("liquidity", self.liquidity, 128)
        if not isinstance(self.fee_pips, int) or not 0 <= self.fee_pips < 1_000_000:
            raise ValueError(f"fee_pips={self.fee_pips!r} must be in [0, 1e6); 3000 is 0.3%")
        if not isinstance(self.tick_spacing, int) or not 0 < self.tick_spacing < 16384:
            # UniswapV3Factory.enableFeeAmount's bound, which also keeps the tick maths in range
            raise ValueError(f"tick_spacing={self.tick_spacing!r} must be in (0, 16384)")
        off_grid = [t for t in self.ticks if t % self.tick_spacing]
        if off_grid:
            raise ValueError(f"ticks {off_grid[:5]} are not multiples of {self.tick_spacing}")
        _uint("fee_protocol", self.fee_protocol, 8)

    @classmethod
    def initialize(cls, sqrt_price_x96: int, *, fee_pips: int, tick_spacing: int) -> V3PoolState:
        """A new empty pool at ``sqrt_price_x96``: ``UniswapV3Pool.initialize``.

        Examples
        --------
        >>> V3PoolState.initialize(MIN_SQRT_RATIO, fee_pips=3000, tick_spacing=60).tick
        -887272
        """
        tick = tick_at_sqrt_price_x96(sqrt_price_x96)
        return cls(sqrt_price_x96, tick, 0, fee_pips, tick_spacing)

    @property
    def max_liquidity_per_tick(self) -> int:
        """``maxLiquidityPerTick`` of the pool's tick spacing."""
        return max_liquidity_per_tick(self.tick_spacing)

    def copy(self) -> V3PoolState:
        """An independent deep copy, e.g. to try a swap without changing this pool."""
        return copy.deepcopy(self)

    def fee_growth_inside(self, tick_lower: int, tick_upper: int) -> tuple[int, int]:
        """Fee growth per liquidity inside a range, Q128.128: ``Tick.getFeeGrowthInside``.

        Examples
        --------
        >>> pool = V3PoolState.initialize(2**96, fee_pips=3000, tick_spacing=60)
        >>> pool.fee_growth_inside(-60, 60)
        (0, 0)
        """
        lower, upper = self._tick_info(tick_lower), self._tick_info(tick_upper)
        return _fee_growth_inside(self, lower, upper, tick_lower, tick_upper)

    def _tick_info(self, tick: int) -> TickInfo:
        return self.ticks.get(tick, _ZERO_TICK)

    def position_fees_owed(
        self, tick_lower: int, tick_upper: int, *, owner: str = ""
    ) -> tuple[int, int]:
        """Tokens a position could collect after a ``burn(0)`` poke, without changing the pool.

        ``tokensOwed`` plus the fees earned since its last update, rounded down per position
        as ``Position.update`` does; after a burn this also includes the burnt principal.

        Examples
        --------
        >>> pool = V3PoolState.initialize(2**96, fee_pips=3000, tick_spacing=60)
        >>> _ = pool.mint(-60, 60, 10**18)
        >>> _ = pool.swap(True, 10**15, MIN_SQRT_RATIO + 1)
        >>> pool.position_fees_owed(-60, 60)
        (2999999999999, 0)
        """
        position = self.positions.get((owner, tick_lower, tick_upper), _ZERO_POSITION)
        if position.liquidity == 0:
            return position.tokens_owed0, position.tokens_owed1
        poked = _updated_position(position, 0, *self.fee_growth_inside(tick_lower, tick_upper))
        return poked.tokens_owed0, poked.tokens_owed1

    def _updated_tick(
        self, tick: int, liquidity_delta: int, *, upper: bool
    ) -> tuple[TickInfo, bool]:
        # Tick.update on a copy: returns the new info and whether the tick flipped.
        info = replace(self._tick_info(tick))
        gross_before = info.liquidity_gross
        gross_after = add_liquidity_delta(gross_before, liquidity_delta)
        if gross_after > self.max_liquidity_per_tick:
            raise SolidityRevert("LO", f"tick {tick} gross liquidity {gross_after} > max")
        flipped = (gross_after == 0) != (gross_before == 0)
        if gross_before == 0 and tick <= self.tick:
            # By convention all growth before a tick is initialised happened below it.
            info.fee_growth_outside0_x128 = self.fee_growth_global0_x128
            info.fee_growth_outside1_x128 = self.fee_growth_global1_x128
        info.liquidity_gross = gross_after
        net = (
            info.liquidity_net - liquidity_delta if upper else info.liquidity_net + liquidity_delta
        )
        if not -(1 << 127) <= net < 1 << 127:
            raise SolidityRevert("", f"tick {tick} liquidity_net {net} overflows int128")
        info.liquidity_net = net
        return info, flipped

    def _modify_position(
        self, owner: str, tick_lower: int, tick_upper: int, delta: int
    ) -> tuple[int, int]:
        # _modifyPosition + _updatePosition for a liquidity delta: all checks, then the writes.
        _int("tick_lower", tick_lower, 24)
        _int("tick_upper", tick_upper, 24)
        if tick_lower >= tick_upper:
            raise SolidityRevert("TLU", f"tick_lower={tick_lower} >= tick_upper={tick_upper}")
        if tick_lower < MIN_TICK:
            raise SolidityRevert("TLM", f"tick_lower={tick_lower} < MIN_TICK={MIN_TICK}")
        if tick_upper > MAX_TICK:
            raise SolidityRevert("TUM", f"tick_upper={tick_upper} > MAX_TICK={MAX_TICK}")
        key = (owner, tick_lower, tick_upper)
        lower, upper = self._tick_info(tick_lower), self._tick_info(tick_upper)
        flipped_lower = flipped_upper = False
        if delta != 0:
            lower, flipped_lower = self._updated_tick(tick_lower, delta, upper=False)
            upper, flipped_upper = self._updated_tick(tick_upper, delta, upper=True)
            for t, flipped in ((tick_lower, flipped_lower), (tick_upper, flipped_upper)):
                if flipped and t % self.tick_spacing:  # TickBitmap.flipTick's require
                    raise SolidityRevert("", f"tick {t} is not a multiple of {self.tick_spacing}")
        inside = _fee_growth_inside(self, lower, upper, tick_lower, tick_upper)
        position = _updated_position(self.positions.get(key, _ZERO_POSITION), delta, *inside)
        amount0 = amount1 = 0
        liquidity, price = self.liquidity, self.sqrt_price_x96
        if delta != 0:
            sqrt_a, sqrt_b = sqrt_price_x96_at_tick(tick_lower), sqrt_price_x96_at_tick(tick_upper)
            if self.tick < tick_lower:
                # Below the range the position is all token0, which it needs to be crossed up.
                amount0 = _signed_amount_delta(amount0_delta, sqrt_a, sqrt_b, delta)
            elif self.tick < tick_upper:
                amount0 = _signed_amount_delta(amount0_delta, price, sqrt_b, delta)
                amount1 = _signed_amount_delta(amount1_delta, sqrt_a, price, delta)
                liquidity = add_liquidity_delta(liquidity, delta)
            else:
                amount1 = _signed_amount_delta(amount1_delta, sqrt_a, sqrt_b, delta)
        # Nothing below can fail: write.
        if delta != 0:
            for t, info, flip in (
                (tick_lower, lower, flipped_lower),
                (tick_upper, upper, flipped_upper),
            ):
                if flip and delta < 0:
                    self.ticks.pop(t, None)  # Tick.clear
                else:
                    self.ticks[t] = info
        self.positions[key] = position
        self.liquidity = liquidity
        return amount0, amount1

    def mint(
        self, tick_lower: int, tick_upper: int, liquidity: int, *, owner: str = ""
    ) -> tuple[int, int]:
        """Add ``liquidity`` to a position: ``UniswapV3Pool.mint``.

        Parameters
        ----------
        tick_lower, tick_upper
            The range, multiples of ``tick_spacing`` within ``[MIN_TICK, MAX_TICK]``.
        liquidity
            Liquidity to add (> 0, below 2**127).
        owner
            Position owner; ``(owner, tick_lower, tick_upper)`` names the position.

        Returns
        -------
        tuple[int, int]
            ``(amount0, amount1)`` the minter owes the pool, rounded up.

        Examples
        --------
        >>> pool = V3PoolState.initialize(2**96, fee_pips=3000, tick_spacing=60)
        >>> pool.mint(60, 887220, 2 * 10**18)
        (1994009290088178439, 0)
        """
        _uint("liquidity", liquidity, 128)
        if liquidity == 0:
            raise SolidityRevert("", "require(amount > 0): mint liquidity must be > 0")
        if liquidity >= 1 << 127:
            raise SolidityRevert("", f"liquidity={liquidity} does not fit int128 (toInt128)")
        return self._modify_position(owner, tick_lower, tick_upper, liquidity)

    def burn(
        self, tick_lower: int, tick_upper: int, liquidity: int, *, owner: str = ""
    ) -> tuple[int, int]:
        """Remove ``liquidity`` from a position into its tokens owed: ``UniswapV3Pool.burn``.

        ``liquidity=0`` pokes the position: its earned fees move into ``tokens_owed``.

        Returns
        -------
        tuple[int, int]
            ``(amount0, amount1)`` of principal released, rounded down; ``collect`` pays it.

        Examples
        --------
        >>> pool = V3PoolState.initialize(2**96, fee_pips=3000, tick_spacing=60)
        >>> pool.mint(60, 887220, 2 * 10**18)
        (1994009290088178439, 0)
        >>> pool.burn(60, 887220, 2 * 10**18)
        (1994009290088178438, 0)
        """
        _uint("liquidity", liquidity, 128)
        if liquidity >= 1 << 127:
            raise SolidityRevert("", f"liquidity={liquidity} does not fit int128 (toInt128)")
        amount0, amount1 = self._modify_position(owner, tick_lower, tick_upper, -liquidity)
        amount0, amount1 = -amount0, -amount1
        if amount0 > 0 or amount1 > 0:
            position = self.positions[(owner, tick_lower, tick_upper)]
            position.tokens_owed0 = (position.tokens_owed0 + amount0) % _MOD_128
            position.tokens_owed1 = (position.tokens_owed1 + amount1) % _MOD_128
        return amount0, amount1

    def collect(
        self,
        tick_lower: int,
        tick_upper: int,
        *,
        owner: str = "",
        amount0_requested: int = MAX_UINT128,
        amount1_requested: int = MAX_UINT128,
    ) -> tuple[int, int]:
        """Pay out a position's tokens owed, up to the amounts requested: ``UniswapV3Pool.collect``.

        Examples
        --------
        >>> pool = V3PoolState.initialize(2**96, fee_pips=3000, tick_spacing=60)
        >>> _ = pool.mint(-60, 60, 10**18)
        >>> _ = pool.swap(True, 10**15, MIN_SQRT_RATIO + 1)
        >>> _ = pool.burn(-60, 60, 0)
        >>> pool.collect(-60, 60)
        (2999999999999, 0)
        """
        position = self.positions.get((owner, tick_lower, tick_upper))
        if position is None:
            return 0, 0
        amount0 = min(amount0_requested, position.tokens_owed0)
        amount1 = min(amount1_requested, position.tokens_owed1)
        position.tokens_owed0 -= amount0
        position.tokens_owed1 -= amount1
        return amount0, amount1

    def swap(
        self, zero_for_one: bool, amount_specified: int, sqrt_price_limit_x96: int
    ) -> V3SwapResult:
        """Run the pool's swap loop and apply it: ``UniswapV3Pool.swap``.

        Steps go from tick to tick as the contract's do (see the module docstring for why the
        word boundaries matter), crossing initialised ticks with ``Tick.cross`` and accruing
        fee growth and protocol fees.

        Parameters
        ----------
        zero_for_one
            Sell token0 for token1 (the price falls) instead of token1 for token0.
        amount_specified
            int256: ``> 0`` exact input, ``< 0`` exact output (of the other token).
        sqrt_price_limit_x96
            The price the swap may not pass; strictly between the current price and
            ``MIN_SQRT_RATIO`` (zero for one) or ``MAX_SQRT_RATIO`` (one for zero).

        Returns
        -------
        V3SwapResult
            ``(amount0, amount1, sqrt_price_x96_after, tick_after, ticks_crossed, steps)``;
            amounts as the pool signs them, positive when the pool receives.

        Examples
        --------
        >>> pool = V3PoolState.initialize(2**96, fee_pips=3000, tick_spacing=60)
        >>> _ = pool.mint(-887220, -60, 2 * 10**18)
        >>> result = pool.swap(True, 1000, MIN_SQRT_RATIO + 1)
        >>> result.amount0, result.amount1, result.tick_after, result.ticks_crossed
        (1000, -991, -61, 1)
        """
        _int("amount_specified", amount_specified, 256)
        _uint("sqrt_price_limit_x96", sqrt_price_limit_x96, 160)
        if amount_specified == 0:
            raise SolidityRevert("AS", "amount_specified must not be 0")
        if zero_for_one:
            limit_ok = MIN_SQRT_RATIO < sqrt_price_limit_x96 < self.sqrt_price_x96
        else:
            limit_ok = self.sqrt_price_x96 < sqrt_price_limit_x96 < MAX_SQRT_RATIO
        if not limit_ok:
            side = "MIN" if zero_for_one else "MAX"
            raise SolidityRevert(
                "SPL",
                f"sqrt_price_limit_x96={sqrt_price_limit_x96} must lie strictly between the "
                f"price {self.sqrt_price_x96} and {side}_SQRT_RATIO",
            )
        fee_protocol = self.fee_protocol % 16 if zero_for_one else self.fee_protocol >> 4
        exact_input = amount_specified > 0
        remaining, calculated = amount_specified, 0
        price, tick, liquidity = self.sqrt_price_x96, self.tick, self.liquidity
        fee_growth = self.fee_growth_global0_x128 if zero_for_one else self.fee_growth_global1_x128
        protocol_fee = 0
        initialized_ticks = sorted(self.ticks)
        crossings: list[tuple[int, int, int]] = []  # Tick.cross writes, applied at the end
        steps: list[V3SwapStep] = []
        while remaining != 0 and price != sqrt_price_limit_x96:
            start = price
            tick_next, initialized = next_initialized_tick_within_one_word(
                initialized_ticks, tick, self.tick_spacing, lte=zero_for_one
            )
            # The bitmap does not know the tick bounds.
            tick_next = min(max(tick_next, MIN_TICK), MAX_TICK)
            sqrt_next = sqrt_price_x96_at_tick(tick_next)
            if zero_for_one:
                target = max(sqrt_next, sqrt_price_limit_x96)
            else:
                target = min(sqrt_next, sqrt_price_limit_x96)
            step = compute_swap_step(price, target, liquidity, remaining, self.fee_pips)
            steps.append(V3SwapStep(start, tick_next, initialized, sqrt_next, liquidity, *step))
            price, amount_in, amount_out, fee_amount = step
            if exact_input:
                remaining -= _to_int256(amount_in + fee_amount)
                calculated -= _to_int256(amount_out)
            else:
                remaining += _to_int256(amount_out)
                calculated += _to_int256(amount_in + fee_amount)
            lp_fee = fee_amount
            if fee_protocol > 0:
                delta = lp_fee // fee_protocol
                lp_fee -= delta
                protocol_fee = (protocol_fee + delta) % _MOD_128
            if liquidity > 0:
                fee_growth = (fee_growth + mul_div(lp_fee, Q128, liquidity)) % _MOD_256
            if price == sqrt_next:
                if initialized:
                    info = self.ticks[tick_next]
                    g0 = fee_growth if zero_for_one else self.fee_growth_global0_x128
                    g1 = self.fee_growth_global1_x128 if zero_for_one else fee_growth
                    outside0 = (g0 - info.fee_growth_outside0_x128) % _MOD_256
                    outside1 = (g1 - info.fee_growth_outside1_x128) % _MOD_256
                    crossings.append((tick_next, outside0, outside1))
                    # Moving left, the net liquidity of a tick is removed rather than added.
                    net = -info.liquidity_net if zero_for_one else info.liquidity_net
                    liquidity = add_liquidity_delta(liquidity, net)
                tick = tick_next - 1 if zero_for_one else tick_next
            elif price != start:
                # Not on a boundary (where the tick was already set), so recompute it.
                tick = tick_at_sqrt_price_x96(price)
        # Nothing below can fail: write, as the contract does after its loop.
        for crossed_tick, outside0, outside1 in crossings:
            info = self.ticks[crossed_tick]
            info.fee_growth_outside0_x128, info.fee_growth_outside1_x128 = outside0, outside1
        self.sqrt_price_x96, self.tick, self.liquidity = price, tick, liquidity
        if zero_for_one:
            self.fee_growth_global0_x128 = fee_growth
            self.protocol_fees_token0 = (self.protocol_fees_token0 + protocol_fee) % _MOD_128
        else:
            self.fee_growth_global1_x128 = fee_growth
            self.protocol_fees_token1 = (self.protocol_fees_token1 + protocol_fee) % _MOD_128
        if zero_for_one == exact_input:
            amount0, amount1 = amount_specified - remaining, calculated
        else:
            amount0, amount1 = calculated, amount_specified - remaining
        return V3SwapResult(amount0, amount1, price, tick, len(crossings), tuple(steps))

    def count_initialized_ticks_crossed(self, tick_before: int, tick_after: int) -> int:
        """QuoterV2's count of initialised ticks a swap crossed: ``PoolTicksCounter``.

        Counts initialised ticks between the two (compressed with Solidity's truncating
        division), not counting ``tick_after`` when moving down onto it nor ``tick_before``
        when moving up from it. It can differ from ``V3SwapResult.ticks_crossed``, which
        counts the crossings the loop made.

        Examples
        --------
        >>> pool = V3PoolState.initialize(2**96, fee_pips=3000, tick_spacing=60)
        >>> _ = pool.mint(-120, 120, 10**18)
        >>> pool.count_initialized_ticks_crossed(0, -200)
        1
        """
        spacing = self.tick_spacing
        compressed_before = _sdiv(tick_before, spacing)
        compressed_after = _sdiv(tick_after, spacing)
        # A bitmap bit (word, bit) of compressed c is set iff the tick c * spacing is initialised.
        after_initialized = (
            compressed_after * spacing in self.ticks
            and tick_after % spacing == 0
            and tick_before > tick_after
        )
        before_initialized = (
            compressed_before * spacing in self.ticks
            and tick_before % spacing == 0
            and tick_before < tick_after
        )
        low = min(compressed_before, compressed_after) * spacing
        high = max(compressed_before, compressed_after) * spacing
        initialized_ticks = sorted(self.ticks)
        count = bisect.bisect_right(initialized_ticks, high) - bisect.bisect_left(
            initialized_ticks, low
        )
        return count - after_initialized - before_initialized

    def _quote(
        self, zero_for_one: bool, amount_specified: int, limit: int, out_cached: int
    ) -> V3Quote:
        # QuoterV2: swap on a copy (the real one reverts inside the callback), then read the
        # callback's amounts the way QuoterV2.uniswapV3SwapCallback does.
        try:
            result = self.copy().swap(zero_for_one, amount_specified, limit)
        except SolidityRevert as error:
            raise _quoter_error(error) from error
        amount0, amount1 = result.amount0, result.amount1
        if not (amount0 > 0 or amount1 > 0):
            raise SolidityRevert("Unexpected error", "swap entirely within 0 liquidity")
        exact_input = amount_specified > 0
        # The callback's path is (tokenIn, tokenOut) exact in and (tokenOut, tokenIn) exact out.
        first_is_token0 = zero_for_one if exact_input else not zero_for_one
        if amount0 > 0:
            is_exact_input, to_pay, received = first_is_token0, amount0, -amount1
        else:
            is_exact_input, to_pay, received = not first_is_token0, amount1, -amount0
        if not is_exact_input and out_cached != 0 and received != out_cached:
            raise SolidityRevert(
                "Unexpected error", f"received {received} != requested {out_cached} out"
            )
        ticks = self.count_initialized_ticks_crossed(self.tick, result.tick_after)
        return V3Quote(received if is_exact_input else to_pay, result.sqrt_price_x96_after, ticks)

    def quote_exact_input_single(
        self, zero_for_one: bool, amount_in: int, *, sqrt_price_limit_x96: int = 0
    ) -> V3Quote:
        """Output for exactly ``amount_in``, as ``QuoterV2.quoteExactInputSingle`` answers.

        The pool is not changed. ``sqrt_price_limit_x96=0`` means no limit (the quoter then
        passes ``MIN_SQRT_RATIO + 1`` or ``MAX_SQRT_RATIO - 1``).

        Returns
        -------
        V3Quote
            ``(amount_out, sqrt_price_x96_after, initialized_ticks_crossed)``.

        Examples
        --------
        >>> pool = V3PoolState.initialize(2**96, fee_pips=3000, tick_spacing=60)
        >>> _ = pool.mint(-887220, 887220, 2 * 10**18)
        >>> pool.quote_exact_input_single(False, 10**18).amount
        665331998665331998
        """
        _uint("amount_in", amount_in, 256)
        limit = sqrt_price_limit_x96 or (MIN_SQRT_RATIO + 1 if zero_for_one else MAX_SQRT_RATIO - 1)
        return self._quote(zero_for_one, _to_int256(amount_in), limit, 0)

    def quote_exact_output_single(
        self, zero_for_one: bool, amount_out: int, *, sqrt_price_limit_x96: int = 0
    ) -> V3Quote:
        """Input needed for exactly ``amount_out``, as ``QuoterV2.quoteExactOutputSingle``.

        The pool is not changed. Without a price limit the quoter requires the whole
        ``amount_out`` to be available and raises ``'Unexpected error'`` otherwise.

        Returns
        -------
        V3Quote
            ``(amount_in, sqrt_price_x96_after, initialized_ticks_crossed)``.

        Examples
        --------
        >>> pool = V3PoolState.initialize(2**96, fee_pips=3000, tick_spacing=60)
        >>> _ = pool.mint(-887220, 887220, 2 * 10**18)
        >>> pool.quote_exact_output_single(True, 10**18).amount
        2006018054162487463
        """
        _uint("amount_out", amount_out, 256)
        limit = sqrt_price_limit_x96 or (MIN_SQRT_RATIO + 1 if zero_for_one else MAX_SQRT_RATIO - 1)
        out_cached = amount_out if sqrt_price_limit_x96 == 0 else 0
        return self._quote(zero_for_one, -_to_int256(amount_out), limit, out_cached)


# --- LiquidityAmounts (v3-periphery) ---


def _to_uint128(value: int) -> int:
    if value > MAX_UINT128:
        raise SolidityRevert("", f"liquidity {value} does not fit uint128 (toUint128)")
    return value


def liquidity_for_amount0(sqrt_ratio_a_x96: int, sqrt_ratio_b_x96: int, amount0: int) -> int:
    """Liquidity that ``amount0`` of token0 buys over a range: ``getLiquidityForAmount0``.

    Examples
    --------
    >>> liquidity_for_amount0(2**96, 2**97, 5 * 10**17)
    1000000000000000000
    """
    if sqrt_ratio_a_x96 > sqrt_ratio_b_x96:
        sqrt_ratio_a_x96, sqrt_ratio_b_x96 = sqrt_ratio_b_x96, sqrt_ratio_a_x96
    intermediate = mul_div(sqrt_ratio_a_x96, sqrt_ratio_b_x96, Q96)
    return _to_uint128(mul_div(amount0, intermediate, sqrt_ratio_b_x96 - sqrt_ratio_a_x96))


def liquidity_for_amount1(sqrt_ratio_a_x96: int, sqrt_ratio_b_x96: int, amount1: int) -> int:
    """Liquidity that ``amount1`` of token1 buys over a range: ``getLiquidityForAmount1``.

    Examples
    --------
    >>> liquidity_for_amount1(2**96, 2**97, 10**18)
    1000000000000000000
    """
    if sqrt_ratio_a_x96 > sqrt_ratio_b_x96:
        sqrt_ratio_a_x96, sqrt_ratio_b_x96 = sqrt_ratio_b_x96, sqrt_ratio_a_x96
    return _to_uint128(mul_div(amount1, Q96, sqrt_ratio_b_x96 - sqrt_ratio_a_x96))


def liquidity_for_amounts(
    sqrt_price_x96: int,
    sqrt_ratio_a_x96: int,
    sqrt_ratio_b_x96: int,
    amount0: int,
    amount1: int,
) -> int:
    """Most liquidity both amounts can fund at the current price: ``getLiquidityForAmounts``.

    What ``NonfungiblePositionManager.mint`` computes before calling the pool: uint128,
    rounded down; the range's bounds ``sqrt_ratio_a_x96``, ``sqrt_ratio_b_x96`` in any order.

    Examples
    --------
    >>> a, b = 75541088972021052632782079082, 83095197869223157896060286990
    >>> liquidity_for_amounts(2**96, a, b, 100, 200)
    2148
    """
    if sqrt_ratio_a_x96 > sqrt_ratio_b_x96:
        sqrt_ratio_a_x96, sqrt_ratio_b_x96 = sqrt_ratio_b_x96, sqrt_ratio_a_x96
    if sqrt_price_x96 <= sqrt_ratio_a_x96:
        return liquidity_for_amount0(sqrt_ratio_a_x96, sqrt_ratio_b_x96, amount0)
    if sqrt_price_x96 < sqrt_ratio_b_x96:
        liquidity0 = liquidity_for_amount0(sqrt_price_x96, sqrt_ratio_b_x96, amount0)
        liquidity1 = liquidity_for_amount1(sqrt_ratio_a_x96, sqrt_price_x96, amount1)
        return min(liquidity0, liquidity1)
    return liquidity_for_amount1(sqrt_ratio_a_x96, sqrt_ratio_b_x96, amount1)


def amounts_for_liquidity(
    sqrt_price_x96: int, sqrt_ratio_a_x96: int, sqrt_ratio_b_x96: int, liquidity: int
) -> tuple[int, int]:
    """Token amounts ``liquidity`` is worth at the current price: ``getAmountsForLiquidity``.

    Returns ``(amount0, amount1)``, both rounded down like a burn (a mint rounds up); the
    bounds in any order. ``getAmount0ForLiquidity`` / ``getAmount1ForLiquidity`` are
    ``amount0_delta`` / ``amount1_delta`` rounded down, so those are called.

    Examples
    --------
    >>> a, b = 75541088972021052632782079082, 83095197869223157896060286990
    >>> amounts_for_liquidity(2**96, a, b, 2148)
    (99, 99)
    """
    _uint("liquidity", liquidity, 128)
    if sqrt_ratio_a_x96 > sqrt_ratio_b_x96:
        sqrt_ratio_a_x96, sqrt_ratio_b_x96 = sqrt_ratio_b_x96, sqrt_ratio_a_x96
    if sqrt_price_x96 <= sqrt_ratio_a_x96:
        return amount0_delta(sqrt_ratio_a_x96, sqrt_ratio_b_x96, liquidity, round_up=False), 0
    if sqrt_price_x96 < sqrt_ratio_b_x96:
        return (
            amount0_delta(sqrt_price_x96, sqrt_ratio_b_x96, liquidity, round_up=False),
            amount1_delta(sqrt_ratio_a_x96, sqrt_price_x96, liquidity, round_up=False),
        )
    return 0, amount1_delta(sqrt_ratio_a_x96, sqrt_ratio_b_x96, liquidity, round_up=False)
