"""The systemd unit and the example config are valid as shipped."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from conftest import EDGE, ROOT

UNIT = ROOT / "systemd" / "edge.service"


def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    # verify needs ExecStart to exist: point it at this checkout's edge.
    edge = Path(sys.executable).with_name("edge")
    assert edge.exists()
    unit = tmp_path / "edge.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/edge", str(edge)))
    result = subprocess.run([shutil.which("systemd-analyze") or "systemd-analyze", "verify",
                             str(unit)], capture_output=True, text=True, timeout=60)
    # verify exits 0 on warnings (unknown keys, bad values): any output is a failure.
    assert result.returncode == 0 and result.stderr == "" and result.stdout == "", result.stderr


def test_the_unit_is_hardened(tmp_path: Path) -> None:
    edge = Path(sys.executable).with_name("edge")
    unit = tmp_path / "edge.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/edge", str(edge)))
    result = subprocess.run(["systemd-analyze", "security", "--offline=true", str(unit)],
                            capture_output=True, text=True, timeout=60)
    exposure = float(result.stdout.split("Overall exposure level for edge.service:")[1].split()[0])
    assert exposure <= 3.0, result.stdout[-600:]


def test_the_example_config_checks_out() -> None:
    result = subprocess.run([*EDGE, "check", "--config", str(ROOT / "systemd" / "edge.toml")],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "listens on 0.0.0.0:8080" in result.stdout


def test_a_bad_config_is_explained(tmp_path: Path) -> None:
    config = tmp_path / "edge.toml"
    config.write_text('[server]\nport = "eighty"\nhots = "0.0.0.0"\n[[printers]]\nkind = "lp"\n')
    result = subprocess.run([*EDGE, "check", "--config", str(config)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert f"{config}: server.port must be a whole number" in result.stderr
    assert f"{config}: unknown setting server.hots" in result.stderr
    assert f"{config}: store.id is required" in result.stderr
    assert f"{config}: printers #1: name is required" in result.stderr
