"""Traders open and add from Discord, the safest path in the bot: a preview first (the contract, the estimated fill,
the premium at risk, the desk's limits, Confirm / Cancel), and only its Confirm sends the order, checked again then.

A preview is a one-shot ticket kept in memory under a random token, which its Confirm and Cancel buttons carry with
the preview's time (`DynamicItem`s: a press after the timeout or after a restart is still answered, in a sentence).
The first Confirm takes the ticket, so two Confirms of one preview open one position. Rights are checked when the
member asks and again at Confirm; the risk check runs at the preview and again at Confirm (in the order manager) on
the quote of that moment. Every refusal is one sentence and changes nothing.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import discord

from bot.discord.embeds import NO_MENTIONS
from bot.discord.errors import answer_error, refusal
from bot.discord.open_cards import preview_embed
from bot.discord.rights import require_trader
from bot.discord.ui import actor_of
from bot.options.amounts import limit_price, whole_contracts
from bot.options.chain import ChainSource
from bot.options.contracts import OptionContract, Right
from bot.options.errors import TradeError, shown
from bot.options.market_hours import trading_day
from bot.options.orders import OrderRequest, Side
from bot.options.positions import MANUAL_STRATEGY, Position, Source
from bot.options.risk import RiskCheck, dollars, premium_at_risk, realized_on
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.discord.desk_bot import OptionDeskBot
    from bot.runtime.desk import Desk

_RIGHTS = {
    "c": Right.CALL,
    "call": Right.CALL,
    "calls": Right.CALL,
    "p": Right.PUT,
    "put": Right.PUT,
    "puts": Right.PUT,
}
_PREVIEWING = "preview"  # the id of the position an opening's preview prices (none exists yet)


@dataclass(frozen=True, slots=True)
class Ticket:
    """What a trader asked to buy, checked: an opening, or an add (`position_id`)."""

    contract: OptionContract
    qty: int
    limit: Decimal | None
    strategy: str
    position_id: str | None
    user_id: int


@dataclass(frozen=True, slots=True)
class Preview:
    ticket: Ticket
    fill: Decimal  # the estimated fill per share, from the current quote
    premium: Decimal  # what the buy puts at risk: fill x contracts x multiplier
    limits: tuple[str, ...]  # the desk's limits this buy is held to, with where it would leave each
    at: datetime  # on the desk's clock


class Tickets:
    """Previews waiting for their Confirm, by token; one taken is gone, so it can send one order at most."""

    def __init__(self) -> None:
        self._waiting: dict[str, tuple[Preview, datetime]] = {}

    def put(self, preview: Preview, expires: datetime) -> str:
        # Expired ones are dropped here: their buttons answer from their custom ids alone.
        self._waiting = {t: w for t, w in self._waiting.items() if w[1] > preview.at}
        token = secrets.token_urlsafe(9)
        self._waiting[token] = (preview, expires)
        return token

    def peek(self, token: str) -> Preview | None:
        waiting = self._waiting.get(token)
        return None if waiting is None else waiting[0]

    def take(self, token: str) -> Preview | None:
        waiting = self._waiting.pop(token, None)
        return None if waiting is None else waiting[0]


def _bot(interaction: discord.Interaction) -> OptionDeskBot:
    return interaction.client  # type: ignore[return-value]


# --- what the trader typed ------------------------------------------------------------------------------------------


def parse_expiry(value: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise TradeError(f"{shown(value)} is not an expiry (a date such as 2026-11-27).") from None


def parse_strike(value: str) -> Decimal:
    try:
        strike = Decimal(value.strip())
    except InvalidOperation:
        strike = Decimal(0)
    if not strike.is_finite() or strike <= 0 or strike > 100_000:
        raise TradeError(f"{shown(value)} is not a strike (a price such as 600 or 602.5).")
    return strike


def parse_right(value: str) -> Right:
    right = _RIGHTS.get(value.strip().lower())
    if right is None:
        raise TradeError(f"{shown(value)} is not call or put.")
    return right


def strategy_of(settings: Settings, value: str | None) -> str:
    """The strategy a new position is handed to: a configured one by name, or manual (none)."""
    name = (value or "").strip()
    if not name or name.lower() == MANUAL_STRATEGY:
        return MANUAL_STRATEGY
    names = [s.name for s in settings.strategies]
    if name not in names:
        listed = ", ".join(names) or "none is configured"
        raise TradeError(f"There is no strategy {shown(name)} ({listed}); leave it empty for a manual position.")
    return name


def chain_of(desk: Desk) -> ChainSource:
    if desk.chain is None:
        raise TradeError("This desk has no option chain to open from.")
    return desk.chain


async def opening(
    desk: Desk, settings: Settings, user_id: int, *, underlying: str, expiry: str, strike: str, right: str, **asked: Any
) -> Ticket:
    """An opening as typed (`asked`: qty, limit, strategy), checked against what is listed; TradeError otherwise."""
    qty = whole_contracts(asked["qty"])
    limit = limit_price(asked["limit"]) if asked.get("limit") not in (None, "") else None
    strategy = strategy_of(settings, asked.get("strategy"))
    when, at, side = parse_expiry(expiry), parse_strike(strike), parse_right(right)
    listed = await chain_of(desk).chain(underlying, when, around=at, width=0)
    row = listed.row(at, side)
    if row is None:
        wanted = f"{listed.underlying} {when.isoformat()} {at.normalize():f}{side.value}"
        raise TradeError(f"{wanted} is not listed; /chain {listed.underlying} {when.isoformat()} shows the strikes.")
    return Ticket(row.contract, qty, limit, strategy, None, user_id)


def adding(desk: Desk, user_id: int, position_id: str, qty: object) -> Ticket:
    contracts = whole_contracts(qty)
    position = desk.manager.get(position_id.strip())
    if not position.is_open:
        raise TradeError(f"Position {position.contract.label} ({position.position_id}) is closed; nothing to add to.")
    return Ticket(position.contract, contracts, None, position.strategy, position.position_id, user_id)


# --- the preview, and the Confirm ----------------------------------------------------------------------------------


def price_it(desk: Desk, ticket: Ticket) -> Preview:
    """What the buy would cost now and the limits it is held to; TradeError (the risk check's sentence, or one on the
    quote) when it must not go. Nothing is sent: the contract is only quoted from now on."""
    contract, now = ticket.contract, desk.clock()
    desk.feed.subscribe([contract.symbol])
    quote = desk.quotes.get(contract.symbol)
    if quote is None:
        raise TradeError(f"There is no quote for {contract.label} yet; try again in a moment.")
    problem = desk.quotes.problem(contract.symbol, now)
    if problem is not None:
        raise TradeError(f"Not buying {contract.label}: {problem}.")
    position = _bought_into(desk, ticket)
    request = OrderRequest(_PREVIEWING, position.position_id, contract, Side.BUY, ticket.qty, ticket.limit)
    fill = desk.estimate(request) if desk.estimate is not None else None
    if fill is None:
        raise TradeError(f"There is no usable quote for {contract.label}; nothing was sent.")
    if ticket.limit is not None and fill > ticket.limit:
        # The paper executor would reject it and a broker's order would end unfilled: a preview must not offer it.
        raise TradeError(
            f"Not buying {contract.label}: it would fill at {fill} now, above your limit {ticket.limit}; "
            "nothing was sent."
        )
    positions = desk.manager.all_positions()
    limits: tuple[str, ...] = ()
    if desk.risk is not None:
        desk.risk.check(position, Side.BUY, ticket.qty, positions, now)
        limits = limit_lines(desk.risk, position, ticket.qty, fill, positions, now, desk.zone)
    return Preview(ticket, fill, fill * ticket.qty * contract.multiplier, limits, now)


def _bought_into(desk: Desk, ticket: Ticket) -> Position:
    if ticket.position_id is None:
        return Position(_PREVIEWING, ticket.contract, ticket.strategy)
    position = desk.manager.get(ticket.position_id)
    if not position.is_open:
        raise TradeError(f"Position {position.contract.label} ({position.position_id}) is closed; nothing to add to.")
    return position


def limit_lines(
    risk: RiskCheck, position: Position, qty: int, fill: Decimal, positions: list[Position], now: datetime, zone: Any
) -> tuple[str, ...]:
    """Each limit the buy is held to, with where the buy would leave it."""
    limits, premium = risk.limits, fill * qty * position.contract.multiplier
    held = [p for p in positions if p.is_open]
    lines = []
    if limits.max_contracts_per_order is not None:
        lines.append(f"contracts per order: {qty} of {limits.max_contracts_per_order}")
    if limits.max_premium_per_position is not None:
        after = premium_at_risk(position) + premium
        lines.append(f"premium in this position: {dollars(after)} of {dollars(limits.max_premium_per_position)}")
    if limits.max_premium_total is not None:
        after = sum((premium_at_risk(p) for p in held), Decimal(0)) + premium
        lines.append(f"premium across the desk: {dollars(after)} of {dollars(limits.max_premium_total)}")
    if limits.max_open_positions is not None and not position.actions:
        lines.append(f"open positions: {len(held) + 1} of {limits.max_open_positions}")
    if limits.max_daily_loss is not None:
        today = realized_on(positions, trading_day(now, zone))
        lines.append(f"realized today: {dollars(today)}; trading stops at a loss of {dollars(limits.max_daily_loss)}")
    if limits.max_spread_pct is not None:
        lines.append(f"spread at most {limits.max_spread_pct.normalize():f}% of mid")
    return tuple(lines)


async def confirm(interaction: discord.Interaction, token: str, asked_at: datetime) -> str:
    """Send the previewed order, once; the sentence the trader reads."""
    bot = _bot(interaction)
    require_trader(interaction, bot.settings)  # a role removed since the preview counts
    desk, timeout = bot.desk, timedelta(seconds=bot.settings.discord.preview_seconds)
    preview = bot.tickets.peek(token)
    if desk.clock() - (preview.at if preview else asked_at) > timeout:
        bot.tickets.take(token)
        seconds = bot.settings.discord.preview_seconds
        raise TradeError(f"This preview expired ({seconds} s); nothing was sent. Ask again for a fresh one.")
    preview = bot.tickets.take(token)
    if preview is None:
        raise TradeError(
            "This preview was already confirmed or cancelled (or the bot restarted); nothing more was sent."
        )
    ticket = preview.ticket
    price_it(desk, ticket)  # the quote and the limits as they are now (the order manager checks risk again)
    actor = actor_of(interaction)
    if ticket.position_id is None:
        position = await desk.manager.open_position(
            ticket.contract,
            ticket.qty,
            strategy=ticket.strategy,
            source=Source.MANUAL,
            actor=actor,
            limit_price=ticket.limit,
        )
    else:
        position = await desk.manager.add(ticket.position_id, ticket.qty, source=Source.MANUAL, actor=actor)
    return bought(position, ticket)


def bought(position: Position, ticket: Ticket) -> str:
    """What the trader reads once the order is done: what it bought, at what, and who manages the position now."""
    order = position.actions[-1].order_id
    fills = [a for a in position.actions if a.order_id == order]
    got = sum(a.qty for a in fills)
    price = sum((a.price * a.qty for a in fills), Decimal(0)) / got
    rest = f"; the other {ticket.qty - got} were not filled" if got < ticket.qty else ""
    managed = (
        "manual: no automatic exits" if position.strategy == MANUAL_STRATEGY else f"its exits: {position.strategy}"
    )
    return (
        f"Bought {got} {position.contract.label} @ {price.quantize(Decimal('0.0001')).normalize():f}{rest}. "
        f"Position `{position.position_id}` holds {position.qty} ({managed})."
    )


# --- the buttons under a preview -----------------------------------------------------------------------------------

_TICKET = r"tkt:(?P<what>ok|no):(?P<token>[\w-]+):(?P<at>\d{1,12})"


def _ticket_id(what: str, token: str, at: datetime) -> str:
    return f"tkt:{what}:{token}:{int(at.timestamp())}"


async def _someone_elses(interaction: discord.Interaction, token: str) -> bool:
    """A press on another member's preview (Discord shows it to its owner only, but a custom id can be sent by anyone)
    is answered on its own, leaving the preview and its buttons to their owner."""
    preview = _bot(interaction).tickets.peek(token)
    if preview is None or preview.ticket.user_id == interaction.user.id:
        return False
    await answer_error(interaction, TradeError("This preview is someone else's; ask for your own with /open or /add."))
    return True


class ConfirmTicket(discord.ui.DynamicItem[discord.ui.Button[Any]], template=_TICKET.replace("ok|no", "ok")):
    def __init__(self, token: str, at: datetime) -> None:
        button = discord.ui.Button[Any](
            label="Confirm", style=discord.ButtonStyle.success, custom_id=_ticket_id("ok", token, at)
        )
        super().__init__(button)
        self.token, self.at = token, at

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str]
    ) -> ConfirmTicket:
        return cls(match["token"], datetime.fromtimestamp(int(match["at"]), tz=UTC))

    async def callback(self, interaction: discord.Interaction) -> None:
        if await _someone_elses(interaction, self.token):
            return
        # Discord waits 3 s for an answer and an order at a broker may take longer: answered now, told after.
        await interaction.response.defer()
        try:
            result = await confirm(interaction, self.token, self.at)
        except Exception as error:
            # The refusal replaces the preview, so no Confirm is left behind to press again.
            result = refusal(interaction, error)
        await interaction.edit_original_response(content=result, embed=None, view=None)


class CancelTicket(discord.ui.DynamicItem[discord.ui.Button[Any]], template=_TICKET.replace("ok|no", "no")):
    def __init__(self, token: str, at: datetime) -> None:
        button = discord.ui.Button[Any](
            label="Cancel", style=discord.ButtonStyle.secondary, custom_id=_ticket_id("no", token, at)
        )
        super().__init__(button)
        self.token = token

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str]
    ) -> CancelTicket:
        return cls(match["token"], datetime.fromtimestamp(int(match["at"]), tz=UTC))

    async def callback(self, interaction: discord.Interaction) -> None:
        if await _someone_elses(interaction, self.token):
            return
        bot = _bot(interaction)
        try:
            require_trader(interaction, bot.settings)
            bot.tickets.take(self.token)
            result = "Cancelled; nothing was bought."
        except Exception as error:
            result = refusal(interaction, error)
        await interaction.response.edit_message(content=result, embed=None, view=None)


async def show_preview(interaction: discord.Interaction, ticket: Ticket) -> None:
    """Answer with the preview and its Confirm / Cancel (ephemeral); the buy is priced and checked first."""
    bot = _bot(interaction)
    preview = price_it(bot.desk, ticket)
    expires = preview.at + timedelta(seconds=bot.settings.discord.preview_seconds)
    token = bot.tickets.put(preview, expires)
    view = discord.ui.View(timeout=None)
    view.add_item(ConfirmTicket(token, preview.at))
    view.add_item(CancelTicket(token, preview.at))
    text, embed = "Nothing is sent until you confirm.", preview_embed(preview, expires)
    if interaction.response.is_done():  # /open answered at once while it looked the contract up
        await interaction.followup.send(text, embed=embed, view=view, ephemeral=True, allowed_mentions=NO_MENTIONS)
    else:
        await interaction.response.send_message(
            text, embed=embed, view=view, ephemeral=True, allowed_mentions=NO_MENTIONS
        )


class AddQuantity(discord.ui.Modal, title="Add to the position"):
    """What the Add button under a position's message asks: how many contracts."""

    qty: discord.ui.TextInput[AddQuantity] = discord.ui.TextInput(
        label="Contracts to add", custom_id="qty", max_length=6
    )

    def __init__(self, position_id: str) -> None:
        super().__init__()
        self.position_id = position_id

    async def on_submit(self, interaction: discord.Interaction) -> None:
        try:
            bot = _bot(interaction)
            require_trader(interaction, bot.settings)
            await show_preview(interaction, adding(bot.desk, interaction.user.id, self.position_id, self.qty.value))
        except Exception as error:
            await answer_error(interaction, error)
