"""Imported at start-up by the `python -m bot` children of the Discord tests (this folder is on their PYTHONPATH): it
points discord.py at $OPTIONDESK_TEST_DISCORD_URL (a fake Discord on 127.0.0.1, or a closed port), never at Discord,
as `FakeDiscord.patch` does in the test process."""

import os

_url = os.environ.get("OPTIONDESK_TEST_DISCORD_URL")
if _url:
    import discord.gateway
    import discord.http
    import yarl

    discord.http.Route.BASE = f"{_url}/api/v10"
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(_url.replace("http://", "ws://", 1) + "/")
