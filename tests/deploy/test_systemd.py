"""deploy/systemd: the example units pass `systemd-analyze verify` (in a scratch root holding
stand-ins for the desk's executables) and run the desk as docs/deploy.md says."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from knowledge.core.settings import Settings
from tests.deploy.tools import DEPLOY, tool

SYSTEMD = DEPLOY / "systemd"
UNITS = sorted(SYSTEMD.glob("*.service"))
SYSTEM_UNITS = Path("/lib/systemd/system")


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(_joined((SYSTEMD / name).read_text()))
    return parser


def _joined(text: str) -> str:
    return text.replace("\\\n", " ")


def test_the_units_pass_systemd_analyze(tmp_path: Path) -> None:
    analyze = tool("systemd-analyze")
    if not SYSTEM_UNITS.is_dir():
        pytest.skip(f"no {SYSTEM_UNITS} to verify against")
    root = tmp_path / "root"
    shutil.copytree(SYSTEM_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    bindir = root / "opt/knowledge-desk/.venv/bin"
    bindir.mkdir(parents=True)
    for program in ("kdesk", "python", "chroma"):
        (bindir / program).write_text("#!/bin/sh\n")
        (bindir / program).chmod(0o755)
    etc = root / "etc/systemd/system"
    etc.mkdir(parents=True)
    names = []
    for path in UNITS:
        shutil.copy(path, etc)
        names.append(path.name.replace("@.", "@8501."))
    done = subprocess.run(
        [analyze, "verify", f"--root={root}", *(f"/etc/systemd/system/{n}" for n in names)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SYSTEMD_LOG_LEVEL": "notice"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", "systemd warns about the units"


def test_app_replicas_are_one_instance_per_port() -> None:
    app = unit("kdesk-app@.service")
    start = app["Service"]["ExecStart"]
    assert "deploy/run_app.py" in start, "metrics from the start, like the image"
    assert "--server.port %i" in start
    assert "--server.maxUploadSize ${KDESK_MAX_UPLOAD_MB}" in start
    assert app["Service"]["User"] != "root"
    assert "kdesk-migrate.service" in app["Unit"]["Requires"]
    worker = unit("kdesk-worker.service")
    assert worker["Service"]["ExecStart"].endswith("kdesk worker")
    assert "kdesk-migrate.service" in worker["Unit"]["After"]
    api = unit("kdesk-api.service")
    assert api["Service"]["ExecStart"].endswith("kdesk serve") and api["Service"]["User"] != "root"
    assert "kdesk-migrate.service" in api["Unit"]["Requires"]


def test_the_env_example_holds_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("KDESK_"):
            monkeypatch.delenv(key)
    for line in (SYSTEMD / "kdesk.env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, value = line.split("=", 1)
            assert key.startswith("KDESK_") and key[6:].lower() in Settings.model_fields, key
            monkeypatch.setenv(key, value)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.redis_url and settings.chroma_url and settings.database_url
    assert settings.max_upload_mb == 200
