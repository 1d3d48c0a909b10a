"""config.yaml: the daemon's settings, validated on load.

``config.yaml`` at the repository root is the documented default (every key commented). A bad
file (unknown key, wrong type, out-of-range value, bad YAML) is refused with one line naming the
key and the file; the daemon then exits with status 2. The MQTT password never comes from the
YAML: it is read from the environment variable named by ``mqtt.password_env``, or from the file
``mqtt-password`` in ``$CREDENTIALS_DIRECTORY`` (systemd ``LoadCredential=``).
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from edge.config.paths import absolute, video_file
from edge.config.reading import RecognitionConfig, RegionConfig, check_reading
from edge.config.typed import SchemaError, from_dict
from edge.detection.tiling import CONTEXT, TILING_MODES
from edge.models import variants

DEFAULT_CONFIG_PATH = Path("/etc/craft-edge/config.yaml")
DEFAULT_STATE_DIR = Path("/var/lib/craft-edge")
CREDENTIAL_NAME = "mqtt-password"
FORBIDDEN_ID_CHARACTERS = ("+", "#", "/")
MACHINE_ID_PATH = Path("/etc/machine-id")
MAX_MQTT_STRING_BYTES = 65535  # MQTT's limit on a client id or a topic
# a prefix, with the longest level the daemon adds (regions/<64-character name>) and a PUBLISH's headers,
# stays within edge.messaging.publisher.PACKET_OVERHEAD_BYTES: what fits a broker's packet limit is judged by it
MAX_TOPIC_PREFIX_BYTES = 512
# device_id is in every topic, client id and Home Assistant discovery message (several times): bounded so that
# those stay far below a broker's packet limit (a host name is at most 64)
MAX_DEVICE_ID_BYTES = 128
# source.kind: one factory each in edge.sources.FACTORIES (a test keeps the two lists equal)
SOURCE_KINDS = ("picamera2", "opencv", "files")


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the key and the file."""


@dataclass
class SourceConfig:
    kind: str = field(default="opencv", metadata={"choices": SOURCE_KINDS})
    name: str = "camera"  # the camera's name in payloads (file sources report the file name)
    # opencv: device index, /dev/videoN, rtsp:// or http:// URL, or a video file
    device: str = "0"
    # files: a file, a folder or a glob pattern
    path: str = ""
    loop: bool = False
    width: int = field(default=1280, metadata={"min": 16, "max": 8192})
    height: int = field(default=720, metadata={"min": 16, "max": 8192})
    max_fps: float = field(default=0.0, metadata={"min": 0.0, "max": 120.0})  # 0: as fast as inference goes
    picamera2_format: str = field(default="RGB888", metadata={"choices": ("RGB888", "BGR888", "XRGB8888", "XBGR8888")})
    reopen_backoff_max_seconds: float = field(default=30.0, metadata={"min": 0.1, "max": 3600.0})
    # a capture inside one call into the source (open, read) this long is stuck: the daemon exits 1 to be restarted
    stuck_seconds: float = field(default=120.0, metadata={"min": 5.0, "max": 86400.0})


@dataclass
class EdgeTpuConfig:
    device: str = ""  # "" = any; else as pycoral: usb, usb:N, pci, pci:N, :N
    retry_seconds: float = field(default=60.0, metadata={"min": 1.0, "max": 86400.0})


@dataclass
class ModelConfig:
    dir: str = "/var/lib/craft-edge/models"  # convert-for-device's output folder, or one model folder in it
    prefer: str = field(default="auto", metadata={"choices": variants.CHOICES})
    # auto only picks CPU variants whose recorded box recall and precision against PyTorch reach this
    min_agreement: float = field(default=0.95, metadata={"min": 0.0, "max": 1.0})
    num_threads: int = field(default=0, metadata={"min": 0, "max": 64})  # 0: one per core
    edgetpu: EdgeTpuConfig = field(default_factory=EdgeTpuConfig)
    # off: the frame letterboxed into the model; full: native-scale tiles; adaptive: tiles where text may be
    tiling: str = field(default="adaptive", metadata={"choices": TILING_MODES})
    scale: float = field(default=1.0, metadata={"min": 0.1, "max": 1.0})  # frame scale for the tiles (1.0 = native)
    # pixels of picture around every tile core; at most half the tile model's shorter side less 16
    # (edge.detection.tiling)
    context: int = field(default=CONTEXT, metadata={"min": 0, "max": 4096})


@dataclass
class GatingConfig:
    """Video: run the model only on what changed since it last ran (edge.detection.gating)."""

    enabled: bool = False
    threshold: float = field(default=12.0, metadata={"min": 1.0, "max": 255.0})
    cell: int = field(default=8, metadata={"min": 1, "max": 16})  # <= half the smallest tile core (32 px)
    refresh_seconds: float = field(default=60.0, metadata={"min": 1.0, "max": 86400.0})


@dataclass
class DetectionConfig:
    text_threshold: float = field(default=0.7, metadata={"min": 0.0, "max": 1.0})
    link_threshold: float = field(default=0.4, metadata={"min": 0.0, "max": 1.0})
    low_text: float = field(default=0.4, metadata={"min": 0.0, "max": 1.0})


@dataclass
class TlsConfig:
    enabled: bool = False
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""


@dataclass
class HomeAssistantConfig:
    enabled: bool = False
    discovery_prefix: str = "homeassistant"


@dataclass
class SnapshotConfig:
    """Annotated JPEGs of the camera's view on ``<prefix>/snapshot`` (edge.messaging.snapshot); off by default."""

    enabled: bool = False
    # A snapshot at least this often while frames flow, sooner when the boxes change, but never two
    # within min_interval_seconds.
    interval_seconds: float = field(default=5.0, metadata={"min": 0.1, "max": 86400.0})
    min_interval_seconds: float = field(default=1.0, metadata={"min": 0.1, "max": 86400.0})
    max_width: int = field(default=640, metadata={"min": 32, "max": 8192})
    jpeg_quality: int = field(default=75, metadata={"min": 1, "max": 100})


@dataclass
class MqttConfig:
    host: str = "localhost"
    port: int = field(default=1883, metadata={"min": 1, "max": 65535})
    client_id: str = ""  # default: craft-edge-<device_id>
    username: str = ""
    password_env: str = "CRAFT_EDGE_MQTT_PASSWORD"
    topic_prefix: str = ""  # default: craft-edge/<device_id>
    qos: int = field(default=1, metadata={"choices": (0, 1, 2)})
    keepalive: int = field(default=30, metadata={"min": 5, "max": 3600})
    publish: str = field(default="every_frame", metadata={"choices": ("every_frame", "on_change")})
    heartbeat_seconds: float = field(default=30.0, metadata={"min": 1.0, "max": 86400.0})
    stats_interval_seconds: float = field(default=30.0, metadata={"min": 1.0, "max": 86400.0})
    reconnect_max_seconds: float = field(default=60.0, metadata={"min": 1.0, "max": 3600.0})
    # On SIGTERM, wait this long for the broker to acknowledge what was sent; the rest stays spooled.
    # below systemd's default TimeoutStopSec (90 s), which would SIGKILL a longer wait
    shutdown_ack_seconds: float = field(default=10.0, metadata={"min": 0.0, "max": 60.0})
    # Detections not yet acknowledged by the broker wait in a spool on disk (state directory).
    spool_max_messages: int = field(default=10000, metadata={"min": 10, "max": 10_000_000})
    spool_full_policy: str = field(default="drop_oldest", metadata={"choices": ("drop_oldest", "drop_newest")})
    message_expiry_seconds: int = field(default=0, metadata={"min": 0, "max": 31_536_000})
    tls: TlsConfig = field(default_factory=TlsConfig)
    home_assistant: HomeAssistantConfig = field(default_factory=HomeAssistantConfig)
    snapshot: SnapshotConfig = field(default_factory=SnapshotConfig)


def machine_device_id(hostname: str | None = None, machine_id_path: Path = MACHINE_ID_PATH) -> str:
    """The default device_id: the host name (lowercase, [a-z0-9_-]) and the first 8 hex digits of
    /etc/machine-id, so two Pis that both kept the host name ``raspberrypi`` still differ."""
    host = socket.gethostname() if hostname is None else hostname
    name = re.sub(r"[^a-z0-9_-]+", "-", host.lower()).strip("-") or "craft-edge"
    try:
        machine = machine_id_path.read_text().strip()[:8].lower()
    except OSError:
        machine = ""
    return f"{name}-{machine}" if re.fullmatch(r"[0-9a-f]{8}", machine) else name


@dataclass
class Config:
    # "" in config.yaml: derived from the machine (machine_device_id)
    device_id: str = field(default_factory=machine_device_id)
    source: SourceConfig = field(default_factory=SourceConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    detection: DetectionConfig = field(default_factory=DetectionConfig)
    gating: GatingConfig = field(default_factory=GatingConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    recognition: RecognitionConfig = field(default_factory=RecognitionConfig)
    regions: list[RegionConfig] = field(default_factory=list)
    state_dir: str = str(DEFAULT_STATE_DIR)  # $STATE_DIRECTORY (systemd) wins
    log_level: str = field(default="info", metadata={"choices": ("debug", "info", "warning", "error")})

    @property
    def topic_prefix(self) -> str:
        return self.mqtt.topic_prefix or f"craft-edge/{self.device_id}"

    @property
    def client_id(self) -> str:
        return self.mqtt.client_id or f"craft-edge-{self.device_id}"


def check_device_id(device_id: str, where: str) -> None:
    if (not device_id.strip() or not device_id.isprintable() or any(c in device_id for c in FORBIDDEN_ID_CHARACTERS)
            or len(device_id.encode()) > MAX_DEVICE_ID_BYTES):
        raise ConfigError(f"{where}: device_id {device_id[:40]!r}{'...' if len(device_id) > 40 else ''} must be "
                          f"printable, non-empty, at most {MAX_DEVICE_ID_BYTES} bytes, without '+', '#' or '/'")


def check_topic_prefix(prefix: str, where: str, key: str = "mqtt.topic_prefix") -> None:
    if not prefix.isprintable() or len(prefix.encode()) > MAX_TOPIC_PREFIX_BYTES:
        raise ConfigError(f"{where}: {key} {prefix!r} must be printable and at most {MAX_TOPIC_PREFIX_BYTES} bytes")
    if any(c in prefix for c in ("+", "#")) or prefix.startswith("$") or "" in prefix.split("/"):
        raise ConfigError(f"{where}: {key} {prefix!r} must not hold '+' or '#', start with '$' "
                          "(broker-internal topics) or have an empty level ('//', a leading or trailing '/')")


def check_readable(path: str, key: str, where: str) -> None:
    """TLS files are read when the connection is set up; a bad path is a config error, found at load."""
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise ConfigError(f"{where}: {key} {path}: cannot read ({exc.strerror or exc})") from exc


def check_mqtt_names(mqtt: MqttConfig, client_id: str, where: str) -> None:
    """What paho or the broker would refuse only once connecting: found at load, one line."""
    host = mqtt.host
    if not host or host != host.strip() or any(c.isspace() or not c.isprintable() for c in host):
        raise ConfigError(f"{where}: mqtt.host {host!r} must be a host name or address, non-empty, without spaces")
    if not client_id.isprintable() or len(client_id.encode()) > MAX_MQTT_STRING_BYTES:
        raise ConfigError(f"{where}: mqtt.client_id {client_id!r} must be printable and at most "
                          f"{MAX_MQTT_STRING_BYTES} bytes")


def _check(config: Config, where: str) -> None:
    if not config.device_id:
        config.device_id = machine_device_id()
    check_device_id(config.device_id, where)
    check_topic_prefix(config.topic_prefix, where)
    check_mqtt_names(config.mqtt, config.client_id, where)
    # paho raises inside its network thread on a bad filter, which would stop every reconnect
    check_topic_prefix(config.mqtt.home_assistant.discovery_prefix, where, "mqtt.home_assistant.discovery_prefix")
    if config.source.kind == "files" and not config.source.path:
        raise ConfigError(f"{where}: source.path is required when source.kind is files")
    detection = config.detection
    if detection.text_threshold <= detection.low_text:
        raise ConfigError(f"{where}: detection.text_threshold ({detection.text_threshold}) must be above "
                          f"detection.low_text ({detection.low_text})")
    if config.mqtt.qos == 0:
        raise ConfigError(f"{where}: mqtt.qos 0 is refused: the spool deletes a detection only when the broker "
                          "acknowledges it, and QoS 0 has no acknowledgement (use 1 or 2)")
    snapshot = config.mqtt.snapshot
    if snapshot.min_interval_seconds > snapshot.interval_seconds:
        raise ConfigError(f"{where}: mqtt.snapshot.min_interval_seconds ({snapshot.min_interval_seconds}) must not be "
                          f"above mqtt.snapshot.interval_seconds ({snapshot.interval_seconds})")
    try:
        check_reading(config.recognition, config.regions)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    tls = config.mqtt.tls
    if tls.enabled and bool(tls.cert_file) != bool(tls.key_file):
        raise ConfigError(f"{where}: mqtt.tls.cert_file and mqtt.tls.key_file go together")
    if tls.enabled:
        for key in ("ca_file", "cert_file", "key_file"):
            if getattr(tls, key):
                check_readable(getattr(tls, key), f"mqtt.tls.{key}", where)


def parse_config(text: str, where: str, base: Path | None = None) -> Config:
    """Config from YAML text; with ``base``, its relative paths are taken against that folder first."""
    try:
        data = yaml.safe_load(text)
    except RecursionError as exc:
        raise ConfigError(f"{where}: not valid YAML (nested too deep)") from exc
    except ValueError as exc:  # an integer of over 4,300 digits: Python's limit on int(str)
        raise ConfigError(f"{where}: not valid YAML ({' '.join(str(exc).split())})") from exc
    except yaml.reader.ReaderError as exc:  # a NUL or other control character
        problem = str(exc).splitlines()[0]  # "unacceptable character #x0000: special characters are not allowed"
        raise ConfigError(f"{where}: character {exc.position + 1} not valid YAML ({problem})") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        raise ConfigError(f"{where}:{line} not valid YAML ({problem})") from exc
    try:
        config = from_dict(Config, data if data is not None else {}, "config")
    except SchemaError as exc:
        raise ConfigError(f"{where}: {str(exc).removeprefix('config.')}") from exc
    except RecursionError as exc:
        raise ConfigError(f"{where}: a value nested too deep") from exc
    if base is not None:
        resolve_paths(config, base)  # before the checks: they open the TLS files
    _check(config, where)
    return config


def load_config(path: Path) -> Config:
    """The config file at ``path``; relative paths in it are taken against the file's folder."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config ({exc.strerror or exc})") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:  # an editor that saved a '°' or '€' as Latin-1
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{path}: line {line}: byte {data[exc.start]:#04x} is not UTF-8 (save the file as "
                          "UTF-8)") from exc
    return parse_config(text, str(path), absolute(path).parent)


def resolve_paths(config: Config, base: Path) -> None:
    """Make the config's relative file paths absolute against ``base``, so the working directory never matters.

    ``source.device`` is a path only when such a file exists; otherwise it is a camera index, a URL
    or a GStreamer pipeline and stays as written.
    """
    config.model.dir = str(absolute(config.model.dir, base))
    config.state_dir = str(absolute(config.state_dir, base))
    if config.source.path:
        config.source.path = str(absolute(config.source.path, base))
    video = video_file(config.source.device, base)
    if video is not None:
        config.source.device = str(video)
    tls = config.mqtt.tls
    for name in ("ca_file", "cert_file", "key_file"):
        if getattr(tls, name):
            setattr(tls, name, str(absolute(getattr(tls, name), base)))


def mqtt_password(config: MqttConfig, environ: dict[str, str] | None = None) -> str | None:
    """The password from the environment, or from systemd's credentials directory; else None."""
    environ = os.environ if environ is None else environ
    if config.password_env and environ.get(config.password_env):
        return environ[config.password_env]
    credentials = environ.get("CREDENTIALS_DIRECTORY")
    if credentials:
        path = Path(credentials) / CREDENTIAL_NAME
        if path.is_file():
            try:
                return path.read_text().rstrip("\n") or None
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"{path}: cannot read the MQTT password ({exc})") from exc
    return None


def state_dir(config: Config, environ: dict[str, str] | None = None) -> Path:
    """systemd's ``$STATE_DIRECTORY`` (first entry) if set, else ``state_dir`` from the config."""
    environ = os.environ if environ is None else environ
    from_systemd = environ.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(from_systemd or config.state_dir)
