"""knowledge/ and ingest/ must stay free of UI code; ingest/ must not reach into knowledge/."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(package: str) -> set[str]:
    names: set[str] = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names


def test_knowledge_and_ingest_never_import_streamlit_in_source():
    assert "streamlit" not in imported_modules("knowledge")
    assert "streamlit" not in imported_modules("ingest")


def test_ingest_does_not_import_knowledge():
    assert "knowledge" not in imported_modules("ingest")


def test_importing_every_module_loads_no_streamlit():
    modules = [
        f"{p.parent.name}.{p.stem}"
        for pkg in ("knowledge", "ingest")
        for p in (ROOT / pkg).glob("*.py")
        if p.stem != "__init__"
    ]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "assert 'streamlit' not in sys.modules, 'streamlit was imported'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
