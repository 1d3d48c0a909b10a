"""config.yaml: the shipped default loads; every kind of bad input is one line naming key and file."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge.config.settings import (
    Config,
    ConfigError,
    load_config,
    machine_device_id,
    mqtt_password,
    parse_config,
    state_dir,
)

REPO = Path(__file__).resolve().parent.parent


def test_shipped_config_documents_the_builtin_defaults() -> None:
    """config.yaml states every default; any drift between file and code fails here."""
    assert load_config(REPO / "config.yaml") == Config()
    lines = (REPO / "config.yaml").read_text().splitlines()

    def is_setting(line: str) -> bool:
        return bool(line.strip()) and not line.lstrip().startswith("#") and not line.rstrip().endswith(":")

    for index, line in enumerate(lines):
        if is_setting(line):  # a setting, or a group of settings, sits under a comment or its section
            above = index - 1
            while is_setting(lines[above]):
                above -= 1
            assert lines[above].lstrip().startswith("#") or lines[above].rstrip().endswith(":"), line
    assert Config().device_id == machine_device_id() and Config().topic_prefix == f"craft-edge/{machine_device_id()}"


def test_default_device_id_comes_from_the_machine(tmp_path: Path) -> None:
    machine_id = tmp_path / "machine-id"
    machine_id.write_text("3f9a2c1d55aa4b2e9c0d1e2f3a4b5c6d\n")
    assert machine_device_id("RaspberryPi", machine_id) == "raspberrypi-3f9a2c1d"
    assert machine_device_id("cam.local/#1", machine_id) == "cam-local-1-3f9a2c1d"  # no '+', '#', '/' or '.'
    assert machine_device_id("porch", tmp_path / "absent") == "porch"
    assert machine_device_id("", tmp_path / "absent") == "craft-edge"
    config = parse_config("device_id: ''", "c")
    assert config.device_id == machine_device_id() and config.client_id == f"craft-edge-{machine_device_id()}"


@pytest.mark.parametrize(("text", "expected"), [
    ("bogus: 1", "c.yaml: bogus: unknown key"),
    ("mqtt: {port: '1883'}", "c.yaml: mqtt.port: expected int"),
    ("mqtt: {port: 0}", "c.yaml: mqtt.port: 0 is below the minimum 1"),
    ("detection: {text_threshold: 1.5}", "c.yaml: detection.text_threshold: 1.5 is above the maximum 1.0"),
    ("detection: {low_text: -0.1}", "below the minimum"),
    ("source: {kind: webcam}", "source.kind: 'webcam' is not one of picamera2, opencv, files"),
    ("source: {kind: files, path: ''}", "source.path is required"),
    ("device_id: 'a+b'", "device_id 'a+b' must be printable, non-empty, at most 128 bytes, without"),
    ("device_id: '  '", "must be printable, non-empty"),
    # also from --device-id, which went on to a non-printable topic prefix and client id
    ('device_id: "cam\\a"', "device_id 'cam\\x07' must be printable"),
    ("mqtt: {topic_prefix: 'x/#'}", "mqtt.topic_prefix 'x/#'"),
    ("mqtt: {topic_prefix: '$SYS/cam'}", "must not hold '+' or '#', start with '$'"),
    ("mqtt: {topic_prefix: 'site//cam'}", "have an empty level"),
    ("mqtt: {topic_prefix: '/cam'}", "have an empty level"),
    ("mqtt: {edgetpu_retry: 1}", "mqtt.edgetpu_retry: unknown key"),
    ("model: {edgetpu: {retry_seconds: .nan}}", "model.edgetpu.retry_seconds: nan is not a finite number"),
    ("mqtt: {reconnect_max_seconds: .nan}", "mqtt.reconnect_max_seconds: nan is not a finite number"),
    ("mqtt: {heartbeat_seconds: .inf}", "mqtt.heartbeat_seconds: inf is not a finite number"),
    ("source: {max_fps: -.inf}", "source.max_fps: -inf is not a finite number"),
    ("detection: {text_threshold: 0.3, low_text: 0.4}", "detection.text_threshold (0.3) must be above"),
    ("detection: {text_threshold: 0.4, low_text: 0.4}", "detection.text_threshold (0.4) must be above"),
    ("mqtt: {qos: 0}", "mqtt.qos 0 is refused"),
    ("mqtt: {home_assistant: {discovery_prefix: 'ha/#'}}", "mqtt.home_assistant.discovery_prefix 'ha/#' must not"),
    ("mqtt: {shutdown_ack_seconds: 120}", "mqtt.shutdown_ack_seconds: 120.0 is above the maximum 60.0"),
    ("device_id: cam\x00\n", "c.yaml: character 15 not valid YAML (unacceptable character #x0000: special"),
    ("device_id: cam\x07", "not valid YAML (unacceptable character #x0007: special characters are not allowed)"),
    ("mqtt: {tls: {enabled: true, ca_file: /nonexistent/ca.crt}}",
     "c.yaml: mqtt.tls.ca_file /nonexistent/ca.crt: cannot read (No such file or directory)"),
    ("mqtt: {tls: {enabled: true, cert_file: c.pem}}", "cert_file and mqtt.tls.key_file go together"),
    ("mqtt: [1, 2]", "mqtt: expected a mapping"),
    ("model: {prefer: fastest}", "model.prefer: 'fastest' is not one of"),
    ("model: {context: -1}", "model.context: -1 is below the minimum 0"),
    ("source: {kind: files\n  path: x", "c.yaml: line 2 not valid YAML"),
    ("recognition: {min_score: 2}", "c.yaml: recognition.min_score: 2.0 is above the maximum 1.0"),
    ("recognition: {variant: int8}", "recognition.variant: 'int8' is not one of auto, fp32, fp16, dynamic"),
    ("recognition: {max_words: 0}", "recognition.max_words: 0 is below the minimum 1"),
    ("recognition: {patterns: ['^ok$', '(']}", "recognition.patterns[1] '(' is not a regular expression"),
    ("recognition: {allow: \"\\t\"}", "recognition.allow '\\t' must be printable characters"),
    ("regions: [{name: a, rect: [0, 0, 9, 9]}]", "c.yaml: regions need recognition.enabled: true"),
    ("recognition: {enabled: true}\nregions: [{name: 'a/b', rect: [0, 0, 9, 9]}]", "regions[0].name 'a/b' must be"),
    ("recognition: {enabled: true}\nregions: [{name: a, rect: [9, 0, 5, 9]}]", "regions[0].rect [9, 0, 5, 9] must be"),
    ("recognition: {enabled: true}\nregions: [{name: a, rect: [0, 0, 9]}]", "regions[0].rect [0, 0, 9] must be"),
    # 1 px was accepted, then published as lying outside the frame
    ("recognition: {enabled: true}\nregions: [{name: a, rect: [0, 100, 1280, 101]}]",
     "regions[0].rect [0, 100, 1280, 101] must be [left, top, right, bottom] in frame pixels, 0 or more, at least 2"),
    ("recognition: {enabled: true}\nregions: [{name: a, rect: [0, 0, 9, 9]}, {name: a, rect: [1, 1, 5, 5]}]",
     "regions[1].name 'a' is used twice"),
    ("recognition: {enabled: true}\nregions: [{name: Meter, rect: [0, 0, 9, 9]}, {name: meter, rect: [1, 1, 5, 5]}]",
     "regions[1].name 'meter' differs from 'Meter' only in case"),
    ("recognition: {enabled: true}\nregions: [{name: door-1, rect: [0, 0, 9, 9]}, {name: Door_1, rect: [1, 1, 5, 5]}]",
     "regions[1].name 'Door_1' differs from 'door-1' only in case or in - and _"),
    ("recognition: {enabled: true}\nregions: [{name: gas__1_, rect: [0, 0, 9, 9]}, {name: -gas-1, rect: [1, 1, 5, 5]}]",
     "regions[1].name '-gas-1' differs from 'gas__1_' only in case or in - and _"),
    ("recognition: {enabled: true}\nregions: [{name: m, rect: [0, 0, 9, 9], patterns: ['[']}]",
     "regions[0].patterns[0] '[' is not a regular expression"),
    ("recognition: {enabled: true}\nregions: [{rect: [0, 0, 9, 9]}]", "regions[0].name: missing"),
    ("mqtt: {topic_prefix: '%s'}" % ("a" * 513), "mqtt.topic_prefix 'aaa"),
    # in every topic and discovery message: before, with mqtt.topic_prefix set, any length was taken
    ("device_id: '%s'\nmqtt: {topic_prefix: cam}" % ("d" * 129),
     "device_id '%s'... must be printable, non-empty, at most 128 bytes" % ("d" * 40)),
    ("recognition: {patterns: ['^(\\d+\\.?\\d*)+ ?kWh$']}", "recognition.patterns[0] '^(\\\\d+\\\\.?\\\\d*)+ ?kWh$' "
     "took "),
    ("recognition: {enabled: true}\nregions: [{name: m, rect: [0, 0, 9, 9], patterns: ['x', '^(?:\\w+\\d*)+!']}]",
     "regions[0].patterns[1] '^(?:\\\\w+\\\\d*)+!' took "),
    ("recognition: {patterns: ['^(?:(?:[A-Z0-9]+|\\d+)-?)+$']}", "more with every character (readings of up to 20"),
    ("recognition: {patterns: ['a{1,4294967295}']}", "'a{1,4294967295}' is not a regular expression (the repetition"),
])
def test_bad_config_is_one_line(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "c.yaml")
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_the_longest_topic_leaves_room_in_the_packet_overhead() -> None:
    """What fits a broker's packet limit is judged with a fixed allowance for the topic and headers."""
    from edge.config.settings import MAX_TOPIC_PREFIX_BYTES
    from edge.messaging.publisher import PACKET_OVERHEAD_BYTES
    from edge.messaging.topics import Topics

    longest = Topics.for_prefix("p" * MAX_TOPIC_PREFIX_BYTES).region("r" * 64)
    assert len(longest.encode()) + 200 < PACKET_OVERHEAD_BYTES  # 200: fixed header, ids, properties


def test_patterns_that_cannot_backtrack_for_long_are_accepted_and_quick() -> None:
    """The rewrites the refusal suggests, and patterns meters and plates use, pass the check and answer a
    near miss of 20 characters at once (the refused form took 9.8 s on 20 digits)."""
    accepted = [r"^(?>\d+\.?\d*)+ ?kWh$", r"^(\d++ ?)+$", r"^\d{5}(\.\d)?$", r"^[A-Z]{1,3}-\d{1,4}$",
                r"(\d{1,3}\.){3}\d{1,3}", r"^\d+(\.\d+)?\s?kWh$", r"^\d{2}:\d{2}$", r"(?i)^exit$",
                # repeats inside repeats that split a run one way (a required separator) or few ways (bounded)
                r"^\d+(\.\d+)*$", r"^(\d+,)*\d+$", r"^(\d{1,3},)*\d{1,3}$", r"^(\w+ )*\w+$", r"^(\d+[.,])*\d+\s?kWh$",
                r"^(?:\d{1,3}[ ,.]?)+$"]
    config = parse_config(f"recognition: {{patterns: {json.dumps(accepted)}}}", "c.yaml")
    started = time.monotonic()
    assert not any(re.search(pattern, "1" * 19 + "!") for pattern in config.recognition.patterns)
    assert time.monotonic() - started < 2.0  # microseconds each; the refused form takes seconds


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "none.yaml")


@pytest.mark.parametrize("content", [b"mqtt: {port: seventy}", b"unknown_section: {}", b"{{{", b"device_id: a\x00b",
                                     # a Latin-1 degree sign; an int past Python's 4,300 digits; deep nesting:
                                     # each was a traceback and exit 1, which systemd restarts for ever
                                     b"recognition:\n  allow: '0123456789\xb0C'\n",
                                     b"recognition: {max_words: " + b"9" * 5000 + b"}",
                                     b"regions: " + b"[" * 5000 + b"]" * 5000])
def test_run_exits_2_with_one_line(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(content)
    result = subprocess.run([sys.executable, "-m", "edge.commands", "run", "--config", str(path)],
                            capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith(f"craft-edge: error: {path}"), result.stderr
    assert "Traceback" not in result.stderr


def test_password_from_environment_or_credentials(tmp_path: Path) -> None:
    mqtt = parse_config("mqtt: {username: cam}", "c").mqtt
    assert mqtt_password(mqtt, {"CRAFT_EDGE_MQTT_PASSWORD": "s3cret"}) == "s3cret"
    (tmp_path / "mqtt-password").write_text("from-systemd\n")
    assert mqtt_password(mqtt, {"CREDENTIALS_DIRECTORY": str(tmp_path)}) == "from-systemd"
    assert mqtt_password(mqtt, {}) is None
    with pytest.raises(ConfigError, match="password: unknown key"):
        parse_config("mqtt: {password: s3cret}", "c")


def test_state_directory_from_systemd() -> None:
    config = parse_config("state_dir: /tmp/x", "c")
    assert state_dir(config, {}) == Path("/tmp/x")
    assert state_dir(config, {"STATE_DIRECTORY": "/var/lib/craft-edge:/other"}) == Path("/var/lib/craft-edge")


def test_run_with_a_missing_config_file_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    result = subprocess.run([sys.executable, "-m", "edge.commands", "run", "--config", str(missing)],
                            capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"craft-edge: error: {missing}: cannot read config (No such file or directory)"]
