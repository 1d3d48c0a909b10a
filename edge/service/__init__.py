"""The daemon: capture, detection and the outbox wired together, with reloads, the state lock,
systemd notifications and rolling stats.

The one part that imports all the others below it (config, sources, models, messaging, detection).
Imported only by ``edge.commands``.
"""
