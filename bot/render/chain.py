"""An option chain as a fixed-width table: strike, then call and put bid / ask, delta and open interest."""

from __future__ import annotations

from decimal import Decimal

from bot.options.chain import Chain, ChainRow
from bot.options.contracts import Right

HEADER = f"{'strike':>8} {'C bid':>6} {'ask':>6} {'Δ':>5} {'OI':>5} │ {'P bid':>6} {'ask':>6} {'Δ':>5} {'OI':>5}"


def _price(value: Decimal | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _delta(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f}"


def _count(value: int | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1000:.1f}k" if value >= 10_000 else str(value)


def _side(row: ChainRow | None) -> str:
    if row is None:
        return f"{'':>6} {'':>6} {'':>5} {'':>5}"
    return f"{_price(row.bid):>6} {_price(row.ask):>6} {_delta(row.delta):>5} {_count(row.open_interest):>5}"


def chain_lines(chain: Chain) -> list[str]:
    """One line per strike, the one nearest the money marked with `>`."""
    strikes, centre = chain.strikes, chain.centre
    money = min(strikes, key=lambda k: abs(k - centre)) if centre is not None and strikes else None
    lines = []
    for strike in strikes:
        mark = ">" if strike == money else " "
        calls, puts = chain.row(strike, Right.CALL), chain.row(strike, Right.PUT)
        lines.append(f"{mark}{strike.normalize():>7f} {_side(calls)} │ {_side(puts)}")
    return lines
