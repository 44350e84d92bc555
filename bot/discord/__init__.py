"""The Discord adapter: the bot, its message board, embeds, buttons, rights and the link to Discord. It imports the
core; nothing outside it and cogs/ imports discord."""
