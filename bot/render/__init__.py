"""Renderings in one place: the plain text of positions, ledgers, reports and the desk status, and the charts."""
