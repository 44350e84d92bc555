"""What a member reads when a command or button did nothing: a refusal or a trade error in one ephemeral sentence,
anything else logged behind a generic one."""

from __future__ import annotations

import logging

import discord
from discord import app_commands

from bot.discord.rights import NotAllowed
from bot.discord.ui import reply
from bot.options.errors import TradeError

log = logging.getLogger(__name__)

GENERIC_FAILURE = "Something went wrong on the desk; it is logged. Check /position before trying again."


async def answer_error(interaction: discord.Interaction, error: BaseException) -> None:
    """Tell the member why nothing happened; log what happened either way."""
    await reply(interaction, refusal(interaction, error))


def refusal(interaction: discord.Interaction, error: BaseException) -> str:
    """The sentence that tells the member why nothing happened, the refusal (or the failure) logged."""
    who = f"{interaction.user} ({interaction.user.id})"
    if isinstance(error, TradeError | NotAllowed):
        log.info("refused %s for %s: %s", _what(interaction), who, error)
        text = str(error)
    elif isinstance(error, app_commands.CheckFailure):
        log.info("refused %s for %s: a check failed", _what(interaction), who)
        text = "You may not do that here."
    elif isinstance(error, app_commands.TransformerError):
        log.info("refused %s for %s: an option value that cannot be read", _what(interaction), who)
        text = "One of the values given cannot be read; nothing was done."
    else:
        log.error("%s for %s failed", _what(interaction), who, exc_info=error)
        text = GENERIC_FAILURE
    return text


def _what(interaction: discord.Interaction) -> str:
    if interaction.command is not None:
        return f"/{interaction.command.qualified_name}"
    data: dict[str, object] = dict(interaction.data or {})
    custom_id = data.get("custom_id")
    return f"button {custom_id}" if custom_id else "interaction"
