"""Prometheus metrics: what Knowledge Desk counts and times, and the endpoint that serves them.

``start_metrics_server(port)`` serves ``/metrics`` on 127.0.0.1 (``KDESK_METRICS_PORT``; 0 turns
it off). It is idempotent per address, so Streamlit reruns and rebuilt desks never start a second
server. Labels stay few and bounded (role, channel, outcome, stage, status, a known tool's
name): never user names or questions.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
)

from knowledge.core.types import Answer, IngestReport, Requester

log = logging.getLogger("kdesk.metrics")

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120)

QUESTIONS = Counter(
    "kdesk_questions", "Questions answered, by outcome", ["channel", "role", "outcome"]
)
ABSTENTIONS = Counter("kdesk_abstentions", "Answers that said the knowledge base lacks it")
MODEL_ERRORS = Counter("kdesk_model_errors", "Answers whose model call failed", ["model"])
REQUEST_ERRORS = Counter(
    "kdesk_request_errors", "Questions that failed before an answer could start", ["stage"]
)
STAGE_SECONDS = Histogram(
    "kdesk_answer_stage_seconds",
    "Time from the question to the end of each stage (retrieval, first_token, total)",
    ["stage"],
    buckets=LATENCY_BUCKETS,
)
TOKENS = Counter("kdesk_model_tokens", "Tokens read and written by the chat model", ["direction"])
FEEDBACK = Counter("kdesk_feedback", "Thumbs given to answers", ["rating"])
USAGE_RECORD_ERRORS = Counter("kdesk_usage_record_errors", "Usage events that could not be stored")
INGESTED_FILES = Counter("kdesk_ingested_files", "Files ingested, by result", ["status"])
INGESTED_PAGES = Counter("kdesk_ingested_pages", "Pages read from ingested files")
INGESTED_CHUNKS = Counter("kdesk_ingested_chunks", "Chunks stored from ingested files")
INGEST_SECONDS = Histogram(
    "kdesk_ingest_file_seconds", "Time to ingest one file", buckets=LATENCY_BUCKETS
)

INGEST_JOBS = Gauge(
    "kdesk_ingest_jobs", "Ingestion jobs by state (queued, running), read at scrape", ["state"]
)
INGEST_JOB_FAILURES = Counter(
    "kdesk_ingest_job_failures", "Ingestion jobs that failed after all retries"
)
INDEX_LOADS = Counter(
    "kdesk_index_loads", "Search indexes made ready, by how (loaded, built)", ["how"]
)
INDEX_LOAD_SECONDS = Histogram(
    "kdesk_index_load_seconds",
    "Time to make a collection's search indexes ready",
    ["how"],
    buckets=LATENCY_BUCKETS,
)
TOOL_CALLS = Counter("kdesk_tool_calls", "Tool calls, by tool and outcome", ["tool", "outcome"])
TOOL_SECONDS = Histogram(
    "kdesk_tool_call_seconds", "Time a tool call took", ["tool"], buckets=LATENCY_BUCKETS
)
API_REQUESTS = Counter(
    "kdesk_api_requests", "API requests, by route and status", ["method", "route", "status"]
)
API_SECONDS = Histogram(
    "kdesk_api_request_seconds",
    "Time until an API response starts (a streamed answer's first bytes)",
    ["route"],
    buckets=LATENCY_BUCKETS,
)


def observe_answer(
    answer: Answer, requester: Requester, tokens_in: int = 0, tokens_out: int = 0
) -> None:
    outcome = "error" if answer.error else "abstained" if answer.abstained else "answered"
    QUESTIONS.labels(requester.channel, requester.role, outcome).inc()
    if answer.abstained:
        ABSTENTIONS.inc()
    if answer.error:
        MODEL_ERRORS.labels(answer.model).inc()
    STAGE_SECONDS.labels("retrieval").observe(answer.retrieval_ms / 1000)
    if answer.first_token_ms is not None:
        STAGE_SECONDS.labels("first_token").observe(answer.first_token_ms / 1000)
    STAGE_SECONDS.labels("total").observe(answer.total_ms / 1000)
    TOKENS.labels("in").inc(tokens_in)
    TOKENS.labels("out").inc(tokens_out)


def observe_ingest(report: IngestReport) -> None:
    INGESTED_FILES.labels(report.status).inc()
    if report.status in ("added", "replaced"):
        INGESTED_PAGES.inc(report.pages)
        INGESTED_CHUNKS.inc(report.chunks)
    INGEST_SECONDS.observe(report.seconds)


@dataclass
class MetricsServer:
    host: str
    port: int
    server: WSGIServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


_servers: dict[tuple[str, int], MetricsServer] = {}
_lock = threading.Lock()


def start_metrics_server(
    port: int, host: str = "127.0.0.1", registry: CollectorRegistry = REGISTRY
) -> MetricsServer | None:
    """Serve /metrics at host:port once per process (later calls return the same server).
    Port 0 means off. A port already taken is logged, not raised: the app must still start."""
    if not port:
        return None
    with _lock:
        if (host, port) in _servers:
            return _servers[(host, port)]
        try:
            server, thread = start_http_server(port, addr=host, registry=registry)
        except OSError as exc:
            log.error("metrics endpoint not started on %s:%s: %s", host, port, exc)
            return None
        started = MetricsServer(host, port, server, thread)
        _servers[(host, port)] = started
        log.info("metrics endpoint started", extra={"fields": {"url": started.url}})
        return started


def stop_metrics_server(port: int, host: str = "127.0.0.1") -> None:
    with _lock:
        server = _servers.pop((host, port), None)
    if server:
        server.stop()
