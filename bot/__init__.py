"""optiondesk: a trade-desk bot for options traders on Discord.

This package must import nothing outside the standard library at its top level, so that
`python3 -m bot` can set up its own virtual environment before anything else is imported.
"""


def create_bot(*args: object, **kwargs: object) -> object:
    """Build the Discord bot without starting it (see `bot.discord.desk_bot.create_bot`); imports discord lazily."""
    from bot.discord.desk_bot import create_bot as build

    return build(*args, **kwargs)  # type: ignore[arg-type]
