"""`--engine ray`: `tubelet index add` and `tubelet embed` on a local Ray cluster of 2 CPUs give the local path's
catalog and embeddings (same videos, windows and vectors), skip what is done and report unreadable files."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from conftest import run_cli
from serve_helpers import clip

from tubelet.catalog.embed import read_parquet
from tubelet.catalog.store import Catalog

pytest.importorskip("ray.data")
NAMES = ["cat_lying_blanket.mp4", "tennis_practice.mp4", "houseplant_static_short.mp4"]
MODEL = ["--model", "vit_tiny", "--set", "num_frames=4", "--set", "image_size=64"]


@pytest.fixture(scope="module")
def local_ray():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture
def files(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(3000))
    return [clip(n) for n in NAMES] + [bad]


def test_index_add_on_ray_equals_local(local_ray, files, tmp_path, monkeypatch, capsys):
    runs = {}
    for engine in ("torch", "ray"):
        code, out, err = run_cli(monkeypatch, capsys, "index", "add", *files, "--catalog", tmp_path / engine, *MODEL,
                                 "--engine", engine, "--json")
        assert code == 0, err
        runs[engine] = json.loads(out)
    assert {a["id"] for a in runs["ray"]["added"]} == {a["id"] for a in runs["torch"]["added"]}
    assert len(runs["ray"]["added"]) == len(NAMES)
    assert [f["path"] for f in runs["ray"]["failed"]] == [str(files[-1])]
    assert "not a readable video" in runs["ray"]["failed"][0]["error"]
    local, remote = Catalog.open(tmp_path / "torch"), Catalog.open(tmp_path / "ray")
    assert remote.model == local.model
    for vid in local.ids():
        a, b = local.segments([vid]), remote.segments([vid])
        np.testing.assert_array_equal(a.starts, b.starts)
        np.testing.assert_allclose(b.vectors, a.vectors, atol=1e-5)
        ra, rb = local.video(vid), remote.video(vid)
        assert (rb.path, rb.duration_s, rb.width, rb.height) == (ra.path, ra.duration_s, ra.width, ra.height)
    # the same files again: all there already
    code, out, err = run_cli(monkeypatch, capsys, "index", "add", *files[:-1], "--catalog", tmp_path / "ray",
                             "--engine", "ray", "--json")
    again = json.loads(out)
    assert code == 0 and again["added"] == [] and len(again["skipped"]) == len(NAMES)


def test_embed_on_ray_equals_local(local_ray, files, tmp_path, monkeypatch, capsys):
    for engine in ("torch", "ray"):
        code, _, err = run_cli(monkeypatch, capsys, "embed", *files[:2], "--out", tmp_path / f"{engine}.parquet",
                               *MODEL, "--engine", engine, "--json")
        assert code == 0, err
    local = {v.content_hash: v for v in read_parquet(tmp_path / "torch.parquet").videos}
    remote = {v.content_hash: v for v in read_parquet(tmp_path / "ray.parquet").videos}
    assert local.keys() == remote.keys() and len(local) == 2
    for h, v in local.items():
        np.testing.assert_allclose(remote[h].segments, v.segments, atol=1e-5)
        np.testing.assert_allclose(remote[h].vector, v.vector, atol=1e-5)


def test_engine_errors(tmp_path, monkeypatch, capsys):
    code, _, err = run_cli(monkeypatch, capsys, "index", "add", clip(NAMES[0]), "--catalog", tmp_path / "c", *MODEL,
                           "--engine", "spark")
    assert code == 1 and "unknown engine 'spark'" in err and not (tmp_path / "c").exists()
    code, _, err = run_cli(monkeypatch, capsys, "embed", clip(NAMES[0]), "--out", tmp_path / "e.parquet", *MODEL,
                           "--address", "auto")
    assert code == 1 and "--address is for --engine ray" in err
