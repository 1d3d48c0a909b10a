"""What regions taken out of the config left on the broker, found and cleared.

A region's reading is retained on ``<prefix>/regions/<name>`` and, with Home Assistant on, its sensor's
config under this daemon's discovery topics. The publisher subscribes to both (``filters``) on every
connection; the broker answers with what it retains, and a retained message of a region not configured
any more is replaced by an empty retained one, which deletes it on the broker and, for a sensor, in
Home Assistant. Live messages (subscribed with No Local, never our own) are left alone. Only paho's
network thread calls this.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import paho.mqtt.client as mqtt

from edge.config.settings import Config
from edge.messaging.homeassistant import region_of_sensor, sensor_state_topic, sensors_topic
from edge.messaging.topics import Topics

log = logging.getLogger(__name__)

MAX_CLEARED = 100  # retained region topics cleared a connection, at most


class LeftoverRegions:
    def __init__(self, config: Config, topics: Topics, clear: Callable[[str], None]) -> None:
        self._home_assistant = config.mqtt.home_assistant.enabled
        self._config, self._topics, self._publish_empty = config, topics, clear
        self._names = frozenset(region.name for region in config.regions)
        self.cleared: set[str] = set()  # topics cleared on this connection

    def filters(self) -> list[tuple[str, str]]:
        """(topic filter, what is lost without it) to subscribe to; sensors first, so that Home Assistant
        drops a sensor before its state empties."""
        sensors = [(f"{sensors_topic(self._config)}/+/config", "removed regions keep their sensors")]
        return [*(sensors if self._home_assistant else []),
                (f"{self._topics.regions}/+", "removed regions keep their retained readings")]

    def new_connection(self) -> None:
        self.cleared.clear()

    def handle(self, message: mqtt.MQTTMessage) -> bool:
        """Whether ``message`` is a region's reading or one of this daemon's sensor configs (then handled
        here). A sensor config is cleared only when its state topic is our region's: daemons whose device
        ids differ only in characters Home Assistant's object ids drop share these topics, and one must
        not delete the other's sensors. Its reading is cleared with it (a reading over the 4096-byte
        packet limit never reaches us to be cleared on its own)."""
        topic = message.topic
        if self._home_assistant and topic.startswith(f"{sensors_topic(self._config)}/"):
            name = region_of_sensor(self._config, topic)
            if name is not None and self._leftover(message, name) and \
                    sensor_state_topic(message.payload) == self._topics.region(name):
                self._clear(topic, name)
                self._clear(self._topics.region(name), name)
            return True
        name = self._topics.region_name(topic)
        if name is None:
            return False
        if self._leftover(message, name):
            self._clear(topic, name)
        return True

    def _leftover(self, message: mqtt.MQTTMessage, name: str) -> bool:
        return bool(message.retain and message.payload) and name not in self._names

    def _clear(self, topic: str, name: str) -> None:
        """An empty retained message on ``topic``, once a connection, at most MAX_CLEARED a connection."""
        if topic in self.cleared or len(self.cleared) > MAX_CLEARED:
            return
        self.cleared.add(topic)
        if len(self.cleared) > MAX_CLEARED:
            log.warning("more than %d retained region topics to clear; the rest are left until the next "
                        "connection", MAX_CLEARED)
            return
        log.info("region %r is not configured: clearing its retained %s", name, topic)
        self._publish_empty(topic)
