"""Connecting a paho client to the configured broker: user name, password and TLS (the daemon's publisher and
``craft-edge watch`` alike), and a connect that waits for the broker's answer (``watch``, ``probe``)."""

from __future__ import annotations

import logging
import ssl
import threading
from typing import Any

import paho.mqtt.client as mqtt

from edge.config.settings import MqttConfig

log = logging.getLogger(__name__)


def apply_credentials(client: mqtt.Client, settings: MqttConfig, password: str | None) -> None:
    """User name, password and TLS from the config: the daemon's publisher and ``craft-edge watch`` alike.

    A password without a user name cannot be sent (MQTT has no such field): ValueError, not silence."""
    if password and not settings.username:
        raise ValueError(f"a password is set ({settings.password_env or 'the mqtt-password credential'}) but "
                         "mqtt.username is empty: MQTT sends a password only with a user name")
    if settings.username:
        client.username_pw_set(settings.username, password)
    if password and not settings.tls.enabled:
        log.warning("MQTT password for %s:%s goes over a connection without TLS: anyone on the network "
                    "path can read it (set mqtt.tls.enabled)", settings.host, settings.port)
    if settings.tls.enabled:
        client.tls_set(
            ca_certs=settings.tls.ca_file or None, certfile=settings.tls.cert_file or None,
            keyfile=settings.tls.key_file or None, cert_reqs=ssl.CERT_REQUIRED,
        )


class BrokerUnreachable(RuntimeError):
    """No MQTT broker answered: connection refused, or something that is not a broker holds the port."""


def connect_and_wait(client: mqtt.Client, broker: tuple[str, int], timeout: float) -> None:
    """Connect ``client``, start its network loop and wait for the broker's CONNACK (``craft-edge watch``).

    Something that accepts TCP on the port but is not an MQTT broker never answers: that is
    ``BrokerUnreachable`` after ``timeout`` seconds, not a hang. ``client.on_connect`` is called
    as usual once the broker accepts.
    """
    host, port = broker
    answered = threading.Event()
    refused: list[str] = []
    user_on_connect = client.on_connect

    def on_connect(client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            refused.append(str(reason))
        elif user_on_connect is not None:
            user_on_connect(client, userdata, flags, reason, properties)
        answered.set()

    client.on_connect = on_connect
    try:
        client.connect(host, port)
    except (OSError, ValueError) as exc:  # refused, unknown host, TLS handshake, an empty host name
        raise BrokerUnreachable(f"cannot connect to {host}:{port} ({getattr(exc, 'strerror', None) or exc})") from exc
    client.loop_start()
    if answered.wait(timeout) and not refused:
        return
    client.loop_stop()
    if refused:
        raise BrokerUnreachable(f"the broker at {host}:{port} refused the connection: {refused[0]}")
    raise BrokerUnreachable(f"{host}:{port} accepted a connection but did not answer as an MQTT broker within "
                            f"{timeout:.0f} s (is something else listening on that port?)")
