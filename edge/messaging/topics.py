"""The daemon's MQTT topics under its prefix."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topics:
    detections: str
    availability: str
    status: str
    stats: str
    snapshot: str
    regions: str  # one topic below it per named region

    @classmethod
    def for_prefix(cls, prefix: str) -> Topics:
        return cls(f"{prefix}/detections", f"{prefix}/availability", f"{prefix}/status", f"{prefix}/stats",
                   f"{prefix}/snapshot", f"{prefix}/regions")

    def region(self, name: str) -> str:
        return f"{self.regions}/{name}"

    def region_name(self, topic: str) -> str | None:
        """The region a ``<prefix>/regions/<name>`` topic is for; None for any other topic."""
        head = f"{self.regions}/"
        name = topic.removeprefix(head) if topic.startswith(head) else ""
        return name if name and "/" not in name else None
