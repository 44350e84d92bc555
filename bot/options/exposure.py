"""What a holding's greeks come to, and a desk's as the sum of its holdings' (the greek limits, /status and the
position messages show it). Apart from bot/options/greeks.py, which computes the figures: a desk without open
positions adds up nothing, and its status is shown without loading the model."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from bot.options.greeks import ContractGreeks


# A NamedTuple, not a frozen dataclass: status imports this module, and a dataclass takes Python 3.11 ~1.5 ms to make.
class Exposure(NamedTuple):
    """What a holding's greeks come to: `delta` in shares of the underlying (delta x qty x multiplier),
    `dollar_delta` that times the spot, `gamma` in shares per 1.00 of the underlying, `theta` in dollars per
    calendar day, `vega` in dollars per vol point. A desk's exposure is the sum of its holdings'."""

    delta: float = 0.0
    dollar_delta: float = 0.0
    gamma: float = 0.0
    theta: float = 0.0
    vega: float = 0.0

    def __add__(self, other: Exposure) -> Exposure:  # type: ignore[override]  # figure by figure, never joined
        return Exposure(
            self.delta + other.delta,
            self.dollar_delta + other.dollar_delta,
            self.gamma + other.gamma,
            self.theta + other.theta,
            self.vega + other.vega,
        )


def exposure(reading: ContractGreeks, qty: int, multiplier: int) -> Exposure:
    size = qty * multiplier
    greeks = reading.greeks
    return Exposure(
        delta=greeks.delta * size,
        dollar_delta=greeks.delta * size * float(reading.spot),
        gamma=greeks.gamma * size,
        theta=greeks.theta * size,
        vega=greeks.vega * size,
    )
