"""TLS, passwords and ACLs against a real mosquitto that requires them; secrets never leak."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import SAMPLES
from tests.daemon_helpers import start_daemon, write_config
from tests.mqtt_helpers import Broker, Subscriber, free_port

pytestmark = pytest.mark.conversion
# A test secret that must never appear in logs, status or stats.
PASSWORD = "c0rrect-h0rse-battery"


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_ca(folder: Path, name: str) -> tuple[Path, Path]:
    key, cert = folder / f"{name}.key", folder / f"{name}.crt"
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
            "-keyout", str(key), "-out", str(cert))
    return key, cert


def signed(folder: Path, name: str, ca: tuple[Path, Path], server: bool) -> tuple[Path, Path]:
    key, csr, cert = folder / f"{name}.key", folder / f"{name}.csr", folder / f"{name}.crt"
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(csr))
    extensions = folder / f"{name}.ext"
    extensions.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n" if server else "extendedKeyUsage=clientAuth\n")
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[1]), "-CAkey", str(ca[0]), "-CAcreateserial",
            "-days", "2", "-extfile", str(extensions), "-out", str(cert))
    return key, cert


@pytest.fixture
def secure(tmp_path: Path):
    """A broker: TLS listener (client certificate, password, ACL) plus a plain local observer listener."""
    pki = tmp_path / "pki"
    pki.mkdir()
    ca = make_ca(pki, "ca")
    server = signed(pki, "server", ca, server=True)
    client = signed(pki, "camera", ca, server=False)
    rogue_ca = make_ca(pki, "rogue")
    passwords = pki / "passwords"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwords), "camera", PASSWORD], check=True)
    acl = pki / "acl"
    acl.write_text("user camera\ntopic readwrite craft-edge/secure/#\n")
    observer_port = free_port()
    listener = (f"cafile {ca[1]}\ncertfile {server[1]}\nkeyfile {server[0]}\nrequire_certificate true\n"
                f"allow_anonymous false\npassword_file {passwords}\nacl_file {acl}\n")
    broker = Broker(tmp_path / "broker", extra_config=f"listener {observer_port} 127.0.0.1\nallow_anonymous true\n",
                    listener_options=listener, extra_ports=(observer_port,))
    broker.start()
    observer = SimpleNamespace(host="127.0.0.1", port=observer_port)  # the plain listener, for watching
    yield {"broker": broker, "observer": observer, "ca": ca, "client": client, "rogue_ca": rogue_ca,
           "folder": tmp_path}
    broker.stop()


def secure_config(setup: dict, model_dir: Path, ca_cert: Path, device_id: str = "secure") -> Path:
    return write_config(
        setup["folder"] / f"config-{device_id}.yaml", setup["broker"].port, model_dir, SAMPLES, device_id=device_id,
        mqtt={"username": "camera", "reconnect_max_seconds": 1, "tls": {
            "enabled": True, "ca_file": str(ca_cert), "cert_file": str(setup["client"][1]),
            "key_file": str(setup["client"][0])}},
    )


def credentials(folder: Path, password: str) -> dict[str, str]:
    directory = folder / "credentials"
    directory.mkdir(exist_ok=True)
    (directory / "mqtt-password").write_text(password + "\n")
    return {"CREDENTIALS_DIRECTORY": str(directory)}


def connection_attempts(broker: Broker) -> int:
    return broker.log.read_text().count("New connection from 127.0.0.1") if broker.log.exists() else 0


def test_tls_client_certificate_and_password_work_and_never_leak(secure: dict, model_dir: Path) -> None:
    observer = Subscriber(secure["observer"], "craft-edge/secure/#")
    daemon = start_daemon(secure_config(secure, model_dir, secure["ca"][1]),
                          env=credentials(secure["folder"], PASSWORD))
    try:
        # both in one wait: on a loaded machine two stats (one a second) can come before the fourth frame
        assert observer.wait_for(lambda: len(observer.on("craft-edge/secure/stats")) >= 2
                                 and len(observer.on("craft-edge/secure/detections")) > 3, timeout=120)
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=30)
        assert daemon.returncode == 0
    finally:
        daemon.kill()
    everything = stderr + "".join(m.payload.decode() for m in observer.messages)
    assert PASSWORD not in everything
    stats = json.loads(observer.on("craft-edge/secure/stats")[-1].payload)
    assert stats["broker"] == "connected" and stats["rejected_by_broker"] == 0


def test_wrong_password_is_refused_clearly_and_retried(secure: dict, model_dir: Path) -> None:
    daemon = start_daemon(secure_config(secure, model_dir, secure["ca"][1]),
                          env=credentials(secure["folder"], "wrong-" + PASSWORD))
    try:
        deadline = time.monotonic() + 120
        while connection_attempts(secure["broker"]) < 3 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert connection_attempts(secure["broker"]) >= 3, "the daemon did not retry"
        assert daemon.poll() is None
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=30)
    finally:
        daemon.kill()
    refusals = [line for line in stderr.splitlines() if "the broker refused the connection" in line]
    assert refusals and ("Bad user name or password" in refusals[0] or "Not authorized" in refusals[0]), stderr
    assert len(refusals) == 1  # one line per distinct failure, not one per retry
    assert PASSWORD not in stderr


def test_untrusted_server_certificate_is_refused_clearly_and_retried(secure: dict, model_dir: Path) -> None:
    daemon = start_daemon(secure_config(secure, model_dir, secure["rogue_ca"][1]),
                          env=credentials(secure["folder"], PASSWORD))
    try:
        deadline = time.monotonic() + 120
        while connection_attempts(secure["broker"]) < 3 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert connection_attempts(secure["broker"]) >= 3, "the daemon did not retry"
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=30)
    finally:
        daemon.kill()
    failures = [line for line in stderr.splitlines() if "cannot connect" in line]
    assert len(failures) == 1 and "certificate verify failed" in failures[0], stderr
    assert "Traceback" not in stderr


def test_acl_refusals_are_counted(secure: dict, model_dir: Path) -> None:
    observer = Subscriber(secure["observer"], "craft-edge/#")
    logged = secure["folder"] / "daemon.log"
    with logged.open("w") as log:  # read while it runs (a pipe would have to be drained)
        daemon = start_daemon(secure_config(secure, model_dir, secure["ca"][1], device_id="elsewhere"),
                              env=credentials(secure["folder"], PASSWORD), stderr=log)
    try:
        deadline = time.monotonic() + 120  # start, model load and the TLS connect; slower on a loaded machine
        while "check its ACL" not in logged.read_text() and time.monotonic() < deadline and daemon.poll() is None:
            time.sleep(0.2)
        daemon.send_signal(signal.SIGTERM)
        daemon.communicate(timeout=30)
    finally:
        daemon.kill()
    stderr = logged.read_text()
    assert observer.on("craft-edge/elsewhere/detections") == []
    assert "the broker refused a message" in stderr and "check its ACL" in stderr
