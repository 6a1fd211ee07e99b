"""The catalog store on synthetic vectors: persistence, atomic writes, exact and HNSW search, compaction."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from tubelet.catalog import store
from tubelet.catalog.store import Catalog, ModelInfo, VideoEntry, VideoRecord
from tubelet.errors import TubeletError

DIM = 16
MODEL = ModelInfo(id="m" * 16, source="vit_tiny", dim=DIM)


def entry(i: int, n_seg: int = 5, seed: int | None = None) -> VideoEntry:
    rng = np.random.default_rng(i if seed is None else seed)
    seg = rng.standard_normal((n_seg, DIM)).astype(np.float32)
    seg /= np.linalg.norm(seg, axis=1, keepdims=True)
    vec = seg.mean(0) / np.linalg.norm(seg.mean(0))
    rec = VideoRecord(id=f"v{i:04d}", path=f"/videos/{i}.mp4", content_hash=f"{i:064x}", duration_s=float(n_seg),
                      fps=30.0, width=64, height=48, size_bytes=1000 + i, num_segments=n_seg,
                      added_at="2026-01-01T00:00:00+00:00", meta={"n": i})
    return VideoEntry(rec, vec, np.arange(n_seg, dtype=float), np.arange(n_seg, dtype=float) + 2, seg)


def test_round_trip(tmp_path):
    cat = Catalog.create(tmp_path / "c", MODEL)
    assert cat.add([entry(0), entry(1, 3)], MODEL.id) == ["v0000", "v0001"]
    assert cat.add([entry(1, 3), entry(2)], MODEL.id) == ["v0002"]  # already there: left alone
    again = Catalog.open(tmp_path / "c")
    assert again.model == MODEL
    vids = again.videos()
    assert [v.id for v in vids] == ["v0000", "v0001", "v0002"]
    assert vids[1].num_segments == 3 and vids[1].meta == {"n": 1} and vids[1].path == "/videos/1.mp4"
    seg = again.segments(["v0001"])
    np.testing.assert_array_equal(seg.vectors, entry(1, 3).segments)
    np.testing.assert_array_equal(seg.ends, [2.0, 3.0, 4.0])
    assert again.stats()["segments"] == 13 and again.stats()["search"] == "exact"
    assert again.remove(["v0001", "nope"]) == ["v0001"]
    assert [v.id for v in Catalog.open(tmp_path / "c").videos()] == ["v0000", "v0002"]


def test_refuses_other_model_and_bad_dirs(tmp_path):
    cat = Catalog.create(tmp_path / "c", MODEL)
    with pytest.raises(TubeletError, match="model"):
        cat.add([entry(0)], "x" * 16)
    with pytest.raises(TubeletError, match="not a tubelet catalog"):
        Catalog.open(tmp_path)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("x")
    with pytest.raises(TubeletError, match="not an empty directory"):
        Catalog.create(tmp_path / "full", MODEL)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "catalog.json").write_text("{")
    with pytest.raises(TubeletError, match="unreadable"):
        Catalog.open(tmp_path / "bad")


def test_exact_nearest_matches_brute_force(tmp_path):
    cat = Catalog.create(tmp_path / "c", MODEL)
    for b in range(3):
        cat.add([entry(10 * b + i, 7) for i in range(4)], MODEL.id)
    seg = cat.segments()
    q = entry(999, 4).segments
    keys, sims = cat.nearest(q, 5)
    full = q @ seg.vectors.T
    want = np.argsort(-full, axis=1)[:, :5]
    np.testing.assert_array_equal(keys, seg.keys[want])
    np.testing.assert_allclose(sims, np.take_along_axis(full, want, 1), rtol=1e-5)
    assert list(cat.videos_of_keys(keys[:, 0])) == [seg.ids[v] for v in seg.video[want[:, 0]]]


def test_hnsw_above_the_exact_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "EXACT_MAX_SEGMENTS", 300)
    cat = Catalog.create(tmp_path / "c", MODEL)
    cat.add([entry(i, 20) for i in range(12)], MODEL.id)  # 240 segments: exact
    assert cat.stats()["search"] == "exact"
    cat.add([entry(i, 20) for i in range(12, 20)], MODEL.id)  # 400: index built
    st = cat.stats()
    assert st["search"] == "hnsw" and st["indexed_segments"] == 400
    cat.add([entry(20, 20)], MODEL.id)  # 420: 5% not indexed yet, searched exactly
    assert Catalog.open(tmp_path / "c").stats()["indexed_segments"] == 400
    q = entry(20, 20).segments  # segments of the newest, unindexed video and of an indexed one
    keys, sims = Catalog.open(tmp_path / "c").nearest(np.concatenate([q[:3], entry(5, 20).segments[:3]]), 1)
    assert list(cat.videos_of_keys(keys[:, 0])) == ["v0020"] * 3 + ["v0005"] * 3
    np.testing.assert_allclose(sims[:, 0], 1.0, atol=1e-5)
    assert cat.remove(["v0005"]) == ["v0005"]
    cat = Catalog.open(tmp_path / "c")
    assert cat.stats()["indexed_segments"] == 380
    keys, _ = cat.nearest(entry(5, 20).segments[:3], 3)
    assert "v0005" not in set(cat.videos_of_keys(keys.ravel()))
    assert len(list((tmp_path / "c").glob("ann-*.usearch"))) == 1  # the replaced index file is gone


def test_fragments_are_merged_keeping_key_order(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "MAX_FRAGMENTS", 3)
    cat = Catalog.create(tmp_path / "c", MODEL)
    for i in range(8):
        cat.add([entry(i, 2 + i % 3)], MODEL.id)
    assert cat.stats()["fragments"] == 3
    assert len(list((tmp_path / "c").glob("frag-*.arrow"))) == 3
    seg = Catalog.open(tmp_path / "c").segments()
    assert np.all(np.diff(seg.keys.astype(np.int64)) > 0)
    assert seg.ids == [f"v{i:04d}" for i in range(8)]


def test_leftovers_of_a_killed_writer_are_ignored_then_removed(tmp_path):
    cat = Catalog.create(tmp_path / "c", MODEL)
    cat.add([entry(0)], MODEL.id)
    (tmp_path / "c" / "frag-orphan.arrow").write_bytes(b"half a file")
    (tmp_path / "c" / ".catalog.json.123.tmp").write_text("{")
    assert [v.id for v in Catalog.open(tmp_path / "c").videos()] == ["v0000"]
    cat.add([entry(1)], MODEL.id)
    names = sorted(p.name for p in (tmp_path / "c").iterdir())
    assert "frag-orphan.arrow" not in names and not any(n.endswith(".tmp") for n in names)


WRITER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from test_catalog_store import MODEL, entry
    from tubelet.catalog.store import Catalog
    cat = Catalog.open({root!r})
    for i in range(10_000):
        cat.add([entry(i, 1 + i % 7), entry(100_000 + i, 3)], MODEL.id)
        print(i, flush=True)
""")


def test_sigkill_during_writes_leaves_whole_videos(tmp_path):
    root = tmp_path / "c"
    Catalog.create(root, MODEL)
    code = WRITER.format(tests=os.path.dirname(__file__), root=str(root))
    for delay in (0.5, 1.2):
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
        proc.stdout.readline()  # at least one commit landed
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        cat = Catalog.open(root)
        vids = cat.videos()
        assert vids, "nothing committed"
        seg = cat.segments()
        for v in vids:  # every video that is listed has all of its segments, with the vectors it was added with
            n = int(v.id[1:])
            want = entry(n, 1 + n % 7 if n < 100_000 else 3).segments
            np.testing.assert_array_equal(seg.vectors[np.asarray(seg.ids)[seg.video] == v.id], want)
        cat.add([entry(999_999, 3)], MODEL.id)  # and it is writable again
