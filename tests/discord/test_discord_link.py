"""The link to Discord, piece by piece: which faults are retried and how each is named, the link's state as the
operator reads it, and discord.py's reconnect tracebacks folded into one line."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import aiohttp
import discord
import pytest

from bot.discord.link import LinkState, OneLineReconnects, why_unreachable

T0 = datetime(2026, 11, 25, 14, 30, 5, tzinfo=UTC)


def answered(status: int, reason: str) -> discord.HTTPException:
    return discord.HTTPException(SimpleNamespace(status=status, reason=reason), {"message": reason, "code": 0})  # type: ignore[arg-type]


def connecting_to(host: str, port: int, error: OSError) -> aiohttp.ClientConnectorError:
    key: Any = SimpleNamespace(host=host, port=port, ssl=True)
    return aiohttp.ClientConnectorError(key, error)


@pytest.mark.parametrize(
    ("error", "why"),
    [
        (
            connecting_to("discord.com", 443, ConnectionRefusedError(111, "refused")),
            "connection refused by discord.com:443",
        ),
        (
            connecting_to("discord.com", 443, OSError(101, "Network is unreachable")),
            "cannot connect to discord.com:443: Network is unreachable",
        ),
        (answered(502, "Bad Gateway"), "Discord answered 502 Bad Gateway"),
        (answered(429, "Too Many Requests"), "Discord answered 429 Too Many Requests"),  # Cloudflare's ban: it lifts
        (TimeoutError(), "no answer in time"),
        (aiohttp.ServerDisconnectedError(), "connection failed: ServerDisconnectedError Server disconnected"),
        (answered(403, "Forbidden"), None),
        (answered(404, "Not Found"), None),
        (discord.LoginFailure("Improper token has been passed."), None),
        (ValueError("a bug"), None),
    ],
)
def test_what_is_retried_and_how_it_is_named(error: BaseException, why: str | None) -> None:
    assert why_unreachable(error) == why


def test_a_name_that_does_not_resolve_is_named() -> None:
    key: Any = SimpleNamespace(host="discord.com", port=443, ssl=True)
    error = aiohttp.ClientConnectorDNSError(key, OSError(-2, "Name or service not known"))

    assert why_unreachable(error) == "cannot resolve discord.com"


def test_the_link_state_keeps_when_it_went_down_until_it_is_back() -> None:
    now = [T0]
    notes: list[str] = []
    link = LinkState(notes.append, clock=lambda: now[0])

    link.connecting()
    link.unreachable("connection refused by discord.com:443")
    now[0] += timedelta(seconds=8)
    link.unreachable("connection refused by discord.com:443")  # the same: not noted again
    link.unreachable("cannot resolve discord.com")  # another reason, the same outage
    link.connected()
    now[0] += timedelta(hours=1)
    link.disconnected()

    assert notes == [
        "connecting",
        "unreachable since 2026-11-25 14:30:05 UTC (connection refused by discord.com:443), retrying",
        "unreachable since 2026-11-25 14:30:05 UTC (cannot resolve discord.com), retrying",
        "connected",
        "disconnected since 2026-11-25 15:30:13 UTC, reconnecting",
    ]
    assert link.text == notes[-1]


def test_a_gateway_reconnect_is_one_line_without_its_traceback() -> None:
    try:
        raise connecting_to("gateway.discord.gg", 443, ConnectionRefusedError(111, "refused"))
    except aiohttp.ClientConnectorError:
        exc_info = sys.exc_info()
    # As discord.py's Client.connect logs it: `_log.exception('Attempting a reconnect in %.2fs', retry)`.
    record = logging.LogRecord(
        "discord.client", logging.ERROR, "client.py", 1, "Attempting a reconnect in %.2fs", (4.0,), exc_info
    )

    assert OneLineReconnects().filter(record)

    assert record.getMessage() == (
        "Discord gateway unreachable (connection refused by gateway.discord.gg:443); reconnecting in 4 s"
    )
    assert (record.levelname, record.exc_info) == ("WARNING", None)
    assert "Traceback" not in logging.Formatter().format(record)
