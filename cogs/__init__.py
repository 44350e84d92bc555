"""discord.py extensions, one per concern; each parses, checks rights, calls a desk service, renders."""
