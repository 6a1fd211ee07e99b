"""Long work off the request path: a job has an id, a stage and progress (with rate and ETA), then a result or an
error to poll. Readers' jobs share a small thread pool; writers' jobs run one at a time on their own thread."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from tubelet.errors import TubeletError

log = logging.getLogger("tubelet.serve")


class Busy(TubeletError):
    """Too many jobs waiting: the client should try again later."""


@dataclass
class Job:
    """One piece of long work and what is known of it so far."""

    id: str
    kind: str
    status: str = "queued"  # queued → running → done | failed
    stage: str = "waiting"
    progress: float = 0.0  # of the current stage, in [0, 1]
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    files: dict[str, str] = field(default_factory=dict)  # name → server path of an artefact (e.g. report.html)
    _stage_started: float = 0.0

    def report(self, stage: str, progress: float) -> None:
        """Move to `stage` (its clock restarts when the stage changes) at `progress` in [0, 1]."""
        if stage != self.stage:
            self.stage, self._stage_started = stage, time.monotonic()
        self.progress = min(1.0, max(0.0, float(progress)))

    def to_dict(self) -> dict[str, Any]:
        eta = None
        if self.status == "running" and 0 < self.progress < 1:
            spent = time.monotonic() - self._stage_started
            eta = round(spent * (1 - self.progress) / self.progress, 1)
        elapsed = ((self.finished or time.time()) - self.started) if self.started else 0.0
        return {"id": self.id, "kind": self.kind, "status": self.status, "stage": self.stage,
                "progress": round(self.progress, 4), "eta_s": eta, "elapsed_s": round(elapsed, 3),
                "result": self.result, "error": self.error,
                "links": {k: f"/api/jobs/{self.id}/{k}" for k in self.files}}


Work = Callable[[Job], dict[str, Any]]


class Jobs:
    """Runs jobs on threads, keeps the last `keep` of them for polling, refuses new ones past `max_waiting`."""

    def __init__(self, readers: int = 1, keep: int = 256, max_waiting: int = 16) -> None:
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="tubelet-reader")
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="tubelet-writer")
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._cleanups: dict[str, Callable[[], None]] = {}
        self._lock = threading.Lock()
        self.keep, self.max_waiting = keep, max_waiting

    def submit(self, kind: str, work: Work, *, writer: bool = False, cleanup: Callable[[], None] | None = None,
               ) -> Job:
        """Queue `work(job)`; its return value becomes the job's result. `cleanup` runs when the job is forgotten."""
        with self._lock:
            waiting = sum(j.status == "queued" for j in self._jobs.values())
            if waiting >= self.max_waiting:
                raise Busy(f"{waiting} jobs are already waiting; try again in a moment")
            job = Job(uuid.uuid4().hex, kind)
            self._jobs[job.id] = job
            if cleanup:
                self._cleanups[job.id] = cleanup
            self._forget_old()
        (self._writer if writer else self._readers).submit(self._run, job, work)
        return job

    def _run(self, job: Job, work: Work) -> None:
        job.status, job.started = "running", time.time()
        job.report("starting", 0.0)
        try:
            job.result = work(job)
            job.status = "done"
            job.report("done", 1.0)
        except TubeletError as e:
            job.status, job.error = "failed", str(e)
        except Exception:  # a bug: the log gets the traceback, the client a plain message
            log.exception("job %s (%s) failed", job.id, job.kind)
            job.status, job.error = "failed", "internal error while running this job (see the server log)"
        finally:
            job.finished = time.time()

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def _forget_old(self) -> None:
        """Drop the oldest finished jobs beyond `keep` (and their files)."""
        finished = [j for j in self._jobs.values() if j.finished is not None]
        for job in finished[:max(0, len(self._jobs) - self.keep)]:
            del self._jobs[job.id]
            self._clean(job.id)

    def _clean(self, job_id: str) -> None:
        cleanup = self._cleanups.pop(job_id, None)
        if cleanup:
            try:
                cleanup()
            except OSError as e:
                log.warning("cleaning up job %s: %s", job_id, e)

    def shutdown(self) -> None:
        """Stop taking work, wait for running jobs, remove every job's files."""
        self._readers.shutdown(wait=True, cancel_futures=True)
        self._writer.shutdown(wait=True, cancel_futures=True)
        for job_id in list(self._cleanups):
            self._clean(job_id)
