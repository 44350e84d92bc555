"""What a position's message shows, as plain data, and its text rendering for the terminal.

The console sink prints `render_text(view)`; the Discord sink turns the same view into an embed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from bot.options.exposure import Exposure, exposure
from bot.options.greeks import ContractGreeks
from bot.options.market_hours import MARKET_TZ
from bot.options.orders import Side
from bot.options.positions import Position, PositionAction
from bot.options.risk import cents
from bot.render.text import money


@dataclass(frozen=True, slots=True)
class PositionView:
    position: Position
    mark: Decimal | None
    status_note: str | None = None  # e.g. an order in flight, or why one was refused
    event_id: str | None = None  # the last ledger event shown
    greeks: ContractGreeks | None = None  # of the contract, as the desk's source gave them (an open position)

    @property
    def exposure(self) -> Exposure | None:
        """The position's greeks: the contract's times its open contracts and multiplier."""
        if self.greeks is None or not self.position.is_open:
            return None
        return exposure(self.greeks, self.position.qty, self.position.contract.multiplier)

    @property
    def cost(self) -> Decimal:
        """Premium paid for every contract bought, in dollars."""
        multiplier = self.position.contract.multiplier
        return sum((a.price * a.qty * multiplier for a in self.position.actions if a.side is Side.BUY), Decimal(0))

    @property
    def realized_pct(self) -> Decimal | None:
        cost = self.cost
        return self.position.realized_pnl / cost * 100 if cost else None

    @property
    def unrealized_pnl(self) -> Decimal | None:
        if self.mark is None or not self.position.is_open:
            return None
        return self.position.unrealized_pnl(self.mark)

    @property
    def last_action(self) -> PositionAction | None:
        return self.position.actions[-1] if self.position.actions else None


def percent(value: Decimal | None) -> str:
    return "n/a" if value is None else f"{value.quantize(Decimal('0.1')):+}%"


def action_line(action: PositionAction, strategy: str, name: Callable[[str], str] = str) -> str:
    """`10:02 trim 5 @ 2.00 (who)`; `name` renders an actor id (Discord shows a user id as a mention)."""
    who = name(action.actor) if action.actor else strategy
    return f"{action.ts.astimezone(MARKET_TZ):%H:%M} {action.kind.value} {action.qty} @ {action.price} ({who})"


def usd(value: float) -> str:
    """A dollar figure of the greeks at cents: $1,234.50 or -$80.00."""
    amount = cents(value)
    return f"-${-amount:,}" if amount < 0 else f"${amount:,}"


def greeks_lines(view: PositionView) -> list[str]:
    """Per contract (per share) and for the position, with where the figures come from; none for a closed
    position or one without figures."""
    reading, held = view.greeks, view.exposure
    if reading is None or held is None:
        return []
    g = reading.greeks
    return [
        f"greeks ({reading.source}) per contract: delta {g.delta:.3f} · gamma {g.gamma:.4f} · "
        f"theta {g.theta:.3f}/day · vega {g.vega:.3f}/vol pt · IV {g.iv:.1%}",
        f"position ({view.position.qty} contracts): delta {held.delta:,.1f} shares ({usd(held.dollar_delta)}) · "
        f"gamma {held.gamma:,.2f} · theta {usd(held.theta)}/day · vega {usd(held.vega)}/vol pt",
    ]


def render_text(view: PositionView) -> str:
    position = view.position
    status = position.status.value.upper()
    lines = [f"== {position.contract.label} | {status} | {position.strategy} | {position.position_id}"]
    if position.is_open:
        unrealized = view.unrealized_pnl
        marked = f" | mark {view.mark} | unrealized {money(unrealized)}" if unrealized is not None else ""
        lines.append(f"   open {position.qty} @ avg {position.avg_entry.quantize(Decimal('0.0001'))}{marked}")
    lines.append(f"   realized {money(position.realized_pnl)} ({percent(view.realized_pct)}), fees {position.fees}")
    lines.extend(f"   {line}" for line in greeks_lines(view))
    if view.last_action is not None:
        lines.append(f"   last: {action_line(view.last_action, position.strategy)}")
    if view.status_note:
        lines.append(f"   note: {view.status_note}")
    lines.append("   history: " + " | ".join(action_line(a, position.strategy) for a in position.actions))
    return "\n".join(lines)
