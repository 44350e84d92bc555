"""`python -m bot [demo]`, `python -m bot run`: the desk offline (a demo day, or until stopped), or on Discord when
DISCORD_TOKEN is set."""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.cli.common import EXIT_INTERRUPTED, EXIT_OK, EXIT_PROBLEM, UsageError, holding, market_day

if TYPE_CHECKING:
    from pydantic import SecretStr

    from bot.discord.link import Note
    from bot.settings import Settings


def _speed(value: str) -> float:
    try:
        speed = float(value)
    except ValueError:
        speed = 0.0  # not a number: refused below, in the same words
    if not 0 < speed <= 100_000:
        raise argparse.ArgumentTypeError(f"speed must be above 0 and at most 100000, not {value}")
    return speed


def add_parsers(commands: Any, storage: argparse.ArgumentParser, seed: argparse.ArgumentParser) -> None:
    demo = commands.add_parser("demo", parents=[storage, seed], help="run one simulated trading day offline, then exit")
    demo.add_argument(
        "--date",
        type=market_day,
        default=None,
        help="the trading day to simulate, YYYY-MM-DD (default: the latest one, or the one after the ledger's end)",
    )
    run = commands.add_parser("run", parents=[storage, seed], help="run the bot offline on the simulated market")
    run.add_argument("--speed", type=_speed, default=1.0, help="market seconds per real second (default 1)")
    run.add_argument(
        "--replay", type=Path, default=None, metavar="FILE", help="trade on recorded quotes (.csv or .jsonl)"
    )


def run_desk(settings: Settings, storage: Path, given: Path | None, args: argparse.Namespace) -> int:
    """The command without a name, `demo` or `run`: on Discord with a token, else offline."""
    from bot.runtime.demo_folder import DEMO_FOLDER, claim_demo_folder, refuse_simulated_folder
    from bot.settings import discord_token

    token = discord_token()
    if token is not None and args.command in (None, "run"):
        settings = discord_run_settings(settings, args)
        refuse_simulated_folder(storage)
        with holding(storage, "run (Discord)") as lock:
            return run_discord(
                settings,
                storage,
                token,
                note=lambda link: lock.note(discord=link),
                broker_note=lambda text: lock.note(broker=text),
            )
    if args.command == "run":
        refuse_simulated_folder(storage)
        with holding(storage, "run"):
            return run(settings, storage, speed=args.speed, seed=getattr(args, "seed", None), replay=args.replay)
    # The demo's invented market never trades into a desk's books: by default it has a folder of its own.
    storage = given or storage / DEMO_FOLDER
    with holding(storage, "demo"):
        claim_demo_folder(storage)
        return demo(settings, storage, seed=getattr(args, "seed", None), day=getattr(args, "date", None))


def discord_run_settings(settings: Settings, args: argparse.Namespace) -> Settings:
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
    return settings.replace(market=settings.market.replace(seed=seed))


def run_discord(
    settings: Settings, storage: Path, token: SecretStr, *, note: Note | None = None, broker_note: Note | None = None
) -> int:
    """The desk on Discord until SIGINT/SIGTERM (exit 0). It trades from the start; while Discord is out of reach
    the log-in is retried, and `note(text)` hears how the link is (`broker_note(text)` the broker account). A refused
    token, or any other answer from Discord that a retry cannot change, is one line and exit 1, the desk closed
    first."""
    import discord

    from bot.discord.desk_bot import create_bot
    from bot.discord.link import OneLineReconnects, serve
    from bot.runtime.lifetime import run_until_signalled

    bot = create_bot(settings, storage=storage, link_note=note, broker_note=broker_note)
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
    from bot.paths import ledger_path
    from bot.render.text import demo_day
    from bot.runtime.demo import run_demo_day
    from bot.runtime.lifetime import run_until_signalled

    summary = run_until_signalled(run_demo_day(settings, storage, seed=seed, day=day))
    if summary is None:
        print("optiondesk: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(demo_day(summary.day, summary.fills, summary.still_open, summary.report))
    print(f"  ledger: {ledger_path(storage)}  (python -m bot ledger verify --storage {storage})")
    return EXIT_OK


def run(settings: Settings, storage: Path, *, speed: float, seed: int | None, replay: Path | None) -> int:
    """The desk offline until SIGINT/SIGTERM, then a clean stop (exit 0)."""
    from bot.runtime.lifetime import run_until_signalled
    from bot.runtime.offline import run_offline

    run_until_signalled(run_offline(settings, storage, speed=speed, seed=seed, replay=replay))
    return EXIT_OK
