"""A real broker (Alpaca, through alpaca-py): the executor, live option quotes and reconciliation."""
