"""Options strategies and the exit rules they share."""
