"""The ledger's line format, byte for byte: tests/core/golden_ledger.jsonl holds the lines pydantic 2.14 wrote for
`golden_events()` before the ledger was read and written with the standard library (issue #15). Every ledger
written until then holds such lines, so the file is never rewritten from the code it checks: an event this code
writes differently from those bytes is a change of the public format."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.options.contracts import Right
from bot.options.orders import Side
from bot.options.positions import ActionKind, Source
from bot.options.trade_ledger import LedgerError, TradeEvent, parse_line
from tests.core.factories import ledger_line

GOLDEN = Path(__file__).with_name("golden_ledger.jsonl")

ZONES = [
    UTC,
    timezone(timedelta(hours=1)),
    timezone(timedelta(hours=-5)),
    timezone(timedelta(hours=5, minutes=30)),
    timezone(timedelta(hours=-9, minutes=-30)),
    ZoneInfo("America/New_York"),
    ZoneInfo("UTC"),
]
# Decimal texts with exponents, negative zeros, trailing zeros and 28 significant digits, as the desk's
# arithmetic produces them (an average of thirds, a P&L of 0E-26).
AMOUNTS = [
    "0", "0.00", "0.000000", "-0", "-0.00", "1E+1", "1E+3", "1.5E-7", "1E-7", "0E-26", "-1E-30", "1E+30", "450",
    "450.5", "1.20", "6.50", "-300.00", "350.00", "206.6666666666666666666666666", "123456789012345678901234567890.5",
    "0.01", "-0.000001", "99999.99",
]  # fmt: skip
TEXTS = [
    "orb", "", "spy-fade", "é", "Ünïcødé", "😀 rocket", 'quote"d', "back\\slash", "slash/ed", "tab\there",
    "new\nline", "\x00\x1f\x7f", "\u2028\u2029", "</script>", "名前", " padded ", "x" * 300,
]  # fmt: skip
EVENTS = [None, None, None, "expire", "exercise", "assign"]


def _time(rng: random.Random) -> datetime:
    ts = datetime(2000, 1, 3, tzinfo=UTC) + timedelta(seconds=rng.randint(0, 100 * 365 * 86400))
    micro = rng.choice([0, 0, rng.randint(1, 999_999), rng.randint(1, 999) * 1000, 1, 500_000])
    return ts.replace(microsecond=micro)


def _amount(rng: random.Random) -> Decimal:
    if rng.random() < 0.5:
        return Decimal(rng.choice(AMOUNTS))
    return Decimal(rng.randint(-(10**9), 10**9)).scaleb(-rng.randint(0, 30))


def golden_events(count: int = 300) -> list[TradeEvent]:
    """Events with every kind, source, side, right and lifecycle event, odd decimals, microseconds, times in other
    zones, broker times set and unset, unusual text: deterministic, so the lines can be compared byte for byte."""
    rng = random.Random(15)
    events = []
    for n in range(count):
        underlying = rng.choice(["SPY", "QQQ", "IWM", "TSLA", "BRK.B"])
        expiry = rng.choice([date(2026, 11, 27), date(2000, 1, 1) + timedelta(days=rng.randint(0, 36_000))])
        right, strike = rng.choice(list(Right)), _amount(rng).copy_abs()
        ts = _time(rng)
        if n % 7 == 3:  # an event built with a time not in UTC (record() converts; a caller might not)
            ts = ts.astimezone(rng.choice(ZONES))
        broker_ts = None if n % 3 else _time(rng).astimezone(rng.choice(ZONES))
        events.append(
            TradeEvent(
                v=1 if n % 50 else 2,
                event_id=f"evt-{rng.getrandbits(64):016x}",
                ts=ts,
                kind=list(ActionKind)[n % 4],
                position_id=rng.choice([f"pos-{rng.getrandbits(32):08x}", "p", "pos with space"]),
                order_id=f"ord-{rng.getrandbits(48):012x}",
                fill_id=rng.choice([f"fill-{n}", f"{rng.getrandbits(128):032x}", "Ω"]),
                strategy=rng.choice(TEXTS),
                source=list(Source)[n % 4],
                actor=rng.choice([None, None, *TEXTS]),
                symbol=f"{underlying:<6}{expiry:%y%m%d}{right.value}{rng.randint(0, 99_999_999):08d}",
                underlying=underlying,
                expiry=expiry,
                right=right,
                strike=strike,
                side=list(Side)[(n // 4) % 2],
                qty=rng.choice([1, 10, rng.randint(1, 10**6)]),
                price=_amount(rng).copy_abs(),
                multiplier=rng.choice([100, 100, 10, 1, 1000]),
                fees=_amount(rng).copy_abs(),
                position_qty=rng.choice([0, 1, rng.randint(0, 10**6)]),
                avg_entry=Decimal(rng.randint(0, 10**12)).scaleb(-rng.randint(0, 12)).quantize(Decimal("0.000001")),
                realized_pnl=_amount(rng),
                realized_pnl_total=_amount(rng),
                broker_ts=broker_ts,
                event=EVENTS[n % len(EVENTS)],
            )
        )
    return events


def test_events_are_written_as_the_golden_lines_byte_for_byte() -> None:
    golden = GOLDEN.read_bytes().splitlines(keepends=True)
    written = [event.to_line() for event in golden_events()]

    assert len(written) == len(golden) == 300
    for number, (ours, theirs) in enumerate(zip(written, golden, strict=True), start=1):
        assert ours == theirs, f"line {number} differs"


def test_the_golden_lines_read_back_as_the_same_events() -> None:
    events = golden_events()

    read = [parse_line(GOLDEN, n, line) for n, line in enumerate(GOLDEN.read_bytes().splitlines(), start=1)]

    assert read == events
    for event in read:
        assert event.ts.utcoffset() is not None and isinstance(event.price, Decimal)
        assert isinstance(event.kind, ActionKind) and isinstance(event.right, Right)


def read(line: dict[str, Any] | bytes) -> TradeEvent:
    return parse_line(Path("trade_events.jsonl"), 7, line if isinstance(line, bytes) else json.dumps(line).encode())


@pytest.mark.parametrize(
    ("field", "value", "what"),
    [
        ("qty", True, "not a whole number"),  # a bool is no number, though Python counts it as one
        ("qty", "10", "not a whole number"),
        ("qty", 2.5, "not a whole number"),
        ("qty", 0, "not above 0"),
        ("multiplier", -100, "not above 0"),
        ("position_qty", -1, "below 0"),
        ("v", "1", "not a whole number"),
        ("price", "NaN", "not a finite number"),
        ("fees", "-Infinity", "not a finite number"),
        ("strike", True, "not a decimal number (a string or a number)"),
        ("avg_entry", None, "not a decimal number (a string or a number)"),
        ("realized_pnl", "one dollar", "not a decimal number"),
        ("ts", "2026-11-25T15:00:00", "a time without its time zone"),
        ("broker_ts", "2026-11-25T15:00:00", "a time without its time zone"),
        ("ts", 1764082800, "not an ISO 8601 time"),
        ("ts", "yesterday", "not an ISO 8601 time"),
        # Shapes Python's fromisoformat reads but no desk writes, and the desk read before refused.
        ("ts", "20261125T150000Z", "not an ISO 8601 time"),
        ("ts", "2026-W48-3T15:00:00Z", "not an ISO 8601 time"),
        ("broker_ts", "2026-11-25T15:00:00+01", "not an ISO 8601 time"),
        ("broker_ts", "2026-11-25T15:00:00 Z", "not an ISO 8601 time"),
        ("expiry", "20261127", "not an ISO 8601 date"),
        ("expiry", "2026-W48-5", "not an ISO 8601 date"),
        ("expiry", "2026-13-45", "not an ISO 8601 date"),
        ("kind", "buy", "not one of open, add, trim, close"),
        ("source", ["manual"], "not one of strategy, manual, broker, reconcile"),
        ("right", "c", "not one of C, P"),
        ("side", None, "not one of buy, sell"),
        ("event", "expired", "not one of expire, exercise, assign"),
        ("event_id", "", "empty"),
        ("fill_id", 7, "not a string"),
        ("actor", 1, "not a string"),
        ("strategy", None, "not a string"),
    ],
)
def test_a_wrong_value_is_one_ledger_error_naming_the_file_the_line_and_the_field(
    field: str, value: object, what: str
) -> None:
    with pytest.raises(LedgerError) as raised:
        read(ledger_line(**{field: value}))

    assert str(raised.value) == f"trade_events.jsonl: line 7 is not a valid trade event ({field}: {what})"


@pytest.mark.parametrize(
    ("line", "what"),
    [
        ({key: value for key, value in ledger_line().items() if key != "actor"}, "actor: missing"),
        (ledger_line(qty=0, price="NaN"), "qty: not above 0"),  # the first wrong field in line order
        (b"not json", "line: not JSON: Expecting value: line 1 column 1 (char 0)"),
        (b"[1, 2]", "line: not a JSON object"),
        (json.dumps(ledger_line()).encode().replace(b"orb", b"\xe9rb"), "line: not JSON"),  # not UTF-8
        (b"[" * 100_000, "line: not JSON"),
        (b"", "line: not JSON: empty"),
        (b"\xef\xbb\xbf" + json.dumps(ledger_line()).encode(), "line: not JSON: it begins with a byte order mark"),
        # Python's json takes half a surrogate pair, which no UTF-8 line can hold: the event could not be written again.
        (json.dumps(ledger_line(strategy="S")).replace('"S"', '"or\\ud800b"').encode(), "line: not JSON: a \\u escape"),
        (json.dumps(ledger_line(later="L")).replace('"L"', '"\\udc00"').encode(), "line: not JSON"),  # even unread
        # A JSON number past a float's range is no finite number, as a float read it before.
        (json.dumps(ledger_line(price="P")).replace('"P"', "1E400").encode(), "(price: not a finite number)"),
        (json.dumps(ledger_line(qty=0)).replace('"qty": 0', '"qty": 1E400').encode(), "(qty: not a finite number)"),
    ],
)
def test_a_line_that_is_no_event_is_one_ledger_error(line: dict[str, Any] | bytes, what: str) -> None:
    with pytest.raises(LedgerError, match=r"^trade_events.jsonl: line 7 is not a valid trade event \(") as raised:
        read(line)

    assert what in str(raised.value) and "\n" not in str(raised.value)


def test_what_older_and_later_desks_write_is_read() -> None:
    plain = read(ledger_line())
    old = {key: value for key, value in ledger_line().items() if key != "v"}

    assert read(old) == plain  # before the version was written
    assert read(ledger_line(broker_ts=None, event=None)) == plain
    assert read(ledger_line(venue="later", fills=[1])) == plain  # a later version's fields are left to it
    # Amounts as JSON numbers, exactly as their digits say; counts written as whole numbers with a fraction.
    assert read(ledger_line(price=1.1, fees=0, qty=10.0)) == plain._replace(
        price=Decimal("1.1"), fees=Decimal(0), qty=10
    )
    exact = json.dumps(ledger_line(price="P")).replace('"P"', "1.23456789012345678901234567").encode()
    assert read(exact).price == Decimal("1.23456789012345678901234567")  # not through a float
    assert read(ledger_line(ts="2026-11-25T10:00:00-05:00")).ts == plain.ts
    later = read(ledger_line(broker_ts="2026-11-25T14:59:59.5+00:00")).broker_ts
    assert later == datetime(2026, 11, 25, 14, 59, 59, 500000, UTC)
    assert read(ledger_line(ts="2026-11-25T15:00:00z")) == plain  # UTC in lower case, as read before
    assert read(ledger_line(ts="2026-11-25 15:00:00+0000")) == plain
    paired = json.dumps(ledger_line(strategy="S")).replace('"S"', '"\\ud83d\\ude00"').encode()
    assert read(paired).strategy == "\U0001f600"  # a whole surrogate pair is one character


def test_an_event_the_ledger_could_not_read_back_is_not_written() -> None:
    plain = read(ledger_line())

    with pytest.raises(ValueError, match="time zone"):
        plain._replace(ts=datetime(2026, 11, 25, 15, 0)).to_line()
    with pytest.raises(ValueError, match="finite"):
        plain._replace(realized_pnl=Decimal("NaN")).to_line()
