"""optiondesk: a trade-desk bot for options traders on Discord.

This package must import nothing outside the standard library at its top level, so that
`python3 -m bot` can set up its own virtual environment before anything else is imported.
The Discord bot is built by `bot.discord.desk_bot.create_bot`; the layout is in README.md (Layout).
"""
