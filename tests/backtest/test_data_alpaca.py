"""`python -m bot data alpaca`: real history in the replay format, fetched by the real alpaca-py from the fake Alpaca
(tests/broker/fake_alpaca.py) on 127.0.0.1, and the spread model that makes its bars quotes."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.broker.history import Bar, SpreadModel, picked_contracts, replay_file, session_day
from bot.cli import main
from bot.options.contracts import OptionContract, Right
from bot.options.market_hours import MARKET_TZ, session_close, session_open
from bot.options.positions import ActionKind
from bot.options.replay_feed import load_quotes
from bot.options.trade_ledger import read_ledger
from bot.paths import PROJECT_ROOT, ledger_path
from bot.settings import OpeningRangeBreakoutSettings
from bot.strategies.options.opening_range import OpeningRangeBreakout
from tests.broker.conftest import NOW, offline  # noqa: F401  (autouse: no name but loopback resolves, keys set)
from tests.broker.fake_alpaca import FakeAlpaca

TUESDAY, WEDNESDAY, THANKSGIVING, FRIDAY = (date(2026, 11, d) for d in (24, 25, 26, 27))  # Friday closes at 13:00
RANGE = ["--from", str(TUESDAY), "--to", str(FRIDAY)]
CENT = Decimal("0.01")


def occ(expiry: date, right: str, strike: int) -> str:
    return OptionContract("SPY", expiry, Right(right), Decimal(strike)).compact


# The contracts spy-orb (2 days to expiry) would pick on the marks below: Tuesday's expire on Friday (Thursday is a
# holiday), Friday's on Monday 2026-11-30.
PICKED = {
    occ(expiry, right, strike) for expiry in (FRIDAY, date(2026, 11, 30)) for right in "CP" for strike in (600, 601)
}
TUESDAY_CALL, FRIDAY_CALL = occ(FRIDAY, "C", 601), occ(date(2026, 11, 30), "C", 601)


def minute_bars(day: date, price: Callable[[int], float], minutes: range = range(390)) -> list[dict[str, Any]]:
    """Alpaca's raw minute bars of `day` from its open, the close of minute m being price(m)."""
    bars = []
    for minute in minutes:
        start = (session_open(day) + timedelta(minutes=minute)).astimezone(UTC)
        p = price(minute)
        bars.append({"t": start.isoformat().replace("+00:00", "Z"), "o": p, "h": p, "l": p, "c": p, "v": 120})
    return bars


def spy(minute: int) -> float:
    """An opening range of 600.00-600.40 until 09:45, then a breakout at 09:50 to 601.00; 700 after the close."""
    if minute >= 390 or minute < 0:
        return 700.0
    return 601.0 if minute >= 20 else 600.2 if minute >= 15 else (600.4 if minute % 2 else 600.0)


def history(alpaca: FakeAlpaca) -> None:
    """Tuesday and Friday of SPY (and pre- and after-market bars no strategy may see: at 700 they would pick other
    strikes); Wednesday has no SPY bars; the calls at the money trade at 2.05 all day, one put once."""
    alpaca.bars["SPY"] = [
        *minute_bars(TUESDAY, spy, range(-60, 420)),
        *minute_bars(FRIDAY, spy, range(-60, 420)),  # Friday's session ends at 13:00: later bars are not its
    ]
    alpaca.bars[TUESDAY_CALL] = [*minute_bars(TUESDAY, lambda m: 2.05), *minute_bars(WEDNESDAY, lambda m: 9.0)]
    alpaca.bars[FRIDAY_CALL] = minute_bars(FRIDAY, lambda m: 2.05, range(210))
    alpaca.bars[occ(FRIDAY, "P", 600)] = minute_bars(TUESDAY, lambda m: 1.5, range(45, 46))


def data_alpaca(out: Path, *more: str) -> list[str]:
    return ["data", "alpaca", "--underlying", "SPY", *RANGE, "--out", str(out), "--strategy", "spy-orb", *more]


@pytest.fixture
def alpaca() -> Iterator[FakeAlpaca]:
    fake = FakeAlpaca(lambda: NOW)
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def env(alpaca: FakeAlpaca, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment of a data command against the fake; a child process inherits it. Anything not for 127.0.0.1
    goes to a proxy where nothing listens, so a child cannot reach the internet either."""
    monkeypatch.setenv("OPTIONDESK_BROKER__DATA_URL", alpaca.url)
    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(proxy, f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    return dict(os.environ)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bot(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def refused(capsys: pytest.CaptureFixture[str], out: Path, argv: list[str]) -> str:
    """Run the command here; it must fail with exit 1 in one line on stderr and write nothing beside `out`."""
    before = set(out.parent.iterdir())
    assert main(argv) == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("optiondesk:")]
    assert len(lines) == 1, lines
    assert set(out.parent.iterdir()) == before  # no file, no temp file
    return lines[0]


# The command against the fake, and a backtest on what it wrote ------------------------------------------------------


def test_the_history_it_writes_is_traded_by_a_backtest(alpaca: FakeAlpaca, env: dict[str, str], tmp_path: Path) -> None:
    history(alpaca)
    alpaca.bars_page_size = 500  # the SDK follows Alpaca's pages
    out = tmp_path / "spy.csv"

    fetched = bot(*data_alpaca(out), env=env)

    assert fetched.returncode == 0, fetched.stderr
    assert "2026-11-25 skipped: no SPY bars" in fetched.stderr
    assert "2026-11-26 skipped: the market was closed" in fetched.stderr
    asked = {s for kind, query in alpaca.bars_requests if kind == "options" for s in query["symbols"].split(",")}
    assert asked == PICKED  # the strategy's own rule on the session's marks, no strike from outside the session
    assert not [r for r in alpaca.requests if "unknown" in r]
    quotes = load_quotes(out)
    times = [q.ts for _, q in quotes if q.ts is not None]
    assert times == sorted(times) and len(times) == len(quotes)
    assert {t.astimezone(MARKET_TZ).date() for t in times} == {TUESDAY, FRIDAY}
    assert all(
        session_open(t.astimezone(MARKET_TZ).date()) < t < session_close(t.astimezone(MARKET_TZ).date()) for t in times
    )
    assert {s for s, _ in quotes} == {"SPY", *(OptionContract.parse(s).symbol for s in alpaca.bars if s != "SPY")}

    storage = tmp_path / "bt"
    run = bot(
        "backtest", *RANGE, "--replay", str(out), "--strategy", "spy-orb", "--storage", str(storage), "--json", env=env
    )

    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["days_done"] == 3  # Wednesday too, which the recording has no quote of
    opens = [e for e in read_ledger(ledger_path(storage)).events if e.kind is ActionKind.OPEN]
    # Each day's breakout at 09:50 is known at the bar's end, 09:51; the call is offered at 2.05's modelled ask.
    assert [(e.symbol, e.price, e.ts, e.strategy) for e in opens] == [
        (OptionContract.parse(call).symbol, Decimal("2.10"), session_open(day) + timedelta(minutes=21), "spy-orb")
        for call, day in ((TUESDAY_CALL, TUESDAY), (FRIDAY_CALL, FRIDAY))
    ]
    assert bot("ledger", "verify", "--storage", str(storage), env=env).returncode == 0


# Faults: each one line, exit 1, nothing written -----------------------------------------------------------------------


def test_refused_keys_are_one_line_and_the_old_file_stays(
    alpaca: FakeAlpaca, env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history(alpaca)
    alpaca.bars_faults["stocks"] = [401]
    out = tmp_path / "spy.csv"
    out.write_text("an earlier recording\n")

    line = refused(capsys, out, data_alpaca(out))

    assert "Alpaca refused the keys (HTTP 401) reading SPY's minute bars" in line and "APCA_API_KEY_ID" in line
    assert out.read_text() == "an earlier recording\n"


@pytest.mark.parametrize("status", [500, 503])
def test_a_failing_data_api_is_one_line(
    alpaca: FakeAlpaca, env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str], status: int
) -> None:
    history(alpaca)
    alpaca.bars_faults["options"] = [status]
    out = tmp_path / "spy.jsonl"

    line = refused(capsys, out, data_alpaca(out))

    assert f"Alpaca's data API failed (HTTP {status}) reading the minute bars of 4 option contracts" in line
    assert "try again later" in line and not out.exists()


def test_no_answer_is_one_line_within_the_request_timeout(
    alpaca: FakeAlpaca,
    env: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    history(alpaca)
    alpaca.bars_faults["options"] = [0]  # never answers
    monkeypatch.setenv("OPTIONDESK_BROKER__REQUEST_TIMEOUT_SECONDS", "0.5")
    out = tmp_path / "spy.csv"

    line = refused(capsys, out, data_alpaca(out))

    assert "Alpaca did not answer within 0.5 s reading the minute bars of 4 option contracts" in line


def test_an_unreachable_data_api_is_one_line(
    env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("OPTIONDESK_BROKER__DATA_URL", url)
    out = tmp_path / "spy.csv"

    line = refused(capsys, out, data_alpaca(out))

    assert f"cannot reach Alpaca's data API at {url} reading SPY's minute bars" in line


def test_an_out_inside_a_file_is_refused_before_fetching(
    alpaca: FakeAlpaca, env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history(alpaca)
    (tmp_path / "notes").write_text("mine\n")

    status = main(data_alpaca(tmp_path / "notes" / "spy.csv"))

    [line] = [line for line in capsys.readouterr().err.splitlines() if line.startswith("optiondesk:")]
    assert status == 2
    assert line == f"optiondesk: --out {tmp_path / 'notes' / 'spy.csv'}: {tmp_path / 'notes'} is not a folder"
    assert alpaca.bars_requests == []
    assert (tmp_path / "notes").read_text() == "mine\n"


def test_an_out_that_cannot_be_written_is_one_line(
    alpaca: FakeAlpaca,
    env: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    history(alpaca)
    out = tmp_path / "spy.csv"

    def full(path: Path, data: bytes, **_: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr("bot.paths.write_atomically", full)
    status = main(data_alpaca(out))

    [line] = [line for line in capsys.readouterr().err.splitlines() if line.startswith("optiondesk:")]
    assert status == 1
    assert line == f"optiondesk: cannot write {out} (No space left on device); nothing written"
    assert not out.exists()


def test_missing_keys_are_named(
    env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("APCA_API_SECRET_KEY")
    out = tmp_path / "spy.csv"

    line = refused(capsys, out, data_alpaca(out))

    assert "data alpaca needs APCA_API_KEY_ID and APCA_API_SECRET_KEY set" in line


def test_no_bars_at_all_write_nothing(
    alpaca: FakeAlpaca, env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "spy.csv"

    line = refused(capsys, out, data_alpaca(out))

    assert "Alpaca has no SPY bars from 2026-11-24 to 2026-11-27; nothing written" in line


def test_no_option_bars_write_nothing(
    alpaca: FakeAlpaca, env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    alpaca.bars["SPY"] = minute_bars(TUESDAY, spy)
    out = tmp_path / "spy.csv"

    line = refused(capsys, out, data_alpaca(out))

    assert "no bars of the 4 option contracts the strategies would pick on SPY" in line


def test_an_underlying_no_strategy_trades_is_one_line(
    env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "iwm.csv"

    line = refused(capsys, out, ["data", "alpaca", "--underlying", "IWM", *RANGE, "--out", str(out)])

    assert "no strategy in the settings buys IWM at the money (spy-orb trades SPY, qqq-meanrev trades QQQ)" in line


def test_a_strategy_picking_by_delta_is_left_out_in_a_line(
    env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    orb = {"kind": "opening_range_breakout", "name": "spy-delta", "underlying": "SPY", "target_delta": 0.3}
    monkeypatch.setenv("OPTIONDESK_STRATEGIES", json.dumps([orb]))
    out = tmp_path / "spy.csv"

    line = refused(capsys, out, ["data", "alpaca", "--underlying", "SPY", *RANGE, "--out", str(out)])

    assert "no strategy in the settings buys SPY at the money (spy-delta trades SPY by target_delta)" in line


def test_ctrl_c_while_fetching_leaves_no_file(alpaca: FakeAlpaca, env: dict[str, str], tmp_path: Path) -> None:
    history(alpaca)
    alpaca.bars_faults["options"] = [0]  # held until the process is interrupted
    out = tmp_path / "spy.csv"
    child = subprocess.Popen(
        [sys.executable, "-m", "bot", *data_alpaca(out)],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(3000):  # a generous bound: the event is the option request reaching the fake
            if any(kind == "options" for kind, _ in alpaca.bars_requests) or child.poll() is not None:
                break
            time.sleep(0.1)
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=120)
    finally:
        child.kill()

    assert child.returncode == 130, err
    assert "optiondesk: interrupted" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


# The pure parts: the spread model, the contracts picked, the session, the file ---------------------------------------


def bar(close: str, at: datetime = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)) -> Bar:
    return Bar(at, Decimal(close))


@pytest.mark.parametrize(
    ("close", "pct", "ticks", "bid", "ask"),
    [
        ("2.05", 4, 1, "2.00", "2.10"),  # 2 % either side: 2.009 down, 2.091 up
        ("1.005", 4, 1, "0.98", "1.03"),  # rounded out, against the trader on both sides
        ("1.10", "0.5", 1, "1.09", "1.11"),  # a narrow spread is a tick either side at least
        ("1.10", 0, 3, "1.07", "1.13"),
        ("0.01", 4, 1, "0.01", "0.02"),  # the bid is a cent at least, the ask still above it
        ("600.00", 0, 1, "599.99", "600.01"),  # the underlying's quote: its mid is the close
    ],
)
def test_the_spread_model(close: str, pct: object, ticks: int, bid: str, ask: str) -> None:
    quote = SpreadModel(Decimal(str(pct)), ticks).quote(bar(close))

    assert (quote.bid, quote.ask, quote.last) == (Decimal(bid), Decimal(ask), Decimal(close))
    assert quote.ts == datetime(2026, 11, 24, 15, 1, tzinfo=UTC)  # the bar's end, when its close was known


@given(
    close=st.decimals(min_value="0.01", max_value="5000", places=4),
    pct=st.decimals(min_value=0, max_value=200, places=2),
    ticks=st.integers(1, 100),
)
def test_a_modelled_quote_is_never_crossed_and_costs_the_trader(close: Decimal, pct: Decimal, ticks: int) -> None:
    quote = SpreadModel(pct, ticks).quote(bar(str(close)))
    assert quote.bid is not None and quote.ask is not None

    assert quote.bid < quote.ask and not quote.crossed
    assert quote.bid % CENT == 0 and quote.ask % CENT == 0
    assert quote.ask >= close + ticks * CENT  # a buy pays at least the close and the least spread
    assert quote.bid <= close - ticks * CENT or quote.bid == CENT  # a sell gets at most that, or the least price


def test_a_spread_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="from 0 to 200"):
        SpreadModel(Decimal(-1))
    with pytest.raises(ValueError, match="from 1 to 100 ticks"):
        SpreadModel(Decimal(4), 0)


def test_the_contracts_are_the_strategies_own_choice() -> None:
    orb = OpeningRangeBreakout(OpeningRangeBreakoutSettings(name="spy-orb", underlying="SPY", days_to_expiry=0))
    marks = [Decimal("600.00"), Decimal("600.40"), Decimal("601.00"), Decimal("600.50")]  # 600.50 is 600, as the desk

    assert picked_contracts([orb], marks, TUESDAY) == {
        OptionContract("SPY", TUESDAY, right, Decimal(strike)) for right in Right for strike in (600, 601)
    }


@pytest.mark.parametrize(
    ("start", "kept"),
    [
        (datetime(2026, 11, 24, 9, 30, tzinfo=MARKET_TZ), True),
        (datetime(2026, 11, 24, 9, 29, tzinfo=MARKET_TZ), False),  # pre-market
        (datetime(2026, 11, 24, 15, 58, tzinfo=MARKET_TZ), True),
        (datetime(2026, 11, 24, 15, 59, tzinfo=MARKET_TZ), False),  # it ends at the close: after the last tick
        (datetime(2026, 11, 27, 12, 58, tzinfo=MARKET_TZ), True),
        (datetime(2026, 11, 27, 13, 30, tzinfo=MARKET_TZ), False),  # after the early close
        (datetime(2026, 11, 26, 10, 0, tzinfo=MARKET_TZ), False),  # Thanksgiving
    ],
)
def test_only_session_bars_become_quotes(start: datetime, kept: bool) -> None:
    assert session_day(bar("1.00", start.astimezone(UTC))) == (start.date() if kept else None)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_the_file_is_the_replay_format_sorted_by_time(tmp_path: Path, suffix: str) -> None:
    call = OptionContract("SPY", FRIDAY, Right.CALL, Decimal(601)).symbol
    quotes = [
        (call, SpreadModel().quote(bar("2.05", datetime(2026, 11, 24, 15, 2, tzinfo=UTC)))),
        ("SPY", SpreadModel(Decimal(0)).quote(bar("600.5", datetime(2026, 11, 24, 15, 1, tzinfo=UTC)))),
    ]
    rows = [(quote.ts, symbol, quote) for symbol, quote in quotes if quote.ts is not None]
    path = tmp_path / f"quotes{suffix}"
    path.write_bytes(replay_file(rows, suffix))

    assert load_quotes(path) == [(symbol, quote) for _, symbol, quote in sorted(rows, key=lambda row: row[0])]
