"""The replay feed: recorded quotes from CSV and JSONL, exact values, clear errors, paced by a fake sleep."""

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from bot.options.quotes import Quote, QuoteCache
from bot.options.replay_feed import ReplayFeed, load_quotes

CSV = """\
ts,symbol,bid,ask,last,bid_size,ask_size
2026-11-27T09:30:00-05:00,SPY,450.10,450.12,450.11,300,500
2026-11-27T14:30:02+00:00,SPY261127C00450000,1.10,1.20,,12,
2026-11-27T14:30:07Z,SPY   261127C00450000,,,1.155,,
"""

SPY_QUOTE = Quote(
    bid=Decimal("450.10"),
    ask=Decimal("450.12"),
    last=Decimal("450.11"),
    bid_size=300,
    ask_size=500,
    ts=datetime(2026, 11, 27, 14, 30, tzinfo=UTC),
)
CALL = "SPY   261127C00450000"
EXPECTED = [
    ("SPY", SPY_QUOTE),
    (
        CALL,
        Quote(bid=Decimal("1.10"), ask=Decimal("1.20"), bid_size=12, ts=datetime(2026, 11, 27, 14, 30, 2, tzinfo=UTC)),
    ),
    (CALL, Quote(last=Decimal("1.155"), ts=datetime(2026, 11, 27, 14, 30, 7, tzinfo=UTC))),
]


def jsonl(*rows: dict | str) -> str:
    return "".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows)


JSONL = jsonl(
    {
        "ts": "2026-11-27T09:30:00-05:00",
        "symbol": "SPY",
        "bid": "450.10",
        "ask": "450.12",
        "last": "450.11",
        "bid_size": 300,
        "ask_size": 500,
    },
    "",  # blank lines are skipped
    # Written by hand: json.dumps would print 1.10 as 1.1.
    '{"ts": "2026-11-27T14:30:02+00:00", "symbol": "SPY261127C00450000", "bid": 1.10, "ask": 1.20, "bid_size": 12}',
    {"ts": "2026-11-27T14:30:07Z", "symbol": CALL, "bid": None, "last": "1.155", "ask_size": ""},
)


@pytest.mark.parametrize(("name", "text"), [("quotes.csv", CSV), ("quotes.jsonl", JSONL)])
def test_load_gives_exact_quotes_in_file_order(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)

    loaded = load_quotes(path)

    assert loaded == EXPECTED
    # Decimal, not float: 1.10 from a JSON number stays exactly 1.10.
    assert str(loaded[1][1].bid) == "1.10"
    assert all(quote.ts is not None and quote.ts.tzinfo is not None for _, quote in loaded)


@pytest.mark.parametrize(
    ("row", "line", "field"),
    [
        ("2026-11-27T14:30:00+00:00,SPY,abc,1,1,1,1", 3, "bid"),
        ("2026-11-27T14:30:00,SPY,1,1,1,1,1", 3, "ts"),  # no offset
        ("yesterday,SPY,1,1,1,1,1", 3, "ts"),
        (",SPY,1,1,1,1,1", 3, "ts"),
        ("2026-11-27T14:30:00+00:00,,1,1,1,1,1", 3, "symbol"),
        ("2026-11-27T14:30:00+00:00,SPY   261131C00450000,1,1,1,1,1", 3, "symbol"),  # 31 November
        ("2026-11-27T14:30:00+00:00,SPY,1,1,-1,1,1", 3, "last"),
        ("2026-11-27T14:30:00+00:00,SPY,1,1,NaN,1,1", 3, "last"),
        ("2026-11-27T14:30:00+00:00,SPY,1,1,1,2.5,1", 3, "bid_size"),
        ("2026-11-27T14:30:00+00:00,SPY,1,1,1,1,-3", 3, "ask_size"),
    ],
)
def test_a_malformed_csv_row_names_file_line_and_field(tmp_path, row, line, field):
    path = tmp_path / "bad.csv"
    path.write_text(CSV.splitlines()[0] + "\n" + CSV.splitlines()[1] + "\n" + row + "\n")

    with pytest.raises(ValueError) as raised:
        load_quotes(path)

    message = str(raised.value)
    assert f"bad.csv:{line}:" in message
    assert f"field {field!r}" in message


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"ts": "2026-11-27T14:30:00+00:00", "symbol": "SPY", "ask": "x"}', "field 'ask'"),
        ('{"ts": "2026-11-27T14:30:00+00:00", "symbol": "SPY", "bid_size": true}', "field 'bid_size'"),
        ('{"ts": "2026-11-27T14:30:00+00:00", "symbol": "SPY", "bid": [1]}', "field 'bid'"),
        ('{"symbol": "SPY"}', "field 'ts'"),
        ('{"ts": "2026-11-27T14:30:00+00:00", "symbol": "SPY"', "not valid JSON"),
        ('["2026-11-27T14:30:00+00:00", "SPY"]', "JSON object"),
    ],
)
def test_a_malformed_jsonl_line_names_its_line(tmp_path, line, expected):
    path = tmp_path / "bad.jsonl"
    path.write_text(JSONL + line + "\n")

    with pytest.raises(ValueError) as raised:
        load_quotes(path)

    assert "bad.jsonl:5:" in str(raised.value)  # three quotes and a blank line before it
    assert expected in str(raised.value)


def test_a_csv_without_the_required_columns_is_refused(tmp_path):
    path = tmp_path / "quotes.csv"
    path.write_text("time,ticker,bid\n2026-11-27T14:30:00+00:00,SPY,1\n")

    with pytest.raises(ValueError, match=r"quotes\.csv:1: .*'ts' or 'symbol'"):
        load_quotes(path)


def test_an_unknown_suffix_is_refused(tmp_path):
    path = tmp_path / "quotes.txt"
    path.write_text(CSV)
    with pytest.raises(ValueError, match=r"\.csv or \.jsonl"):
        load_quotes(path)


@pytest.mark.parametrize(("name", "text"), [("quotes.csv", CSV), ("quotes.jsonl", JSONL)])
def test_a_file_that_is_not_utf8_names_the_file_and_the_line(tmp_path, name, text):
    path = tmp_path / name
    lines = text.encode().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:2]) + "caf\xe9\n".encode("latin-1") + b"".join(lines[2:]))

    with pytest.raises(ValueError) as raised:
        ReplayFeed(path)

    assert str(raised.value) == f"{path}:3: not UTF-8 text (byte 0xe9); save the recording as UTF-8."


def test_a_missing_file_or_a_folder_is_named(tmp_path):
    with pytest.raises(ValueError) as missing:
        ReplayFeed(tmp_path / "missing.csv")
    (tmp_path / "recordings").mkdir()
    with pytest.raises(ValueError) as folder:
        ReplayFeed(tmp_path / "recordings")

    assert str(missing.value) == f"{tmp_path / 'missing.csv'}: no such replay file."
    assert str(folder.value) == f"{tmp_path / 'recordings'}: a folder, not a replay file."


def test_the_underlyings_are_the_tickers_the_recording_quotes(tmp_path):
    path = tmp_path / "quotes.csv"
    path.write_text(CSV)  # SPY and an SPY option

    assert ReplayFeed(path).underlyings == {"SPY"}


class FakeSleep:
    def __init__(self) -> None:
        self.pauses: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.pauses.append(seconds)


async def test_replay_sleeps_the_recorded_gaps_divided_by_speed(tmp_path):
    path = tmp_path / "quotes.csv"
    path.write_text(CSV)
    sleep = FakeSleep()
    cache = QuoteCache()
    pushed: list[tuple[str, Quote, int]] = []
    cache.subscribe(lambda symbol, quote: pushed.append((symbol, quote, len(sleep.pauses))))
    feed = ReplayFeed(path, speed=2, sleep=sleep)
    feed.subscribe(["QQQ"])  # does nothing: the recording has what it has

    await feed.run(cache)

    assert sleep.pauses == [1.0, 2.5]  # gaps of 2 s and 5 s at twice the pace
    # Each quote goes out after the pause before it, not all at once at the end.
    assert pushed == [(symbol, quote, index) for index, (symbol, quote) in enumerate(EXPECTED)]
    assert cache.get("SPY") == SPY_QUOTE
    assert cache.get(CALL) == EXPECTED[2][1]
    assert cache.get("QQQ") is None


async def test_replay_without_speed_runs_as_fast_as_possible(tmp_path):
    path = tmp_path / "quotes.jsonl"
    path.write_text(JSONL)
    sleep = FakeSleep()
    cache = QuoteCache()
    pushed: list[str] = []
    cache.subscribe(lambda symbol, quote: pushed.append(symbol))

    await ReplayFeed(path, sleep=sleep).run(cache)

    assert sleep.pauses == []
    assert pushed == ["SPY", CALL, CALL]


async def test_out_of_order_timestamps_do_not_sleep_backwards(tmp_path):
    path = tmp_path / "quotes.csv"
    path.write_text(
        "ts,symbol,last\n"
        "2026-11-27T14:30:10+00:00,SPY,450.00\n"
        "2026-11-27T14:30:05+00:00,SPY,450.01\n"
        "2026-11-27T14:30:15+00:00,SPY,450.02\n"
    )
    sleep = FakeSleep()
    cache = QuoteCache()

    await ReplayFeed(path, speed=1, sleep=sleep).run(cache)

    assert sleep.pauses == [10.0]
    assert cache.get("SPY").last == Decimal("450.02")


def test_a_bad_file_fails_when_the_feed_is_built(tmp_path):
    path = tmp_path / "quotes.csv"
    path.write_text("ts,symbol,bid\n2026-11-27T14:30:00+00:00,SPY,one\n")
    with pytest.raises(ValueError, match=r"quotes\.csv:2: field 'bid'"):
        ReplayFeed(path)
    with pytest.raises(ValueError, match="speed"):
        ReplayFeed(tmp_path / "missing.csv", speed=0)
