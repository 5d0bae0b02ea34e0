"""Who runs ingestion jobs (knowledge.desk.jobs.run_job).

- ``KDESK_REDIS_URL`` set: Dramatiq on Redis. Uploads send the job's id to the ``ingest`` queue;
  `kdesk worker` processes run it. Dramatiq was chosen over RQ and Celery because its Redis
  broker acknowledges a message only after the job returns and re-delivers the messages of a
  worker whose heartbeats stopped (SIGKILL, OOM, a lost host), which is the crash story we
  need; its worker is threads in one process, so the embedding model is loaded once (RQ forks
  a process per job); and it is a small library where Celery is a platform.
- No Redis: a thread of the process that accepted the upload runs the same ``run_job``, one job
  at a time, and resumes the jobs a previous run of the process left unfinished.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import socket
import threading
import time
from typing import TYPE_CHECKING, Any, Protocol

from knowledge.core import metrics
from knowledge.core.errors import SettingsError
from knowledge.desk.jobs import JobError, run_job

if TYPE_CHECKING:
    from knowledge.desk.root import Desk

QUEUE = "ingest"
ACTOR = "kdesk_ingest"
# A job may read a 5,000-page PDF on a small CPU: Dramatiq's 10-minute default would kill it.
TIME_LIMIT_MS = 6 * 3600 * 1000
# Out of a million broker commands, this many also look for dead workers to re-deliver their
# messages: cheap (one sorted-set range), and often enough that a crash is noticed in seconds.
MAINTENANCE_CHANCE = 100_000
GAUGE_EVERY_S = 5.0
log = logging.getLogger("kdesk.workers")


class JobRunner(Protocol):
    def submit(self, job_id: str) -> None: ...

    def close(self) -> None: ...


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class LocalRunner:
    """One thread that runs the desk's jobs in this process, retrying an attempt that broke
    (with a growing pause) until the job's attempts are used up. ``resume``: also the jobs an
    earlier run left unfinished (the app does; a one-off `kdesk ingest` runs only its own)."""

    def __init__(self, desk: Desk, retry_pause_s: float = 1.0, *, resume: bool = True) -> None:
        self.desk = desk
        self.retry_pause_s = retry_pause_s
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="kdesk-jobs", daemon=True)
        self._thread.start()
        for job_id in desk.jobs.resumable() if resume else ():  # left by an earlier run
            self._queue.put(job_id)

    def submit(self, job_id: str) -> None:
        self._queue.put(job_id)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        name = worker_name()
        while (job_id := self._queue.get()) is not None:
            attempt = 0
            while True:
                try:
                    run_job(self.desk, job_id, name)
                    break
                except JobError:
                    attempt += 1
                    time.sleep(self.retry_pause_s * 2 ** min(attempt, 5))
                except Exception:  # noqa: BLE001 - never let one job stop the others
                    log.exception("job could not run", extra={"fields": {"job": job_id}})
                    break
            _publish_counts(self.desk)


def _publish_counts(desk: Desk) -> None:
    try:
        for state, count in desk.jobs.counts().items():
            if state in ("queued", "running"):
                metrics.INGEST_JOBS.labels(state).set(count)
    except Exception:  # noqa: BLE001 - a gauge is not worth failing for
        log.warning("could not count jobs", exc_info=True)


def redis_broker(url: str, heartbeat_s: float) -> Any:
    """The Dramatiq broker on Redis, with the ingest actor declared on it (sending needs the
    declaration; only a worker gives the actor a desk to run with)."""
    import dramatiq
    import redis
    from dramatiq.brokers.redis import RedisBroker

    try:
        broker = RedisBroker(
            url=url,
            namespace="kdesk",
            heartbeat_timeout=int(heartbeat_s * 1000),
            maintenance_chance=MAINTENANCE_CHANCE,
        )
        broker.client.ping()
    except (redis.RedisError, ValueError) as exc:
        raise SettingsError(f"KDESK_REDIS_URL: cannot reach Redis at {url} ({exc})") from None
    declare = dramatiq.actor(
        actor_name=ACTOR,
        queue_name=QUEUE,
        broker=broker,
        max_retries=0,  # attempts are counted on the job row (run_job), across crashes too
        time_limit=TIME_LIMIT_MS,
    )
    declare(_ingest_message)
    return broker


_worker_desk: Desk | None = None  # the desk of this `kdesk worker` process


def _ingest_message(job_id: str) -> None:
    if _worker_desk is None:
        raise RuntimeError("this process sends ingest jobs but does not run them")
    try:
        run_job(_worker_desk, job_id, worker_name())
    except JobError:  # another attempt follows: send it again after a pause
        _send(_worker_desk, job_id, delay_ms=2000)
    finally:
        _publish_counts(_worker_desk)


def _send(desk: Desk, job_id: str, delay_ms: int | None = None) -> None:
    import dramatiq

    message: dramatiq.Message[Any] = dramatiq.Message(
        queue_name=QUEUE, actor_name=ACTOR, args=(job_id,), kwargs={}, options={}
    )
    desk.broker.enqueue(message, delay=delay_ms)


class RedisRunner:
    """Jobs go to Redis; `kdesk worker` processes run them."""

    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    def submit(self, job_id: str) -> None:
        _send(self.desk, job_id)

    def close(self) -> None:
        self.desk.broker.close()


def build_runner(desk: Desk, *, resume: bool) -> JobRunner:
    return RedisRunner(desk) if desk.settings.redis_url else LocalRunner(desk, resume=resume)


def run_worker(desk: Desk, threads: int = 1, stop: threading.Event | None = None) -> None:
    """`kdesk worker`: run jobs from Redis until SIGTERM/SIGINT (or ``stop``), then finish
    the job at hand. Jobs left queued in the database without a live worker are sent again
    at start (their messages may have been lost with a Redis that kept no data)."""
    import dramatiq

    global _worker_desk
    if not desk.settings.redis_url:
        raise SettingsError("kdesk worker needs KDESK_REDIS_URL (without it the app runs jobs)")
    _worker_desk = desk
    broker = desk.broker
    desk.retriever  # noqa: B018 - load the embedding model before the first job, not in it
    desk.embedder.embed_query("warm up")
    for job_id in desk.jobs.resumable():
        _send(desk, job_id)
    worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=1000)
    worker.queue_prefetch = threads  # no job waits in this process while another could run it
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    worker.start()
    log.info("worker started", extra={"fields": {"name": worker_name(), "threads": threads}})
    try:
        while not stop.wait(GAUGE_EVERY_S):
            _publish_counts(desk)
    finally:
        worker.stop(timeout=60_000)
        _worker_desk = None
