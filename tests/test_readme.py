"""README's two commands do what README says."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path

from conftest import ROOT, free_port

README = (ROOT / "README.md").read_text()


def test_readme_gives_the_two_commands_and_ci_runs_the_second() -> None:
    assert "```sh\n./dev demo\n```" in README
    assert "```sh\n./dev test\n```" in README
    ci = (ROOT / ".ci" / "run").read_text()
    assert "./dev test" in ci


def test_dev_demo_brings_up_the_demo_store(tmp_path: Path) -> None:
    port = free_port()
    demo = subprocess.Popen(
        [str(ROOT / "dev"), "demo", "--port", str(port), "--data", str(tmp_path / "shop"),
         "--no-advertise"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
    )
    try:
        banner = []
        assert demo.stdout is not None
        for line in demo.stdout:
            banner.append(line)
            if line.startswith("Printer"):
                break
        text = "".join(banner)
        assert f"Till app: http://127.0.0.1:{port}/" in text
        assert f"Pair a till (valid 1 hour): http://127.0.0.1:{port}/#pair=" in text
        assert "Alice (cashier): PIN 1234" in text
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as reply:
            health = json.load(reply)
        assert health["status"] == "ok" and health["store_id"] == "demo-boulangerie"
    finally:
        demo.terminate()
        demo.wait(15)
    assert demo.returncode == 0
