"""Bad input: hypothesis-generated slash command values through the real discord.py client and the fake Discord
(huge, negative, zero, NaN/inf text, unicode, very long strings, mention and markdown injection), unknown and stale
position ids, buttons of closed positions; malformed ledger lines; malformed settings. Each gets a clear answer or
error, and nothing is traded or written.

The wire-level values are drawn by hypothesis up front and then sent through one bot (a bot per example would cost
seconds each); a failure names the value.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from bot import cli
from bot.options.amounts import MAX_CONTRACTS
from bot.options.trade_ledger import LedgerError, TradeEvent, parse_line, read_ledger
from bot.paths import ledger_path
from bot.settings import CONFIG_FILE_VARIABLE, Settings, SettingsError, load_settings
from tests.core.factories import ledger_line
from tests.discord.fake_discord import EPHEMERAL
from tests.discord.wire import CHANNEL_ID, GUILD_ID, ON_VIRTUAL_TIME, TRADER_ID, Wire, contract, desk_on_fake

INJECTIONS = [
    "@everyone",
    "@here",
    f"<@{TRADER_ID}>",
    "<@&1>",
    "**bold**",
    "`code`",
    "||spoiler||",
    "# head",
    "[a](http://x)",
]
NUMBER_WORDS = ["NaN", "nan", "inf", "-inf", "Infinity", "1e999", "", " ", "٣", "5.5", "0x10", "1_0", "²", "10**9"]
EXAMPLES = 40  # per kind of value


def drawn(strategy: st.SearchStrategy[Any], count: int = EXAMPLES) -> list[Any]:
    """`count` values hypothesis generates from `strategy` (its generation phase: varied, edge cases first)."""
    found: list[Any] = []

    @settings(
        max_examples=count,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(value: Any) -> None:
        found.append(value)

    collect()
    return found


# Discord's JSON is valid UTF-8: it never carries a lone surrogate (discord.py's JSON reader refuses one).
DISCORD_CHARACTERS = st.characters(exclude_categories=["Cs"])


def junk_text(max_size: int = 7000) -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(DISCORD_CHARACTERS, max_size=max_size),
        st.sampled_from(INJECTIONS + NUMBER_WORDS),
        st.builds(lambda a, b: a + b, st.sampled_from(INJECTIONS), st.text(DISCORD_CHARACTERS, max_size=50)),
        st.integers(min_value=2000, max_value=7000).map(lambda n: "x" * n),
    )


# What the desk documents it takes for an amount: plain ASCII decimal text (or a number), in range.
ACCEPTED_TEXT = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d{1,3})?", re.ASCII)


def acceptable(value: Any, largest: int, whole: bool) -> bool:
    if isinstance(value, str):
        if not ACCEPTED_TEXT.fullmatch(value.strip()):
            return False
        value = Decimal(value.strip())
    number = Decimal(value) if isinstance(value, int | float) else value
    return number.is_finite() and 0 < number <= largest and (not whole or number == number.to_integral_value())


def bad_amount(largest: int, *, whole: bool) -> st.SearchStrategy[Any]:
    """Values a quantity or percentage option must never accept: out of range, not whole, not a number."""
    return st.one_of(
        st.integers(max_value=0),
        st.integers(min_value=largest + 1, max_value=10**40),
        # JSON has no NaN or infinities (discord.py may parse with orjson, which refuses them): as text.
        st.floats(allow_nan=True, allow_infinity=True).map(lambda f: f if math.isfinite(f) else str(f)),
        junk_text(200),
    ).filter(lambda value: not acceptable(value, largest, whole))


def assert_clear_and_harmless(answer: dict[str, Any], what: str) -> None:
    data = answer["data"]
    assert answer["type"] == 4 and data["flags"] & EPHEMERAL, what
    assert 0 < len(data["content"]) <= 200 and "\n" not in data["content"], (what, data["content"])
    assert data["allowed_mentions"] == {"parse": []}, what
    # Whatever was typed is quoted with Discord's formatting escaped: no live mention, markdown or code span.
    assert not re.search(r"(?<!\\)[@`*|<]", data["content"]), (what, data["content"])
    assert not data["content"].startswith("Something went wrong"), (what, data["content"])


async def ask(wire: Wire, command: str, options: dict[str, Any]) -> dict[str, Any]:
    interaction = await wire.fake.send_slash(GUILD_ID, CHANNEL_ID, TRADER_ID, command, options)
    return await interaction.response()


@ON_VIRTUAL_TIME
async def test_generated_slash_values_get_a_clear_answer_and_trade_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    async with desk_on_fake(monkeypatch, tmp_path) as wire:
        manager = wire.bot.desk.manager
        open_one, closed_one = contract(450), contract(455)
        for traded in (open_one, closed_one):
            wire.quote(traded, "1.00", "1.10")
        position = await manager.open_position(open_one, 10, strategy="orb")
        closed = await manager.open_position(closed_one, 10, strategy="orb")
        await manager.close(closed.position_id)
        await wire.deliver()
        known = {position.position_id, closed.position_id}
        ledger = wire.ledger_bytes()
        sends: list[tuple[str, dict[str, Any]]] = []
        for text in drawn(junk_text().filter(lambda t: t.strip() not in known)):
            sends += [
                ("position", {"position": text}),
                ("close", {"position": text}),
                ("trim", {"position": text, "qty": 1}),
            ]
        for value in drawn(bad_amount(100, whole=False)):
            sends.append(("trim", {"position": position.position_id, "percent": value}))
        for value in drawn(bad_amount(MAX_CONTRACTS, whole=True)):
            sends.append(("trim", {"position": position.position_id, "qty": value}))
        sends += [
            ("trim", {"position": position.position_id, "qty": 11}),  # more than is open
            ("trim", {"position": position.position_id, "qty": 1, "percent": 50}),  # both
            ("trim", {"position": position.position_id}),  # neither
            ("trim", {"position": closed.position_id, "qty": 1}),  # a stale id: closed
            ("close", {"position": closed.position_id}),
        ]

        for command, options in sends:
            assert_clear_and_harmless(await ask(wire, command, options), f"/{command} {options!r:.200}")

        assert wire.ledger_bytes() == ledger
        assert manager.get(position.position_id).qty == 10 and len(manager.all_positions()) == 2
        print(json.dumps({"bad_slash_values_tried": len(sends)}))


@ON_VIRTUAL_TIME
async def test_buttons_of_a_closed_or_unknown_position_are_refused_at_the_click(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    async with desk_on_fake(monkeypatch, tmp_path) as wire:
        fake, manager = wire.fake, wire.bot.desk.manager
        position, message = await wire.open_shown(contract(450), 10)
        # Closed while its message still shows the buttons (Discord was slow to take the edit).
        await manager.close(position.position_id)
        # And a message whose button names a position the desk never had (an earlier install, a crafted message).
        crafted = fake.add_message(CHANNEL_ID, created_at=datetime.now(UTC), embeds=[{"title": "old"}])
        crafted.components = [
            {"type": 1, "components": [{"type": 2, "style": 4, "label": "Close", "custom_id": "pos:close:pos-gone"}]}
        ]
        ledger = wire.ledger_bytes()

        for on, custom_id in (
            (message, f"pos:trim:25:{position.position_id}"),
            (message, f"pos:close:{position.position_id}"),
            (crafted, "pos:close:pos-gone"),
        ):
            answer = await (await fake.click(GUILD_ID, CHANNEL_ID, TRADER_ID, on.id, custom_id)).response()
            assert_clear_and_harmless(answer, custom_id)
            assert not answer["data"].get("components"), "a Confirm was offered for a position that cannot be sold"
        assert wire.ledger_bytes() == ledger


# ---------------------------------------------------------------------------------------------------------------
# Malformed ledger lines


BROKEN_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20),
    st.sampled_from(["NaN", "Infinity", "-1", "0", "", "buy", "2026-13-45", "x" * 500]),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(
    field=st.sampled_from(sorted(ledger_line())),
    value=BROKEN_VALUES,
    mangle=st.sampled_from(["replace", "drop", "truncate", "bytes"]),
    cut=st.integers(0, 400),
    noise=st.binary(max_size=40),
)
def test_a_malformed_ledger_line_is_a_ledger_error_naming_its_line_or_still_the_same_event(
    field: str, value: Any, mangle: str, cut: int, noise: bytes
) -> None:
    raw = ledger_line()
    if mangle == "replace":
        raw[field] = value
        line = json.dumps(raw).encode()
    elif mangle == "drop":
        del raw[field]
        line = json.dumps(raw).encode()
    elif mangle == "truncate":
        line = json.dumps(raw).encode()[:cut]
    else:
        full = json.dumps(raw).encode()
        line = full[:cut] + noise + full[cut:]
    try:
        event = parse_line(Path("trade_events.jsonl"), 7, line)
    except LedgerError as error:
        assert str(error).startswith("trade_events.jsonl: line 7 is not a valid trade event (")
        return
    # Accepted: only what reads as a valid event (e.g. a value of the right type, an ignored extra field).
    assert isinstance(event, TradeEvent) and event.qty > 0 and event.price.is_finite()


def test_ledger_verify_names_a_malformed_middle_line_and_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = ledger_path(tmp_path)
    path.parent.mkdir(parents=True)
    good = json.dumps(ledger_line())
    path.write_text(f"{good}\n{good.replace('1.10', 'one dollar ten')}\n{good}\n")
    before = path.read_bytes()

    code = cli.main(["ledger", "verify", "--storage", str(tmp_path)])

    out = capsys.readouterr().out
    assert code == 1 and "line 2 is not a valid trade event (price:" in out
    with pytest.raises(LedgerError, match="line 2"):
        read_ledger(path)
    assert cli.main(["positions", "--storage", str(tmp_path)]) == 1  # refuses to guess, in one line
    assert path.read_bytes() == before


# ---------------------------------------------------------------------------------------------------------------
# Malformed settings: environment variables and the TOML file

SETTING_VARS = [
    "OPTIONDESK_MARKET__SEED",
    "OPTIONDESK_MARKET__TICK_SECONDS",
    "OPTIONDESK_PAPER__FEE_PER_CONTRACT",
    "OPTIONDESK_WATCHER__THROTTLE_SECONDS",
    "OPTIONDESK_DISCORD__GUILD_ID",
    "OPTIONDESK_DISCORD__TRADER_ROLE_IDS",
    "OPTIONDESK_ORDER_TIMEOUT_SECONDS",
    "OPTIONDESK_TIMEZONE",
    "OPTIONDESK_STRATEGIES",
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.sampled_from(SETTING_VARS),
    value=st.one_of(
        st.sampled_from([*NUMBER_WORDS, "-5", "[", "{}", "[0]", "Mars/Olympus"]),
        # An environment holds no NUL and, being bytes, no lone surrogate.
        st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=30),
    ),
)
def test_a_malformed_setting_in_the_environment_is_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    with monkeypatch.context() as env:
        env.setenv(name, value)
        try:
            loaded = load_settings()
        except SettingsError as error:
            text = str(error)
            section = name.removeprefix("OPTIONDESK_").split("__")[0].lower()
            assert text.startswith(f"bad setting {section}") and "\n" not in text, text
            return
    assert isinstance(loaded, Settings)  # some generated values are valid settings; then they must load


@pytest.mark.parametrize(
    "toml",
    [
        "[market\nseed = 3\n",  # broken syntax
        "[market]\nseed = 'three'\n",
        "[paper]\nfee_per_contract = -1\n",
        "[discord]\ntoken = 'in the file'\n",  # secrets never go in the file: an unknown key
        "[[strategies]]\nkind = 'martingale'\nname = 'x'\nunderlying = 'SPY'\n",
    ],
)
def test_a_malformed_settings_file_stops_the_start_in_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str], toml: str
) -> None:
    config = tmp_path / "optiondesk.toml"
    config.write_text(toml)
    monkeypatch.setenv(CONFIG_FILE_VARIABLE, str(config))

    code = cli.main(["positions", "--storage", str(tmp_path / "storage")])

    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and err[0].startswith("optiondesk: bad setting"), err
    assert "in the file" not in err[0]
    assert not ledger_path(tmp_path / "storage").exists()
