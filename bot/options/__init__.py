"""The trading core: contracts, quotes, orders, positions, executors and the ledger."""
