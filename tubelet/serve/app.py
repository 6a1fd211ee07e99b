"""The HTTP API and the web page over one catalog (FastAPI; run by `tubelet serve` on uvicorn, docs at /docs).

Quick reads (listing, stats, thumbnails, search or originality of a catalog video) answer at once; work on an
upload (search, originality, analysis, adding it) answers 202 with a job to poll at /api/jobs/{id}. Adding and
removing videos need the server's token. Every error is JSON `{"error": "…"}` with a 4xx code.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, Form, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles

from tubelet.errors import TubeletError
from tubelet.serve.guard import Edge, install_error_handlers, token_problem
from tubelet.serve.jobs import Job, Jobs
from tubelet.serve.service import THUMB_HEIGHTS, NotFound, Service, remove_tree
from tubelet.serve.uploads import Upload, UploadError, receive

STATIC = Path(__file__).parent / "static"
VIDEO_ID = r"^[0-9a-f]{12}$"
JOB_ID = r"^[0-9a-f]{32}$"
MAX_SECONDS = 1e7  # no video is longer: bounds every time parameter
WRITES = [("POST", re.compile(r"^/api/videos/?$")), ("DELETE", re.compile(r"^/api/videos/[^/]*/?$"))]


@dataclass(frozen=True)
class ServeSettings:
    """How one server runs: its catalog, the write token, limits."""

    catalog: Path
    token: str | None = None
    max_upload_bytes: int = 200 * 2**20
    readers: int = 1  # jobs on uploads running at once (each uses the model)
    media: Path | None = None  # where uploaded videos added to the catalog are kept (default CATALOG/media)
    anomaly: Path | None = None  # a normal model (`tubelet anomaly fit`) for POST /api/anomaly


VideoId = Annotated[str, PathParam(pattern=VIDEO_ID, description="A catalog video id (12 hex digits).")]
Start = Annotated[float | None, Query(ge=0, le=MAX_SECONDS, description="Query from this second on.")]
End = Annotated[float | None, Query(gt=0, le=MAX_SECONDS, description="Query up to this second.")]
K = Annotated[int, Query(ge=1, le=100, description="How many videos to return.")]
Threshold = Annotated[float | None, Query(ge=-1, le=1, description="Segment similarity that counts as a copy "
                                                                   "(default: calibrated on the catalog).")]
MinRun = Annotated[int, Query(ge=1, le=1000, description="Consecutive matching segments a copied span needs.")]
FlagAt = Annotated[float, Query(gt=0, le=1, description="Flag a video sharing this fraction or more.")]
UploadField = Annotated[UploadFile, File(description="A video file.")]


BEARER = HTTPBearer(auto_error=False, description="The token the server was started with (--token).")


def writer(request: Request, cred: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]) -> None:
    """Writes need the server's token (Edge has checked it before the body was read; checked again here)."""
    problem = token_problem(request.app.state.settings.token, f"Bearer {cred.credentials}" if cred else None)
    if problem:
        raise UploadError(problem[1], problem[0])


def _span(start: float | None, end: float | None) -> None:
    if start is not None and end is not None and end <= start:
        raise UploadError(f"end ({end}) must be after start ({start})", 422)


def create_app(settings: ServeSettings) -> FastAPI:
    """The app over `settings.catalog` (which must exist)."""
    root = Path(settings.catalog).resolve()
    service = Service(root, Path(settings.media or root / "media").resolve(), settings.anomaly)
    workdir = Path(tempfile.mkdtemp(prefix="tubelet-serve-"))
    jobs = Jobs(readers=settings.readers)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        jobs.shutdown()
        remove_tree(workdir)

    app = FastAPI(title="tubelet", lifespan=lifespan,
                  description="Search a video catalog by what videos look like and how they move; originality "
                              "and pre-publish analysis of uploads. The web page is at /.")
    app.add_middleware(Edge, token=settings.token, max_body=settings.max_upload_bytes + 2**16,
                       is_write=lambda method, path: any(m == method and p.match(path) for m, p in WRITES))

    def scrub(message: str) -> str:
        return message.replace(str(workdir), "upload").replace(str(root), root.name)

    install_error_handlers(app, scrub)
    async def take(file: UploadFile) -> Upload:
        return await run_in_threadpool(receive, file.file, file.filename, workdir, settings.max_upload_bytes)

    def start_job(kind: str, up: Upload, work: Callable[[Job], dict[str, Any]], writes: bool = False,
              keep: Path | None = None) -> JSONResponse:
        def run(job: Job) -> dict[str, Any]:
            try:
                return work(job)
            except TubeletError as e:
                raise TubeletError(scrub(up.scrub(str(e)))) from None
            finally:
                up.remove()

        try:
            job = jobs.submit(kind, run, writer=writes, cleanup=(lambda: remove_tree(keep)) if keep else None)
        except BaseException:
            up.remove()
            raise
        return JSONResponse(job.to_dict(), 202, headers={"Location": f"/api/jobs/{job.id}"})

    # ---- the page ---------------------------------------------------------------------------------------------
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    # ---- catalog --------------------------------------------------------------------------------------------
    @app.get("/api/health", tags=["catalog"])
    def health() -> dict[str, Any]:
        """The server is up; how many videos its catalog holds."""
        return {"status": "ok", "videos": len(service.snapshot().records)}

    @app.get("/api/catalog", tags=["catalog"])
    def catalog_stats() -> dict[str, Any]:
        """Size, model and search mode of the catalog, and what this server allows."""
        return {**service.stats(), "writes": settings.token is not None, "anomaly": service.normal is not None,
                "max_upload_bytes": settings.max_upload_bytes}

    @app.get("/api/videos", tags=["catalog"])
    def list_videos(offset: Annotated[int, Query(ge=0, le=10**9)] = 0, limit: Annotated[int, Query(ge=1, le=500)] = 50,
                    sort: Annotated[str, Query(pattern="^(added|name|duration)$")] = "added",
                    q: Annotated[str, Query(max_length=200, description="Part of a name or id.")] = "",
                    ) -> dict[str, Any]:
        """The catalog's videos, a page at a time."""
        return service.videos(offset, limit, sort, q)

    @app.get("/api/videos/{video_id}", tags=["catalog"])
    def get_video(video_id: VideoId) -> dict[str, Any]:
        """One video's record."""
        return service.video(video_id)

    @app.get("/api/videos/{video_id}/segments", tags=["catalog"])
    def get_segments(video_id: VideoId, vectors: bool = False) -> dict[str, Any]:
        """The video's segments (start and end seconds), with their vectors when asked."""
        return service.segments(video_id, vectors)

    @app.get("/api/videos/{video_id}/thumbnail", tags=["catalog"],
             responses={200: {"content": {"image/jpeg": {}}}})
    def thumbnail(video_id: VideoId, t: Annotated[float | None, Query(ge=0, le=MAX_SECONDS)] = None,
                  height: Annotated[int, Query(ge=THUMB_HEIGHTS[0], le=THUMB_HEIGHTS[1])] = 144) -> Response:
        """A JPEG of the frame at `t` seconds (default: the middle), `height` pixels on its short side."""
        return Response(service.thumbnail(video_id, t, height), media_type="image/jpeg",
                        headers={"Cache-Control": "max-age=3600"})

    # ---- search and originality -------------------------------------------------------------------------------
    @app.get("/api/videos/{video_id}/similar", tags=["search"])
    def similar(video_id: VideoId, k: K = 10, start: Start = None, end: End = None) -> dict[str, Any]:
        """Catalog videos most like this one (or its segment start–end), with where they match."""
        _span(start, end)
        return service.similar(video_id, k, start, end)

    @app.post("/api/search", tags=["search"], status_code=202)
    async def search_upload(file: UploadField, k: Annotated[int, Form(ge=1, le=100)] = 10,
                            start: Annotated[float | None, Form(ge=0, le=MAX_SECONDS)] = None,
                            end: Annotated[float | None, Form(gt=0, le=MAX_SECONDS)] = None) -> JSONResponse:
        """Catalog videos most like an uploaded video (or its segment start–end): a job; poll /api/jobs/{id}."""
        _span(start, end)
        up = await take(file)
        return start_job("search", up, lambda job: service.search_upload(up, job, k, start, end))

    @app.get("/api/videos/{video_id}/originality", tags=["originality"])
    def originality_of(video_id: VideoId, threshold: Threshold = None, min_run: MinRun = 2,
                       flag_at: FlagAt = 0.7) -> dict[str, Any]:
        """How much of a catalog video repeats the other catalog videos, where, and from which."""
        return service.originality_of(video_id, threshold, min_run, flag_at)

    @app.post("/api/originality", tags=["originality"], status_code=202)
    async def originality_upload(file: UploadField,
                                 threshold: Annotated[float | None, Form(ge=-1, le=1)] = None,
                                 min_run: Annotated[int, Form(ge=1, le=1000)] = 2,
                                 flag_at: Annotated[float, Form(gt=0, le=1)] = 0.7) -> JSONResponse:
        """Originality of an uploaded video: copied spans with their sources, share, flag. A job."""
        up = await take(file)
        return start_job("originality", up,
                         lambda job: service.originality_upload(up, job, threshold, min_run, flag_at))

    @app.post("/api/analyze", tags=["analysis"], status_code=202)
    async def analyze_upload(file: UploadField, threshold: Annotated[float | None, Form(ge=-1, le=1)] = None,
                             catalog: Annotated[bool, Form(description="Compare with the catalog.")] = True,
                             ) -> JSONResponse:
        """Pre-publish analysis of an uploaded video (cuts, pacing, dead stretches, repeats, distinctiveness,
        originality). A job: its result is the JSON report; /api/jobs/{id}/report is the HTML page."""
        up = await take(file)
        out = Path(tempfile.mkdtemp(prefix="report-", dir=workdir))
        return start_job("analyze", up, lambda job: service.analyze_upload(up, job, threshold, catalog, out),
                         keep=out)

    # ---- insights ---------------------------------------------------------------------------------------------
    @app.get("/api/clusters", tags=["insights"])
    def clusters() -> dict[str, Any]:
        """Interest clusters of the catalog's videos (size, most typical videos, members; noise apart)."""
        return service.clusters()

    @app.get("/api/recommend", tags=["insights"])
    def recommend(liked: Annotated[list[str], Query(min_length=1, max_length=50,
                                                    description="Liked catalog video ids (repeat).")],
                  k: K = 10) -> dict[str, Any]:
        """Cold start: the k catalog videos most worth showing after a few liked ones (never the liked ones)."""
        bad = [x for x in liked if not re.match(VIDEO_ID, x)]
        if bad:
            raise UploadError(f"liked: not a video id (12 hex digits): {bad[0][:40]!r}", 422)
        return service.recommend(liked, k)

    @app.get("/api/trends", tags=["insights"])
    def trends(time_field: Annotated[str, Query(max_length=100, description="Metadata field with the upload "
                                                                            "time.")] = "uploaded_at",
               window: Annotated[str, Query(max_length=32, description="Recent span: 7d, 12h, 30m, 2w, …")] = "7d",
               period: Annotated[str | None, Query(max_length=32)] = None,
               now: Annotated[str | None, Query(max_length=64)] = None) -> dict[str, Any]:
        """Clusters whose share of recent uploads is rising (ranked, with when it began) or fading."""
        return service.trends(time_field, window, period, now)

    @app.post("/api/anomaly", tags=["anomaly"], status_code=202)
    async def anomaly_upload(file: UploadField, threshold: Annotated[float | None, Form(gt=0, le=1000)] = None,
                             ) -> JSONResponse:
        """Unusual events in an uploaded video of the camera the server's normal model was fitted on (start the
        server with --anomaly MODEL_DIR): segments with calibrated scores, events, a timeline picture. A job."""
        if service.normal is None:
            raise NotFound("this server has no anomaly model: start it with --anomaly MODEL_DIR")
        up = await take(file)
        out = Path(tempfile.mkdtemp(prefix="anomaly-", dir=workdir))
        return start_job("anomaly", up, lambda job: service.anomaly_upload(up, job, threshold, out), keep=out)

    # ---- writes (token) -------------------------------------------------------------------------------------
    @app.post("/api/videos", tags=["catalog"], status_code=202, dependencies=[Depends(writer)])
    async def add_video(file: UploadField,
                        meta: Annotated[str, Form(max_length=4096,
                                                  description='JSON object of metadata, e.g. {"channel": "a"}')]
                        = "{}") -> JSONResponse:
        """Embed an uploaded video and add it to the catalog (needs the token). A job."""
        try:
            fields = json.loads(meta)
        except json.JSONDecodeError as e:
            raise UploadError(f"meta: not JSON ({e.msg})", 422) from None
        if not isinstance(fields, dict) or not all(isinstance(v, str | int | float | bool) for v in fields.values()):
            raise UploadError('meta: a JSON object of plain values, e.g. {"channel": "a", "year": 2024}', 422)
        up = await take(file)
        return start_job("add", up, lambda job: service.add_upload(up, job, fields), writes=True)

    @app.delete("/api/videos/{video_id}", tags=["catalog"], dependencies=[Depends(writer)])
    def remove_video(video_id: VideoId) -> dict[str, Any]:
        """Remove a video from the catalog (needs the token)."""
        return service.remove(video_id)

    # ---- jobs -----------------------------------------------------------------------------------------------
    def find_job(job_id: str) -> Job:
        job = jobs.get(job_id)
        if job is None:
            raise NotFound(f"no job {job_id!r} (finished jobs are kept for a while, then forgotten)")
        return job

    @app.get("/api/jobs/{job_id}", tags=["jobs"])
    def get_job(job_id: Annotated[str, PathParam(pattern=JOB_ID)]) -> dict[str, Any]:
        """A job's status (queued, running, done, failed), stage, progress with ETA, and its result or error."""
        return find_job(job_id).to_dict()

    @app.get("/api/jobs/{job_id}/{name}", tags=["jobs"],
             responses={200: {"content": {"text/html": {}, "image/png": {}}}})
    def job_file(job_id: Annotated[str, PathParam(pattern=JOB_ID)],
                 name: Annotated[str, PathParam(pattern="^(report|timeline)$")]) -> FileResponse:
        """A finished job's picture or page: `report` (analysis, HTML), `timeline` (anomaly, PNG)."""
        job = find_job(job_id)
        if name not in job.files:
            raise NotFound(f"job {job_id} has no {name}" + (" yet" if job.status in ("queued", "running") else ""))
        return FileResponse(job.files[name], media_type="text/html" if name == "report" else "image/png")

    app.state.service, app.state.jobs, app.state.settings = service, jobs, settings
    return app
