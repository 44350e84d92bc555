"""What the fast read checks before it trusts the ledger's lines: the report adds up each line's own P&L and fees,
so a line that is missing, damaged or does not follow from the fills before it would change the figures without a
word.

Per position, in ledger order: the quantities add up (never below 0, nothing after the close), the kinds follow
from them, each buy's average entry and each fill's P&L follow from its price and fees, the running P&L is the sum
of the fills', and the strategy and underlying stay the position's; no line is empty. A ledger that fails any of
these goes to the pure model, which checks every line as `ledger verify` does and names the first that does not
verify. (What the report does not read, such as the ids or the expiry, only the pure model checks.)
"""

from __future__ import annotations

import mmap
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl

# The fields the fast read takes from each line: what the report adds up, and what the checks need.
FIELDS = (
    "ts", "kind", "strategy", "underlying", "fees", "realized_pnl", "realized_pnl_total", "position_id", "side",
    "qty", "position_qty", "price", "avg_entry", "multiplier",
)  # fmt: skip
# What the checks read, beyond what the report needs, each field read once in the same scan. A position is its id,
# strategy and underlying hashed into one number: a line whose strategy or underlying is not its position's starts
# a position of its own, which no fills can explain (a sell or an add with nothing open), and leaves its position
# short of it. Two positions whose numbers clash only send the ledger to the pure model. Money is also read as
# floats (the tolerances are far above their error). A field missing or a value the ledger does not allow is NULL
# here, and a NULL fails the checks.
CHECKED = """CASE WHEN strategy IS NOT NULL AND underlying IS NOT NULL AND position_id IS NOT NULL
        THEN hash(position_id, strategy, underlying) END AS pos,
    CASE side WHEN 'buy' THEN TRUE WHEN 'sell' THEN FALSE END AS buy,
    CASE kind WHEN 'open' THEN 0 WHEN 'add' THEN 1 WHEN 'trim' THEN 2 WHEN 'close' THEN 3 END AS kind_number,
    CAST(qty AS INTEGER) AS qty, CAST(position_qty AS INTEGER) AS held, CAST(multiplier AS INTEGER) AS multiplier,
    CAST(price AS DOUBLE) AS price, CAST(avg_entry AS DOUBLE) AS avg_entry, CAST(fees AS DOUBLE) AS fee_f,
    CAST(realized_pnl AS DOUBLE) AS pnl_f, CAST(realized_pnl_total AS DOUBLE) AS total_f"""
CHECK_COLUMNS = (
    "pos", "buy", "kind_number", "qty", "held", "multiplier", "price", "avg_entry", "fee_f", "pnl_f", "total_f",
)  # fmt: skip

# How far a line's money may be from what its fills give: `ledger verify`'s half a cent, plus what the average
# entry's 6 written places can move it by (half a millionth a share).
CENT = 0.005
AVG_PLACE = 0.5e-6
_CHUNK = 1 << 22  # bytes counted at a time: small enough to stay in the cache


def whole_lines(path: Path, size: int) -> int:
    """How many lines end in the first `size` bytes of the file. The JSON reader skips an empty or blank line
    without a word, so a ledger that has more lines than rows read has one."""
    import numpy as np

    with path.open("rb") as file, mmap.mmap(file.fileno(), size, access=mmap.ACCESS_READ) as data:
        # numpy counts at memory speed, where a scan of the bytes in Python took a fifth of the report.
        view = np.frombuffer(data, np.uint8)
        try:
            return sum(int(np.count_nonzero(view[at : at + _CHUNK] == ord("\n"))) for at in range(0, size, _CHUNK))
        finally:
            del view  # the map cannot close while numpy holds it


def first_wrong_line(fills: pl.LazyFrame) -> pl.LazyFrame:
    """The row number (from 1) of the first line the checks refuse (a single null if every line passes)."""
    import polars as pl

    # Each position's fills made contiguous (in ledger order within it), so that its running sums are running
    # sums less where the position starts: a window per position cost five times as much on a long ledger.
    start = pl.col("start")
    qty, held, price, avg, buy = pl.col("qty"), pl.col("held"), pl.col("price"), pl.col("avg_entry"), pl.col("buy")
    signed = pl.when(buy).then(qty).otherwise(-qty)
    grouped = (
        fills.select(*CHECK_COLUMNS)
        .with_row_index("line", offset=1)
        .sort("pos", maintain_order=True)
        .with_columns(start=(pl.col("pos") != pl.col("pos").shift(1)).fill_null(True))
        .with_columns(
            running=_running_sum(signed),
            running_pnl=_running_sum(pl.col("pnl_f")),
            avg_before=pl.when(start).then(0.0).otherwise(avg.shift(1)),
        )
    )
    running, avg_before = pl.col("running"), pl.col("avg_before")
    before = running - signed
    shares = qty * pl.col("multiplier")
    kind = pl.when(buy).then(pl.when(start).then(0).otherwise(1)).otherwise(pl.when(running == 0).then(3).otherwise(2))
    realized = pl.when(buy).then(-pl.col("fee_f")).otherwise((price - avg_before) * shares - pl.col("fee_f"))
    # After a buy the average is the held contracts' mean price; a sell leaves it as it was.
    avg_off = (
        pl.when(buy)
        .then((avg * running - avg_before * before - price * qty).abs() / running)
        .otherwise((avg - avg_before).abs())
    )
    wrong = (
        pl.col("pos").is_null()
        | (qty <= 0)
        | (running < 0)
        | (held != running)
        | (~start & (before == 0))  # a fill after the position was closed
        | (pl.col("kind_number") != kind)
        | (avg_off > 2 * AVG_PLACE + 1e-9)
        | ((pl.col("pnl_f") - realized).abs() > CENT + AVG_PLACE * shares)
        | ((pl.col("total_f") - pl.col("running_pnl")).abs() > CENT)
    )
    return grouped.filter(wrong.fill_null(True)).select(pl.col("line").min())


def _running_sum(value: pl.Expr) -> pl.Expr:
    """`value` summed within each position so far (rows sorted by position, `start` marking each one's first)."""
    import polars as pl

    total = value.cum_sum()
    return total - pl.when(pl.col("start")).then(total - value).forward_fill()
