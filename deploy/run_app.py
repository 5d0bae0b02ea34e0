"""`streamlit run app.py OPTIONS...` with the app's Prometheus endpoint started first.

The app starts its /metrics server (KDESK_METRICS_PORT) inside the cached desk, that is when the
first browser session runs the script: until someone opens a replica, Prometheus would find it
down. This starts the same server (``start_metrics_server`` is once per process and address)
before Streamlit, in the same process, so each replica answers /metrics as soon as it runs.

    python deploy/run_app.py --server.port 8501 --server.address 0.0.0.0
"""

from __future__ import annotations

import sys
from pathlib import Path

from knowledge.core.errors import SettingsError
from knowledge.core.metrics import start_metrics_server
from knowledge.core.settings import load_settings

APP = Path(__file__).resolve().parent.parent / "app.py"


def main(argv: list[str]) -> int:
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    start_metrics_server(settings.metrics_port, settings.metrics_host)

    from streamlit.web import cli

    return int(cli.main(["run", str(APP), *argv], prog_name="streamlit") or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
