#!/bin/sh
# The container's entrypoint (Dockerfile). Commands:
#   app      (default) migrate the database, then serve the app on :8501 (Streamlit), its
#            Prometheus /metrics on KDESK_METRICS_PORT from the start (deploy/run_app.py)
#   migrate  migrate the database and create the first admin on a fresh install (its one-time
#            password is printed once: `docker compose logs migrate`)
#   anything else runs as given: `kdesk worker`, `chroma run ...`, `kdesk users list`, ...
set -eu
app_dir=$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd)
cd "$app_dir"

case "${1:-app}" in
  app)
    kdesk db upgrade
    exec python deploy/run_app.py \
      --server.port 8501 \
      --server.address 0.0.0.0 \
      --server.maxUploadSize "${KDESK_MAX_UPLOAD_MB:-200}"
    ;;
  migrate)
    kdesk db upgrade
    exec kdesk users bootstrap
    ;;
  *)
    exec "$@"
    ;;
esac
