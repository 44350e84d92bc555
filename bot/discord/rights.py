"""Who may do what, checked in the bot at the moment of each action from the configured role ids.

`default_permissions` only hides commands in the Discord client; these checks are what protects. They
read the member's roles from the interaction itself, so a role removed a minute ago counts at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import discord
from discord import app_commands

from bot.settings import Settings

T = TypeVar("T")


class NotAllowed(app_commands.CheckFailure):
    """A refusal; the message is the sentence the member reads."""


def _roles(interaction: discord.Interaction) -> set[int]:
    user = interaction.user
    return {role.id for role in user.roles} if isinstance(user, discord.Member) else set()


def _in_our_server(interaction: discord.Interaction, settings: Settings) -> None:
    if interaction.guild_id is None or interaction.guild_id != settings.discord.guild_id:
        raise NotAllowed("optiondesk only works in its own server, not here.")


def require_trader(interaction: discord.Interaction, settings: Settings) -> None:
    _in_our_server(interaction, settings)
    allowed = set(settings.discord.trader_role_ids) | set(settings.discord.admin_role_ids)
    if not _roles(interaction) & allowed:
        raise NotAllowed("You need a trader role to use optiondesk.")


def is_trader(interaction: discord.Interaction, settings: Settings) -> bool:
    """For what cannot refuse with a sentence (autocomplete): may this member see the desk's positions?"""
    try:
        require_trader(interaction, settings)
    except NotAllowed:
        return False
    return True


def require_admin(interaction: discord.Interaction, settings: Settings) -> None:
    _in_our_server(interaction, settings)
    if not _roles(interaction) & set(settings.discord.admin_role_ids):
        raise NotAllowed("Only desk admins may do that.")


def _settings_of(interaction: discord.Interaction) -> Settings:
    settings: Settings = interaction.client.settings  # type: ignore[attr-defined]
    return settings


def _check(rule: Callable[[discord.Interaction, Settings], None]) -> Callable[[T], T]:
    def predicate(interaction: discord.Interaction) -> bool:
        rule(interaction, _settings_of(interaction))
        return True

    decorator: Callable[[T], T] = app_commands.check(predicate)
    return decorator


def traders_only() -> Callable[[Any], Any]:
    """A command check: members with a trader (or admin) role, in the bot's own server."""
    return _check(require_trader)


def admins_only() -> Callable[[Any], Any]:
    return _check(require_admin)
