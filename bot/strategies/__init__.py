"""Trading strategies that run inside the bot."""
