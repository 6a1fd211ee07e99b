"""`tubelet serve` for real: uvicorn in a subprocess on 127.0.0.1, called over HTTP with httpx — reads, jobs on
uploads, writes with a token, limits, and a bounded fuzz of every endpoint (no 5xx, no traceback)."""

from __future__ import annotations

import io
import json
import random
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli, splice
from PIL import Image
from serve_helpers import INDEXED, TOKEN, clip, make_catalog, running_server, upload, wait_job

from tubelet.catalog.store import Catalog

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    cat = make_catalog(root / "catalog")
    with running_server(cat, root / "tmp") as (client, base, tmp, log):
        yield client, cat, tmp, log


@pytest.fixture(scope="module")
def ids(server):
    client, cat, _, _ = server
    return {v.meta.get("filename") or Path(v.path).name: v.id for v in Catalog.open(cat).videos()}


def leftovers(tmp: Path) -> list[Path]:
    """Uploaded files still on the server's disk (report folders of kept analysis jobs aside)."""
    return [p for d in tmp.glob("tubelet-serve-*") for p in d.iterdir() if p.is_file()]


def test_reads(server, ids):
    client, cat, _, _ = server
    stats = client.get("/api/catalog").json()
    assert stats["videos"] == len(INDEXED) and stats["writes"] is True
    assert stats["model"]["window_s"] == 2.0 and "/" not in stats["model"]["source"]
    listing = client.get("/api/videos", params={"sort": "name", "limit": 2}).json()
    assert listing["total"] == len(INDEXED) and len(listing["videos"]) == 2
    assert [v["name"] for v in listing["videos"]] == sorted(INDEXED)[:2]
    assert all("path" not in v for v in listing["videos"])  # no server paths in answers
    vid = ids["tennis_practice.mp4"]
    seg = client.get(f"/api/videos/{vid}/segments", params={"vectors": True}).json()
    want = Catalog.open(cat).segments([vid])
    assert [s["start_s"] for s in seg["segments"]] == pytest.approx(want.starts.tolist())
    np.testing.assert_allclose(np.array(seg["vectors"]), want.vectors, atol=1e-6)
    r = client.get(f"/api/videos/{vid}/thumbnail", params={"t": 1.0, "height": 72})
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert min(Image.open(io.BytesIO(r.content)).size) == 72
    assert client.get("/api/videos/0123456789ab").status_code == 404


def test_similar_by_id_and_segment(server, ids):
    client, cat, _, _ = server
    vid = ids["cat_lying_blanket.mp4"]
    whole = client.get(f"/api/videos/{vid}/similar", params={"k": 3}).json()
    assert whole["segments"] == Catalog.open(cat).video(vid).num_segments
    assert len(whole["results"]) == 3 and vid not in {h["id"] for h in whole["results"]}  # itself left out
    assert [h["score"] for h in whole["results"]] == sorted((h["score"] for h in whole["results"]), reverse=True)
    part = client.get(f"/api/videos/{vid}/similar", params={"k": 2, "start": 1, "end": 3}).json()
    assert part["start_s"] >= 0 and part["end_s"] <= 4 and part["segments"] < whole["segments"]
    bad = client.get(f"/api/videos/{vid}/similar", params={"start": 3, "end": 1})
    assert bad.status_code == 422 and "after start" in bad.json()["error"]


def test_upload_search_originality_analysis(server, ids, tmp_path):
    client, _, tmp, _ = server
    src = clip("tennis_practice.mp4")
    r = upload(client, "/api/search", src, {"k": 2})
    assert r.status_code == 202 and r.headers["location"] == f"/api/jobs/{r.json()['id']}"
    job = wait_job(client, r.json())
    assert job["status"] == "done", job
    top = job["result"]["results"][0]
    assert top["id"] == ids["tennis_practice.mp4"] and top["score"] == pytest.approx(1.0, abs=1e-4)
    assert job["result"]["query"] == "tennis_practice.mp4"
    # a re-encoded excerpt 1–4 s: found in its source, at that place (within one window)
    excerpt = tmp_path / "excerpt.mp4"
    splice([(src, 1.0, 4.0)], excerpt)
    job = wait_job(client, upload(client, "/api/originality", excerpt).json())
    assert job["status"] == "done", job
    res = job["result"]
    assert res["flagged"] and res["share"] >= 0.7 and res["threshold_source"] == "catalog"
    assert {s["id"] for s in res["spans"]} == {ids["tennis_practice.mp4"]}
    assert abs(res["spans"][0]["start_s"] - 1.0) <= 2.0 and res["spans"][0]["name"] == "tennis_practice.mp4"
    # pre-publish analysis: JSON result and the HTML report
    r = upload(client, "/api/analyze", clip("claymation_ad_cuts.webm"))
    job = wait_job(client, r.json())
    assert job["status"] == "done", job
    assert len(job["result"]["cuts_s"]) >= 3 and job["result"]["originality"]["originality"] > 0.5
    assert job["result"]["path"] == "claymation_ad_cuts.webm"
    page = client.get(job["links"]["report"])
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "claymation_ad_cuts.webm" in page.text and "data:image/png;base64" in page.text
    assert leftovers(tmp) == []  # every upload removed after its job


def test_jobs_report_progress_and_the_server_stays_responsive(server):
    client, _, _, _ = server
    job = upload(client, "/api/analyze", clip("claymation_ad_cuts.webm"), {"catalog": "false"}).json()
    seen = []
    while job["status"] in ("queued", "running"):
        seen.append((job["stage"], job["progress"]))
        assert client.get("/api/health", timeout=5).status_code == 200  # reads answer while the job runs
        job = client.get(f"/api/jobs/{job['id']}").json()
    assert job["status"] == "done" and job["result"]["originality"] is None
    decoding = [p for stage, p in seen if stage == "decoding"]
    assert decoding and decoding == sorted(decoding) and max(decoding) <= 1.0


def test_writes_need_the_token_and_readers_see_whole_commits(server, ids, tmp_path):
    client, cat, tmp, _ = server
    new = clip("claymation_ad_cuts.webm")
    assert upload(client, "/api/videos", new).status_code == 401
    assert upload(client, "/api/videos", new, headers={"Authorization": "Bearer wrong-token"}).status_code == 401
    assert client.delete(f"/api/videos/{ids['cat_lying_blanket.mp4']}").status_code == 401

    seen, stop = [], threading.Event()

    def read() -> None:  # listings and segment reads during the add: always a whole catalog
        while not stop.is_set():
            listing = client.get("/api/videos").json()
            seen.append(listing["total"])
            for v in listing["videos"]:
                assert len(client.get(f"/api/videos/{v['id']}/segments").json()["segments"]) == v["num_segments"]

    reader = threading.Thread(target=read)
    reader.start()
    try:
        r = upload(client, "/api/videos", new, {"meta": json.dumps({"channel": "clay"})}, headers=AUTH)
        assert r.status_code == 202, r.text
        job = wait_job(client, r.json())
    finally:
        stop.set()
        reader.join()
    assert job["status"] == "done", job
    added = job["result"]["added"][0]
    assert set(seen) <= {len(INDEXED), len(INDEXED) + 1}
    rec = client.get(f"/api/videos/{added['id']}").json()
    assert rec["name"] == "claymation_ad_cuts.webm" and rec["meta"]["channel"] == "clay"
    assert client.get(f"/api/videos/{added['id']}/thumbnail").status_code == 200  # the server kept the file
    again = wait_job(client, upload(client, "/api/videos", new, headers=AUTH).json())
    assert again["result"]["added"] == [] and again["result"]["skipped"][0]["id"] == added["id"]
    r = client.delete(f"/api/videos/{added['id']}", headers=AUTH)
    assert r.status_code == 200 and r.json()["removed"] == [added["id"]]
    assert client.delete(f"/api/videos/{added['id']}", headers=AUTH).status_code == 404
    assert len(Catalog.open(cat)) == len(INDEXED) and not list((cat / "media").iterdir())
    assert leftovers(tmp) == []


def test_without_token_writes_are_off_and_uploads_are_capped(tmp_path):
    cat = make_catalog(tmp_path / "catalog", INDEXED[:2])
    with running_server(cat, tmp_path / "tmp", "--max-upload-mb", "0.3", token=None) as (client, _, tmp, _):
        r = upload(client, "/api/videos", clip("houseplant_static_short.mp4"), headers=AUTH)
        assert r.status_code == 403 and "--token" in r.json()["error"]
        big = clip("claymation_ad_cuts.webm")  # 2 MB
        r = upload(client, "/api/search", big)
        assert r.status_code == 413 and "limit" in r.json()["error"]
        assert leftovers(tmp) == []


def test_serve_refuses_a_public_address_without_a_token(monkeypatch, capsys, tmp_path):
    cat = make_catalog(tmp_path / "catalog", INDEXED[:1])
    code, _, err = run_cli(monkeypatch, capsys, "serve", "--catalog", cat, "--host", "0.0.0.0")
    assert code == 1 and "without a token" in err and "Traceback" not in err
    code, _, err = run_cli(monkeypatch, capsys, "serve", "--catalog", tmp_path / "nothing")
    assert code == 1 and "--model" in err


# ---- fuzz -------------------------------------------------------------------------------------------------------
NASTY = ["-1", "0", "1e308", "-1e308", "nan", "inf", "-inf", "", " ", "abc", "99999999999999999999999", "1.5",
         "../../etc/passwd", "/etc/passwd", "%2e%2e%2f%2e%2e%2f", "\u202e\u0000", "x" * 5000, "true", "[]", "{}"]
BAD_AUTH = ["Bearer", "x", "Basic dG9rZW4=", "Bearer " + "t" * 300]
PATH_IDS = ["..%2F..%2Fetc%2Fpasswd", "0123456789ab", "ZZZZZZZZZZZZ", "-1", "%00", "a" * 300, "..", "%2e%2e"]


def bad_files(tmp: Path) -> list[tuple[str, bytes, str]]:
    real = clip("houseplant_static_short.mp4").read_bytes()
    return [("../../../etc/passwd", b"root:x:0:0", "text/plain"), ("empty.mp4", b"", "video/mp4"),
            ("noise.mp4", random.Random(0).randbytes(4096), "video/mp4"),
            ("head.mp4", real[:2000], "video/mp4"), ("/abs/path/clip.mp4", real, "video/mp4"),
            ("a\x00b.mp4", real, "application/octet-stream"), ("x" * 400 + ".mp4", real, "video/mp4")]


def test_fuzz_every_endpoint(server, tmp_path):
    client, _, tmp, log = server
    spec = client.get("/openapi.json").json()
    rng = random.Random(15)
    files = bad_files(tmp_path)
    jobs, answers = [], []

    def check(r) -> None:
        answers.append(r.status_code)
        assert r.status_code < 500, (r.request.method, r.request.url, r.status_code, r.text[:300])
        assert "Traceback" not in r.text and str(tmp) not in r.text, r.text[:300]
        if r.status_code >= 400:
            assert isinstance(r.json().get("error"), str) and r.json()["error"]
        if r.status_code == 202:
            jobs.append(r.json())

    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            params = [p for p in op.get("parameters", [])]
            body = op.get("requestBody", {}).get("content", {})
            form = next(iter(body.values()), {}).get("schema", {}) if body else {}
            fields = []
            if "$ref" in form:
                fields = list(spec["components"]["schemas"][form["$ref"].split("/")[-1]]["properties"])
            for _ in range(12):
                url = path
                for p in params:
                    if p["in"] == "path":
                        url = url.replace("{" + p["name"] + "}", rng.choice(PATH_IDS))
                query = {p["name"]: rng.choice(NASTY) for p in params if p["in"] == "query" and rng.random() < 0.7}
                headers = AUTH if rng.random() < 0.5 else {"Authorization": rng.choice(BAD_AUTH)}
                kw = {"params": query, "headers": headers}
                if fields:
                    data = {f: rng.choice(NASTY) for f in fields if f != "file" and rng.random() < 0.6}
                    choice = rng.random()
                    if choice < 0.7:
                        name, content, ctype = rng.choice(files)
                        kw["files"] = {"file": (name, content, ctype)}
                        kw["data"] = data
                    elif choice < 0.85:
                        kw["json"] = {"file": "/etc/passwd", **data}  # wrong content type, a path for a file
                    else:
                        kw["data"] = data  # missing file
                check(client.request(method.upper(), url, **kw))
    # path tricks outside the API and odd methods
    for url in ["/static/../../etc/passwd", "/static/%2e%2e/%2e%2e/etc/passwd", "/api/jobs/../../etc/passwd",
                "/api/videos/%2e%2e%2f%2e%2e", "/api/nope", "/static/nothing.js", "//etc/passwd"]:
        check(client.get(url))
    check(client.request("PATCH", "/api/videos"))
    check(client.post("/api/search", content=b"x" * 1000, headers={"content-type": "multipart/form-data; boundary=z"}))
    for job in jobs:
        done = wait_job(client, job)
        assert done["status"] in ("done", "failed")
        assert "Traceback" not in json.dumps(done) and str(tmp) not in json.dumps(done)
    assert answers and all(a < 500 for a in answers) and sum(a >= 400 for a in answers) > len(answers) / 2
    assert "Traceback" not in log.read_text()


def test_anomaly_endpoint(server, tmp_path):
    """With --anomaly MODEL_DIR: an upload of the same camera with the lights dropping gets an event there."""
    from tubelet.anomaly import fit_normal
    from tubelet.anomaly.synthetic import inject, read_frames, write_frames

    frames = read_frames(clip("parking_lot_overhead_static.mp4"), 10.0, 320)
    n = int(0.6 * len(frames))
    write_frames(tmp_path / "normal.mp4", frames[:n], 10.0)
    later = frames[n:]
    dark = inject(later, "dark", len(later), len(later) // 3, len(later) // 3, np.random.default_rng(0))
    write_frames(tmp_path / "dark.mp4", dark, 10.0)
    fit_normal([tmp_path / "normal.mp4"], "none").save(tmp_path / "camera.normal")
    cat = make_catalog(tmp_path / "catalog", INDEXED[:1])
    with running_server(cat, tmp_path / "tmp", "--anomaly", str(tmp_path / "camera.normal")) as (client, _, tmp, _):
        assert client.get("/api/catalog").json()["anomaly"] is True
        # threshold 1.2: this camera's normal footage has auto-exposure dips when a white car passes, so a drop to
        # ~40 % scores ~1.5 (lighting alone 1.6 against its own normal p99); the threshold travels with the upload
        job = wait_job(client, upload(client, "/api/anomaly", tmp_path / "dark.mp4", {"threshold": "1.2"}).json())
        assert job["status"] == "done", job
        res = job["result"]
        assert res["path"] == "dark.mp4" and res["events"]
        start, end = len(later) // 3 / 10.0, 2 * len(later) // 3 / 10.0
        assert any(e["start_s"] < end and e["end_s"] > start for e in res["events"])
        picture = client.get(job["links"]["timeline"])
        assert picture.status_code == 200 and picture.content[:4] == b"\x89PNG"
        assert leftovers(tmp) == []
    r = upload(server[0], "/api/anomaly", tmp_path / "dark.mp4")  # a server started without --anomaly
    assert r.status_code == 404 and "--anomaly" in r.json()["error"]


def synthetic_catalog(root: Path) -> dict[str, list[str]]:
    """Three groups of 8 videos (more than the default smallest cluster) around three directions (vit_tiny's width),
    group c uploaded last: ids by group."""
    from datetime import UTC, datetime, timedelta

    from tubelet.catalog.store import ModelInfo, VideoEntry, VideoRecord

    rng = np.random.default_rng(0)
    cat = Catalog.create(root, ModelInfo(id="synthetic0000000", source="vit_tiny", dim=192))
    groups, entries, start = {}, [], datetime(2026, 1, 1, tzinfo=UTC)
    for g, name in enumerate("abc"):
        centre = rng.standard_normal(192)
        for i in range(8):
            segs = centre + 0.3 * rng.standard_normal((4, 192))
            segs = (segs / np.linalg.norm(segs, axis=1, keepdims=True)).astype(np.float32)
            vid = f"{g:02d}{i:010x}"
            day = start + timedelta(days=(20 + i) if name == "c" else 3 * i)
            rec = VideoRecord(vid, f"{name}{i}.mp4", vid * 5, 5.0, 25.0, 64, 64, 0, 4, day.isoformat(),
                              {"uploaded_at": day.isoformat()})
            mean = segs.mean(0)
            entries.append(VideoEntry(rec, mean / np.linalg.norm(mean), np.arange(4.0), np.arange(4.0) + 2, segs))
            groups.setdefault(name, []).append(vid)
    cat.add(entries, "synthetic0000000")
    return groups


def test_insights_endpoints(tmp_path, monkeypatch, capsys):
    groups = synthetic_catalog(tmp_path / "catalog")
    group_of = {v: g for g, ids in groups.items() for v in ids}
    with running_server(tmp_path / "catalog", tmp_path / "tmp") as (client, _, _, _):
        found = client.get("/api/clusters").json()
        assert len(found["clusters"]) == 3 and not found["noise"]
        for c in found["clusters"]:  # each cluster is one group
            assert len({group_of[v] for v in c["members"]}) == 1 and c["exemplars"][0]["name"].endswith(".mp4")
        code, out, _ = run_cli(monkeypatch, capsys, "clusters", "--catalog", tmp_path / "catalog", "--json")
        assert code == 0 and json.loads(out)["clusters"] == [
            {**c, "exemplars": [e["id"] for e in c["exemplars"]]} for c in found["clusters"]]
        liked = groups["a"][:2]
        rec = client.get("/api/recommend", params={"liked": liked, "k": 4}).json()["results"]
        assert [group_of[r["id"]] for r in rec] == ["a"] * 4 and not set(liked) & {r["id"] for r in rec}
        trends = client.get("/api/trends", params={"window": "7d"}).json()
        rising = [t for t in trends["trends"] if t["direction"] == "rising"]
        c_cluster = next(c["id"] for c in found["clusters"] if group_of[c["members"][0]] == "c")
        assert rising and rising[0]["cluster"] == c_cluster
        bad = client.get("/api/recommend", params={"liked": "../etc/passwd"})
        assert bad.status_code == 422 and "video id" in bad.json()["error"]
        assert client.get("/api/trends", params={"time_field": "nope"}).status_code == 400
