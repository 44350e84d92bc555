"""Daily analytics over the trade ledger: realized P&L, trades, win rate and more, per day and per range."""
