"""The simcord desk of the Discord tests, with the fixtures it is built from, found by pytest here too."""

from tests.discord.conftest import bots, clock, desk, simcord_bot, storage

__all__ = ["bots", "clock", "desk", "simcord_bot", "storage"]
