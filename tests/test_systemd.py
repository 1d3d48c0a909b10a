"""The systemd unit verifies, its sandbox exposure stays low, and the installer does what it says."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import unavailable

REPO = Path(__file__).resolve().parent.parent
UNIT = REPO / "systemd" / "craft-edge.service"
MAX_EXPOSURE = 1.7  # what README.md claims ("Installing on a Raspberry Pi")


@pytest.fixture
def systemd_analyze() -> None:
    """The tests that run systemd-analyze (Debian's systemd package; .ci/run installs it)."""
    if shutil.which("systemd-analyze") is None:
        unavailable("systemd-analyze is not installed on this machine")


def unit_with_real_binary(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this environment's craft-edge, so verify can check it."""
    binary = Path(sys.executable).parent / "craft-edge"
    unit = tmp_path / "craft-edge.service"
    unit.write_text(UNIT.read_text().replace("/opt/craft-edge/venv/bin/craft-edge", str(binary)))
    return unit


@pytest.mark.usefixtures("systemd_analyze")
def test_unit_verifies(tmp_path: Path) -> None:
    result = subprocess.run(["systemd-analyze", "verify", str(unit_with_real_binary(tmp_path))],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "craft-edge.service" not in result.stderr, result.stderr  # no warnings about our unit


@pytest.mark.usefixtures("systemd_analyze")
def test_security_exposure_is_low(tmp_path: Path) -> None:
    result = subprocess.run(["systemd-analyze", "security", "--offline=true", str(unit_with_real_binary(tmp_path))],
                            capture_output=True, text=True)
    match = re.search(r"Overall exposure level for craft-edge\.service: (\d+\.\d+)", result.stdout)
    assert match, result.stdout[-500:] + result.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE


def test_unit_has_what_a_device_service_needs() -> None:
    text = UNIT.read_text()
    for line in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "User=craft-edge", "ProtectSystem=strict",
                 "ProtectHome=yes", "PrivateTmp=yes", "NoNewPrivileges=yes", "StateDirectory=craft-edge",
                 "ConfigurationDirectory=craft-edge", "DevicePolicy=closed", "DeviceAllow=char-video4linux rw",
                 "DeviceAllow=char-apex rw", "DeviceAllow=char-usb_device rw", "DeviceAllow=char-vchiq rw",
                 "DeviceAllow=char-dma_heap rw", "DeviceAllow=char-media rw",
                 "LoadCredential=mqtt-password:/etc/craft-edge/mqtt-password", "ExecReload=/bin/kill -HUP $MAINPID",
                 "RestartPreventExitStatus=2"):
        assert line in text, line
    rules = (REPO / "systemd" / "99-craft-edge-coral.rules").read_text()
    assert 'ATTRS{idVendor}=="1a6e", ATTRS{idProduct}=="089a"' in rules
    assert 'ATTRS{idVendor}=="18d1", ATTRS{idProduct}=="9302"' in rules
    assert 'SUBSYSTEM=="apex"' in rules


def test_installer_dry_run(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "manifest.json").write_text("{}")
    result = subprocess.run(["bash", str(REPO / "systemd" / "install.sh"), "--dry-run", "--models", str(models)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "python3 -m venv --system-site-packages /opt/craft-edge/venv" in out
    assert f"pip install {REPO}[device]" in out
    assert "install -m 0600 /dev/null /etc/craft-edge/mqtt-password" in out
    assert "systemctl enable --now craft-edge.service" in out
    assert f"{REPO}/systemd/install-models.sh {models} /var/lib/craft-edge/models" in out
    bad = subprocess.run(["bash", str(REPO / "systemd" / "install.sh"), "--dry-run", "--models", str(tmp_path)],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "has no manifest.json" in bad.stderr


def test_reinstalling_models_replaces_them_without_nesting(tmp_path: Path) -> None:
    """The output folder lands where model.dir points by default, whatever its name."""
    models = tmp_path / "out"
    (models / "480x640").mkdir(parents=True)
    (models / "manifest.json").write_text("{}")
    (models / "480x640" / "old.tflite").write_bytes(b"old")
    target = tmp_path / "var-lib" / "models"
    target.parent.mkdir()
    install = REPO / "systemd" / "install-models.sh"
    subprocess.run(["bash", str(install), str(models), str(target)], check=True)
    (models / "480x640" / "old.tflite").unlink()
    (models / "480x640" / "new.tflite").write_bytes(b"new")
    subprocess.run(["bash", str(install), f"{models}/", f"{target}/"], check=True)  # reinstall, trailing slashes
    assert sorted(p.name for p in target.iterdir()) == ["480x640", "manifest.json"]
    assert sorted(p.name for p in (target / "480x640").iterdir()) == ["new.tflite"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["models"]
