"""The bot's background work: watcher, strategy runner, notifier, and the offline runs."""
