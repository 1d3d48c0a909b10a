"""Home Assistant MQTT discovery: the entities of one daemon, all on one device.

A sensor counting text boxes; the snapshot camera (snapshots on); with recognition on, a ``Text``
sensor (the words in reading order, each word with its score and box in the attributes) and one
sensor per named region. An entity switched off is published with an empty retained config, which
removes it. Home Assistant keeps a state to 255 characters: the templates cut the text there.
"""

from __future__ import annotations

import json
import re

from edge import __version__
from edge.config.settings import Config
from edge.messaging.topics import Topics

ONLINE, OFFLINE = "online", "offline"
STATE_LIMIT = 255  # characters of a Home Assistant state
REGION_ENTITY = "region_"  # a region's sensor: this and its name
# a region's reading says "unavailable" (edge.service.reading.publish_unavailable) while the daemon cannot read
# or no frame comes
REGION_AVAILABLE = f"{{{{ '{OFFLINE}' if value_json.unavailable is defined else '{ONLINE}' }}}}"
# the status (retained, sent when it changes) says whether the daemon reads: no text while it cannot is not
# "no words in view"
TEXT_AVAILABLE = (f"{{{{ '{ONLINE}' if value_json.recognition and value_json.recognition.state == 'reading' "
                  f"else '{OFFLINE}' }}}}")


def ha_object_id(device_id: str) -> str:
    """Home Assistant accepts only ``[a-zA-Z0-9_-]`` in discovery topics' object ids."""
    return "craft_edge_" + re.sub(r"[^a-zA-Z0-9_]", "_", device_id)


def discovery_message(config: Config, topics: Topics) -> tuple[str, dict]:
    """Home Assistant MQTT discovery: a sensor counting text boxes, attributes from the payload."""
    object_id = ha_object_id(config.device_id)
    topic = f"{sensors_topic(config)}/text_boxes/config"
    return topic, {
        "name": "Text boxes",
        "unique_id": f"{object_id}_text_boxes",
        "state_topic": topics.detections,
        "value_template": "{{ value_json.boxes | count }}",
        "json_attributes_topic": topics.detections,
        "json_attributes_template": "{{ {'boxes': value_json.boxes, 'seq': value_json.frame.seq, "
        "'variant': value_json.model.variant} | tojson }}",
        **availability(topics),
        "unit_of_measurement": "boxes",
        "state_class": "measurement",
        "device": ha_device(config),
    }


def ha_device(config: Config) -> dict:
    """The device every entity of this daemon belongs to in Home Assistant."""
    object_id = ha_object_id(config.device_id)
    return {"identifiers": [object_id], "name": f"craft-edge {config.device_id}", "model": "craft-edge",
            "sw_version": __version__}


def camera_discovery_message(config: Config, topics: Topics) -> tuple[str, dict | None]:
    """Home Assistant MQTT discovery for the snapshot camera (raw JPEG on ``topics.snapshot``), on the
    sensor's device; None when snapshots are off: an empty retained config removes the entity."""
    object_id = ha_object_id(config.device_id)
    topic = f"{config.mqtt.home_assistant.discovery_prefix}/camera/{object_id}/snapshot/config"
    if not config.mqtt.snapshot.enabled:
        return topic, None
    return topic, {
        "name": "Snapshot",
        "unique_id": f"{object_id}_snapshot",
        "topic": topics.snapshot,
        **availability(topics),
        "device": ha_device(config),
    }


def availability(topics: Topics) -> dict:
    return {"availability_topic": topics.availability, "payload_available": ONLINE, "payload_not_available": OFFLINE}


def availability_also(topics: Topics, state_topic: str, template: str) -> dict:
    """Available while the daemon is online and ``template`` says the state on ``state_topic`` holds."""
    return {"availability": [{"topic": topics.availability, "payload_available": ONLINE,
                              "payload_not_available": OFFLINE},
                             {"topic": state_topic, "payload_available": ONLINE, "payload_not_available": OFFLINE,
                              "value_template": template}],
            "availability_mode": "all"}


def text_discovery_message(config: Config, topics: Topics) -> tuple[str, dict | None]:
    """The ``Text`` sensor: state the frame's words in reading order (the message's ``text``), attributes
    every read box (points, score, text, text_score) and the frame's seq; None when recognition is off."""
    object_id = ha_object_id(config.device_id)
    topic = f"{sensors_topic(config)}/text/config"
    if not config.recognition.enabled:
        return topic, None
    return topic, {
        "name": "Text",
        "unique_id": f"{object_id}_text",
        "state_topic": topics.detections,
        "value_template": f"{{{{ (value_json.text or '')[:{STATE_LIMIT}] }}}}",
        "json_attributes_topic": topics.detections,
        "json_attributes_template": "{{ {'words': value_json.boxes | selectattr('text') | list, "
        "'seq': value_json.frame.seq} | tojson }}",
        **availability_also(topics, topics.status, TEXT_AVAILABLE),
        "icon": "mdi:text-recognition",
        "device": ha_device(config),
    }


def sensors_topic(config: Config) -> str:
    """The discovery topic level under which this daemon's sensors' configs are."""
    return f"{config.mqtt.home_assistant.discovery_prefix}/sensor/{ha_object_id(config.device_id)}"


def region_of_sensor(config: Config, topic: str) -> str | None:
    """The region whose sensor ``topic`` configures (``<sensors_topic>/region_<name>/config``); None for
    any other topic."""
    head, tail = f"{sensors_topic(config)}/{REGION_ENTITY}", "/config"
    if not (topic.startswith(head) and topic.endswith(tail)):
        return None
    name = topic[len(head):-len(tail)]
    return name if name and "/" not in name else None


def sensor_state_topic(config_payload: bytes) -> str | None:
    """The ``state_topic`` of a sensor's discovery config as it sits on the broker; None if it has none."""
    try:
        config = json.loads(config_payload)
    except (ValueError, UnicodeDecodeError):
        return None
    topic = config.get("state_topic") if isinstance(config, dict) else None
    return topic if isinstance(topic, str) else None


def region_discovery_messages(config: Config, topics: Topics) -> list[tuple[str, dict]]:
    """One sensor per named region: state its reading, attributes its words with their scores."""
    object_id = ha_object_id(config.device_id)
    return [(f"{sensors_topic(config)}/{REGION_ENTITY}{region.name}/config", {
        "name": f"Region {region.name}",
        "unique_id": f"{object_id}_{REGION_ENTITY}{region.name}",
        "state_topic": topics.region(region.name),
        "value_template": f"{{{{ (value_json.text or '')[:{STATE_LIMIT}] }}}}",
        "json_attributes_topic": topics.region(region.name),
        "json_attributes_template": "{{ {'words': value_json.words, 'seq': value_json.seq} | tojson }}",
        # unavailable while the daemon is offline, and while it cannot read or no frame comes (its last reading
        # would look current)
        **availability_also(topics, topics.region(region.name), REGION_AVAILABLE),
        "icon": "mdi:text-box-outline",
        "device": ha_device(config),
    }) for region in config.regions]


def discovery_messages(config: Config, topics: Topics) -> list[tuple[str, dict | None]]:
    """Every entity's discovery topic and config (None: remove it)."""
    return [discovery_message(config, topics), camera_discovery_message(config, topics),
            text_discovery_message(config, topics), *region_discovery_messages(config, topics)]
