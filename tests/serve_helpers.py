"""The real server for tests: a small catalog, `tubelet serve` in a subprocess on 127.0.0.1 (a free port), httpx."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
from conftest import clip

from tubelet.catalog.indexing import add_to_catalog

TOKEN = "test-token-123"
MODEL = {"num_frames": 4, "image_size": 64}  # a random-init vit_tiny small enough for a busy 2-core machine
INDEXED = ["cat_lying_blanket.mp4", "tennis_practice.mp4", "bw_film_dialogue.mp4", "houseplant_static_short.mp4"]


def make_catalog(root: Path, names: list[str] = INDEXED) -> Path:
    add_to_catalog(root, [clip(n) for n in names], "vit_tiny", overrides=MODEL)
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(catalog: Path, tmp: Path, *args: str, token: str | None = TOKEN):
    """`tubelet serve` in a subprocess; yields (httpx client, base url, the server's temp dir, its log file)."""
    port = free_port()
    tmp.mkdir(parents=True, exist_ok=True)
    log = tmp / "server.log"
    env = {**os.environ, "TMPDIR": str(tmp), "OMP_NUM_THREADS": "1"}
    env.pop("TUBELET_TOKEN", None)
    cmd = [sys.executable, "-m", "tubelet.cli", "serve", "--catalog", str(catalog), "--port", str(port), *args]
    if token:
        cmd += ["--token", token]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=60) as client:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if client.get("/api/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"server did not start:\n{log.read_text()}")
                time.sleep(0.2)
            yield client, base, tmp, log
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_job(client: httpx.Client, job: dict, timeout: float = 300) -> dict:
    """Poll a job until it is done or failed."""
    deadline = time.monotonic() + timeout
    while job["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, f"job {job['id']} still {job['status']} after {timeout} s"
        time.sleep(0.2)
        r = client.get(f"/api/jobs/{job['id']}")
        assert r.status_code == 200, r.text
        job = r.json()
    return job


def upload(client: httpx.Client, endpoint: str, path: Path, data: dict | None = None,
           headers: dict | None = None) -> httpx.Response:
    with open(path, "rb") as f:
        return client.post(endpoint, files={"file": (path.name, f, "video/mp4")}, data=data or {},
                           headers=headers or {})
