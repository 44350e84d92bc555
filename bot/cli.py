"""The command line: `python -m bot [command]`. Logs go to stderr; with `--json`, stdout holds only JSON."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from contextlib import nullcontext
from datetime import date
from pathlib import Path

import discord
from pydantic import SecretStr

from bot.options.ledger_verify import verify_events
from bot.options.market_hours import FIRST_DAY, LAST_DAY
from bot.options.positions import Position
from bot.options.trade_ledger import AVG_ENTRY_PLACES, LedgerError, read_ledger, replay
from bot.paths import DEFAULT_STORAGE, StorageError, ledger_path, private_dir
from bot.render import ledger_summary, position_row
from bot.report_command import UsageError, add_report_parser, report_daily
from bot.runtime.demo_folder import DEMO_FOLDER, claim_demo_folder, refuse_demo_folder
from bot.runtime.discord_link import Note
from bot.runtime.lifetime import run_until_signalled
from bot.settings import Settings, SettingsError, discord_token, load_settings
from bot.storage_lock import StorageLock
from bot.trading_cli import add_commands, state_command, status_command

log = logging.getLogger("bot")

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


WRITERS = frozenset({None, "demo", "run"})  # with `reconcile --apply`: the commands that hold the storage's lock


def _date(value: str) -> date:
    day = date.fromisoformat(value)
    if not FIRST_DAY <= day <= LAST_DAY:
        raise argparse.ArgumentTypeError(f"{value} is outside the market calendar ({FIRST_DAY} to {LAST_DAY})")
    return day


def _folder(storage: Path) -> Path:
    """`storage` if it is a folder or does not exist yet; anything else is one line."""
    if storage.exists() and not storage.is_dir():
        raise StorageError(f"storage {storage} is not a folder; give --storage a folder (or a path to create)")
    return storage


def _writable_folder(storage: Path) -> Path:
    """The folder of a command that writes: created if missing, and owner-only like every file the bot makes."""
    try:
        private_dir(_folder(storage))
        if storage.stat().st_mode & 0o077:
            storage.chmod(0o700)  # a clone's storage/ has git's 0755
    except OSError as error:
        raise StorageError(f"cannot use storage {storage} ({error.strerror or error}); check the folder") from None
    return storage


def _speed(value: str) -> float:
    speed = float(value)
    if not 0 < speed <= 100_000:
        raise argparse.ArgumentTypeError(f"speed must be above 0 and at most 100000, not {value}")
    return speed


def build_parser() -> argparse.ArgumentParser:
    storage = argparse.ArgumentParser(add_help=False)
    storage.add_argument(
        "--storage",
        type=Path,
        default=argparse.SUPPRESS,
        help="storage directory (default: $OPTIONDESK_STORAGE_DIR, storage_dir in the settings, or storage/; "
        "the demo's: storage/demo under it)",
    )
    seed = argparse.ArgumentParser(add_help=False)
    seed.add_argument("--seed", type=int, default=argparse.SUPPRESS, help="seed of the simulated market")
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description="optiondesk, the options trade-desk bot. Without a command: the offline demo day.",
        parents=[storage, seed],
    )
    commands = parser.add_subparsers(dest="command", metavar="command")
    demo = commands.add_parser("demo", parents=[storage, seed], help="run one simulated trading day offline, then exit")
    demo.add_argument(
        "--date",
        type=_date,
        default=None,
        help="the trading day to simulate, YYYY-MM-DD (default: the latest one, or the one after the ledger's end)",
    )
    run = commands.add_parser("run", parents=[storage, seed], help="run the bot offline on the simulated market")
    run.add_argument("--speed", type=_speed, default=1.0, help="market seconds per real second (default 1)")
    run.add_argument(
        "--replay", type=Path, default=None, metavar="FILE", help="trade on recorded quotes (.csv or .jsonl)"
    )
    positions = commands.add_parser("positions", parents=[storage], help="list open positions as the bot resumes them")
    positions.add_argument("--json", action="store_true", help="print JSON only")
    reconcile = commands.add_parser("reconcile", parents=[storage], help="compare the ledger with the broker's fills")
    reconcile.add_argument("--date", type=_date, default=None, help="the day, YYYY-MM-DD (default: today)")
    reconcile.add_argument("--json", action="store_true", help="print JSON only")
    reconcile.add_argument("--apply", action="store_true", help="append the missing fills that can be applied")
    ledger = commands.add_parser("ledger", help="inspect the trade ledger")
    ledger_commands = ledger.add_subparsers(dest="ledger_command", metavar="command", required=True)
    ledger_commands.add_parser("verify", parents=[storage], help="replay the ledger and check every invariant")
    add_report_parser(commands, storage)
    add_commands(commands, storage)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return _command(args)
    except (SettingsError, LedgerError, StorageError, ValueError) as error:
        print(f"optiondesk: {error}", file=sys.stderr)
        return EXIT_PROBLEM
    except UsageError as error:
        print(f"optiondesk: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("optiondesk: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _command(args: argparse.Namespace) -> int:
    settings = load_settings()
    given: Path | None = getattr(args, "storage", None)
    storage = _folder(given or Path(settings.storage_dir or DEFAULT_STORAGE))
    if args.command == "ledger":
        return verify_ledger(storage)
    if args.command == "report":
        return report_daily(settings, storage, args)
    if args.command == "positions":
        return list_positions(storage, as_json=args.json)
    if args.command == "reconcile":
        from bot.broker.reconcile_command import reconcile_command

        with _holding(storage, "reconcile --apply") if args.apply else nullcontext():
            return reconcile_command(settings, storage, day=args.date, as_json=args.json, apply=args.apply)
    if args.command == "state":
        return state_command(storage, set_to=args.set_to, reason=args.reason, as_json=args.json)
    if args.command == "status":
        return status_command(settings, storage, as_json=args.json)
    token = discord_token()
    if token is not None and args.command in (None, "run"):
        settings = _discord_run_settings(settings, args)
        refuse_demo_folder(storage)
        with _holding(storage, "run (Discord)") as lock:
            return run_discord(settings, storage, token, note=lambda link: lock.note(discord=link))
    if args.command == "run":
        with _holding(storage, "run"):
            return run(settings, storage, speed=args.speed, seed=getattr(args, "seed", None), replay=args.replay)
    # The demo's invented market never trades into a desk's books: by default it has a folder of its own.
    storage = given or storage / DEMO_FOLDER
    with _holding(storage, "demo"):
        claim_demo_folder(storage)
        return demo(settings, storage, seed=getattr(args, "seed", None), day=getattr(args, "date", None))


def _discord_run_settings(settings: Settings, args: argparse.Namespace) -> Settings:
    """The Discord desk lives on wall time: a replay or another speed is refused (a usage error), never ignored; a
    seed is the paper desk's simulated market's."""
    refused = [
        flag
        for flag, given in (
            ("--replay", getattr(args, "replay", None) is not None),
            ("--speed", getattr(args, "speed", 1.0) != 1.0),
        )
        if given
    ]
    seed = getattr(args, "seed", None)
    if seed is not None and settings.executor != "paper":
        refused.append("--seed")
    if refused:
        raise UsageError(
            f"{' and '.join(refused)} cannot apply on Discord, where the desk runs on wall time"
            f"{' and quotes come from the broker' if '--seed' in refused else ''}; "
            "unset DISCORD_TOKEN to run offline"
        )
    if seed is None:
        return settings
    return settings.model_copy(update={"market": settings.market.model_copy(update={"seed": seed})})


def _holding(storage: Path, command: str) -> StorageLock:
    """The storage's writer lock for `command`, the folder made first."""
    return StorageLock(_writable_folder(storage), f"python -m bot {command}")


def run_discord(settings: Settings, storage: Path, token: SecretStr, *, note: Note | None = None) -> int:
    """The desk on Discord until SIGINT/SIGTERM (exit 0). It trades from the start; while Discord is out of reach
    the log-in is retried, and `note(text)` hears how the link is. A refused token, or any other answer from
    Discord that a retry cannot change, is one line and exit 1, the desk closed first."""
    from bot.desk_bot import create_bot
    from bot.runtime.discord_link import OneLineReconnects, serve

    bot = create_bot(settings, storage=storage, link_note=note)
    logging.getLogger("discord.client").addFilter(OneLineReconnects())
    try:
        run_until_signalled(serve(bot, token.get_secret_value()))
    except discord.LoginFailure:
        print(
            "optiondesk: Discord refused the token (DISCORD_TOKEN); check it in the developer portal", file=sys.stderr
        )
        return EXIT_PROBLEM
    except discord.HTTPException as error:
        print(
            f"optiondesk: Discord refused the desk's start ({error.status} {error.text or error.response.reason}); "
            "check the bot's invite (scopes bot and applications.commands) and discord.guild_id",
            file=sys.stderr,
        )
        return EXIT_PROBLEM
    except discord.DiscordException as error:
        print(f"optiondesk: Discord ended the connection: {error}", file=sys.stderr)
        return EXIT_PROBLEM
    return EXIT_OK


def demo(settings: Settings, storage: Path, *, seed: int | None, day: date | None) -> int:
    from bot.runtime.demo import run_demo_day

    summary = run_until_signalled(run_demo_day(settings, storage, seed=seed, day=day))
    if summary is None:
        print("optiondesk: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(summary.render())
    print(f"  ledger: {ledger_path(storage)}  (python -m bot ledger verify --storage {storage})")
    return EXIT_OK


def run(settings: Settings, storage: Path, *, speed: float, seed: int | None, replay: Path | None) -> int:
    """The desk offline until SIGINT/SIGTERM, then a clean stop (exit 0)."""
    from bot.runtime.offline import run_offline

    run_until_signalled(run_offline(settings, storage, speed=speed, seed=seed, replay=replay))
    return EXIT_OK


def _positions_json(positions: list[Position]) -> str:
    return json.dumps(
        [
            {
                "position_id": p.position_id,
                "symbol": p.contract.symbol,
                "strategy": p.strategy,
                "qty": p.qty,
                "avg_entry": str(p.avg_entry.quantize(AVG_ENTRY_PLACES)),
                "realized_pnl_total": str(p.realized_pnl),
                "opened_at": p.opened_at.isoformat() if p.opened_at else None,
            }
            for p in positions
        ],
        indent=2,
    )


def list_positions(storage: Path, *, as_json: bool) -> int:
    contents = read_ledger(ledger_path(storage))
    if contents.torn_tail:
        log.warning("the ledger ends in a torn line (%d bytes), cut away at the next start", len(contents.torn_tail))
    positions = [p for p in replay(contents.events).values() if p.is_open]
    if as_json:
        print(_positions_json(positions))
    elif not positions:
        print("no open positions")
    else:
        print("\n".join(position_row(p) for p in positions))
    return EXIT_OK


def verify_ledger(storage: Path) -> int:
    path = ledger_path(storage)
    try:
        contents = read_ledger(path)
    except LedgerError as error:
        print(f"ledger {path}: {error}")
        return EXIT_PROBLEM
    report = verify_events(contents.events)
    print(f"ledger {path}")
    print(ledger_summary(report, torn_tail=len(contents.torn_tail)))
    return EXIT_OK if report.ok else EXIT_PROBLEM
