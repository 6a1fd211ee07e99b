"""The catalog store on synthetic vectors: persistence, atomic writes, exact and HNSW search, compaction."""

import os
import signal
import subprocess
import sys
import textwrap
import threading
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


def coherent(i: int, n_seg: int) -> VideoEntry:
    """A video whose consecutive segments resemble each other (a random walk), as real windows that overlap do."""
    e = entry(i, n_seg)
    walk = np.cumsum(np.random.default_rng(i).standard_normal((n_seg, DIM)), 0) + 4 * e.segments[0]
    e.segments = (walk / np.linalg.norm(walk, axis=1, keepdims=True)).astype(np.float32)
    return e


def test_block_search_returns_k_nearest_and_finds_each_segment_itself(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "SCAN_MAX_SEGMENTS", 100)
    cat = Catalog.create(tmp_path / "c", MODEL)
    cat.add([coherent(i, 3 + i % 30) for i in range(40)], MODEL.id)  # 3…32 segments: 1 or 2 blocks a video
    assert cat.stats()["search"] == "exact"  # a one-shot reader scans
    reader = Catalog.open(tmp_path / "c")
    reader.warm()
    assert reader.stats()["search"] == "blocks" and reader._blocks(0).recall >= store.BLOCK_RECALL
    seg = cat.segments()
    for i in np.random.default_rng(0).permutation(len(seg.keys))[:12]:
        q = seg.vectors[i:i + 1]
        assert store._chosen_rows(reader._blocks(0), q, 5) is not None  # the block path, not the exact fallback
        keys, sims = reader.nearest(q, 5)
        assert keys.shape == sims.shape == (1, 5) and (np.diff(sims) <= 0).all()
        assert keys[0, 0] == seg.keys[i] and sims[0, 0] == pytest.approx(1.0, abs=1e-5)


def test_blocks_are_refused_where_consecutive_segments_do_not_resemble_each_other(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "SCAN_MAX_SEGMENTS", 100)
    cat = Catalog.create(tmp_path / "c", MODEL)
    cat.add([entry(i, 3 + i % 30) for i in range(40)], MODEL.id)  # independent random segments
    cat = Catalog.open(tmp_path / "c")
    cat.warm()
    assert cat._blocks(0).recall < store.BLOCK_RECALL and cat.stats()["search"] == "exact"
    seg = cat.segments()
    keys, _ = cat.nearest(seg.vectors[:20], 1)
    np.testing.assert_array_equal(keys[:, 0], seg.keys[:20])


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


def test_a_reader_keeps_its_view_while_writers_replace_fragments(tmp_path):
    root = tmp_path / "c"
    Catalog.create(root, MODEL).add([entry(0), entry(1)], MODEL.id)
    reader = Catalog.open(root)
    writer = Catalog.open(root)
    writer.remove(["v0000"])  # rewrites the fragment the reader's manifest names, and deletes the old one
    writer.add([entry(2)], MODEL.id)
    assert not (root / reader._manifest["fragments"][0]["file"]).exists()
    assert [v.id for v in reader.videos()] == ["v0000", "v0001"]  # the view it opened, whole
    np.testing.assert_array_equal(reader.segments(["v0000"]).vectors, entry(0).segments)
    assert [v.id for v in Catalog.open(root).videos()] == ["v0001", "v0002"]


def test_a_reader_that_finds_a_file_gone_takes_the_newer_manifest(tmp_path, monkeypatch):
    root = tmp_path / "c"
    cat = Catalog.create(root, MODEL)
    cat.add([entry(0), entry(1)], MODEL.id)
    stale = store._read_manifest(root)
    cat.remove(["v0001"])  # the stale manifest's fragment is gone now
    calls = []
    real = store._read_manifest

    def first_stale(r):
        calls.append(r)
        return stale if len(calls) == 1 else real(r)

    monkeypatch.setattr(store, "_read_manifest", first_stale)
    assert [v.id for v in Catalog.open(root).videos()] == ["v0000"]
    assert len(calls) == 2
    monkeypatch.setattr(store, "_read_manifest", lambda r: stale)  # same generation, file gone: a clear error
    with pytest.raises(TubeletError, match="is missing"):
        Catalog.open(root)


def test_a_writer_waits_for_the_lock_then_gives_up_clearly(tmp_path):
    import fcntl
    import threading

    root = tmp_path / "c"
    cat = Catalog.create(root, MODEL)
    other = open(root / ".lock", "a+")
    fcntl.flock(other, fcntl.LOCK_EX)
    threading.Timer(0.6, lambda: fcntl.flock(other, fcntl.LOCK_UN)).start()
    t0 = time.monotonic()
    assert cat.add([entry(0)], MODEL.id) == ["v0000"]  # waited for the other writer instead of failing
    assert time.monotonic() - t0 >= 0.5
    fcntl.flock(other, fcntl.LOCK_EX)
    cat.lock_timeout_s = 0.3
    with pytest.raises(TubeletError, match="kept writing to this catalog for 0.3 s"):
        cat.add([entry(1)], MODEL.id)
    other.close()
    assert [v.id for v in Catalog.open(root).videos()] == ["v0000"]


def test_a_lock_that_is_a_directory_is_a_clear_error(tmp_path):
    root = tmp_path / "c"
    Catalog.create(root, MODEL)
    (root / ".lock").unlink()
    (root / ".lock").mkdir()
    with pytest.raises(TubeletError, match=r"\.lock: is a directory"):
        Catalog.open(root).add([entry(0)], MODEL.id)


def test_a_half_created_catalog_is_finished(tmp_path):
    root = tmp_path / "c"
    root.mkdir()
    (root / ".catalog.json.5f3a.tmp").write_text('{"format": "tube')  # what a creation killed mid-write leaves
    (root / ".lock").touch()
    assert not Catalog.exists(root)
    Catalog.create(root, MODEL).add([entry(0)], MODEL.id)
    assert sorted(p.name for p in root.iterdir() if p.name.startswith(".")) == [".lock"]
    assert [v.id for v in Catalog.open(root).videos()] == ["v0000"]
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "frag-x.arrow").write_text("?")  # someone's data: never replaced
    with pytest.raises(TubeletError, match="not an empty directory"):
        Catalog.create(tmp_path / "other", MODEL)


@pytest.mark.parametrize("field", ["window_s", "stride_s"])
@pytest.mark.parametrize("value", [float("inf"), float("nan"), 0.0, -1.0])
def test_non_finite_settings_are_refused_before_they_are_stored(tmp_path, field, value):
    import dataclasses

    with pytest.raises(TubeletError, match=f"{field} must be a finite positive"):
        Catalog.create(tmp_path / "c", dataclasses.replace(MODEL, **{field: value}))
    assert not Catalog.exists(tmp_path / "c")


def test_a_poisoned_or_broken_manifest_is_one_clear_line(tmp_path):
    import json

    root = tmp_path / "c"
    Catalog.create(root, MODEL).add([entry(0)], MODEL.id)
    good = json.loads((root / "catalog.json").read_text())

    def broken(change, message):
        m = json.loads(json.dumps(good))
        change(m)
        (root / "catalog.json").write_text(json.dumps(m))
        with pytest.raises(TubeletError, match=message) as e:
            Catalog.open(root).videos()
        assert "\n" not in str(e.value)

    for key in ("model", "generation", "next_key", "fragments", "ann"):
        broken(lambda m, k=key: m.pop(k), f"malformed catalog manifest: {key} is missing")
    for key in ("model", "generation", "next_key", "fragments"):
        broken(lambda m, k=key: m.update({k: None}), f"malformed catalog manifest: {key} is null")
    broken(lambda m: m["model"].update(stride_s=float("inf")), "non-finite number Infinity")
    broken(lambda m: m["model"].update(window_s=None), "model.window_s is null")
    broken(lambda m: m["model"].pop("dim"), "model.dim is missing")
    broken(lambda m: m["fragments"][0].pop("file"), r"fragments\[0\].file is missing")
    broken(lambda m: m["fragments"][0].update(file="../../etc/passwd"), r"fragments\[0\].file must be a frag-")
    broken(lambda m: m["fragments"][0].update(segments="many"), r"fragments\[0\].segments must be a non-negative")
    broken(lambda m: m.update(fragments=[7]), r"fragments\[0\] must be an object")


def test_non_finite_metadata_or_vectors_are_refused(tmp_path):
    cat = Catalog.create(tmp_path / "c", MODEL)
    e = entry(0)
    e.record.meta["score"] = float("nan")
    with pytest.raises(TubeletError, match="non-finite"):
        cat.add([e], MODEL.id)
    e = entry(1)
    e.segments[0, 0] = np.inf
    with pytest.raises(TubeletError, match="non-finite"):
        cat.add([e], MODEL.id)
    assert len(Catalog.open(tmp_path / "c")) == 0


CHURN = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from test_catalog_store import MODEL, entry
    from tubelet.catalog.store import Catalog
    cat = Catalog.open({root!r})
    for i in range(10_000):  # add two videos, remove one: fragments are rewritten, merged and deleted all along
        cat.add([entry(10 + 2 * i, 3), entry(11 + 2 * i, 4)], MODEL.id)
        cat.remove([f"v{{10 + 2 * i:04d}}"])
        print(i, flush=True)
""")


def searches_while_a_writer_churns(root, seconds: float, least: int) -> tuple[int, list[str], int]:
    """(searches done, their failures, writer cycles) while another process adds and removes videos: for
    `seconds`, and on until more than `least` searches and cycles are done (a loaded machine is slower), at most
    10× as long."""
    from tubelet.catalog.search import Query, search

    cat = Catalog.create(root, MODEL)
    cat.add([entry(i) for i in range(4)], MODEL.id)
    q = entry(1)
    query = Query("q", q.starts, q.ends, q.segments)
    proc = subprocess.Popen([sys.executable, "-c", CHURN.format(tests=os.path.dirname(__file__), root=str(root))],
                            stdout=subprocess.PIPE, text=True)
    proc.stdout.readline()
    cycles = [1]  # an add and a remove each

    def count() -> None:
        for _ in proc.stdout:
            cycles[0] += 1

    threading.Thread(target=count, daemon=True).start()
    done, failures = 0, []
    start = time.monotonic()
    try:
        while (t := time.monotonic() - start) < 10 * seconds and (t < seconds or min(done, cycles[0]) <= least):
            try:
                hits = search(Catalog.open(root), query, k=3)
                assert hits[0].id == "v0001", hits
            except (TubeletError, AssertionError) as e:
                failures.append(str(e))
            done += 1
    finally:
        proc.kill()
        proc.wait()
    return done, failures, cycles[0]


def test_searches_never_fail_while_another_process_adds_and_removes(tmp_path):
    done, failures, cycles = searches_while_a_writer_churns(tmp_path / "c", 4.0, 20)
    assert done > 20 and cycles > 20, (done, cycles)
    assert not failures, f"{len(failures)} of {done} searches failed, e.g. {failures[0]}"


@pytest.mark.slow
def test_searches_never_fail_under_a_long_churn(tmp_path):
    done, failures, cycles = searches_while_a_writer_churns(tmp_path / "c", 60.0, 100)
    assert done > 100 and cycles > 100, (done, cycles)
    assert not failures, f"{len(failures)} of {done} searches failed, e.g. {failures[0]}"


def test_colour_histograms_round_trip_and_are_absent_where_none_were_stored(tmp_path):
    from tubelet.catalog.fingerprint import COLOURS

    rng = np.random.default_rng(0)
    with_colours = entry(0)
    with_colours.fp_times = np.arange(3) * 0.5
    with_colours.fp_colours = rng.integers(0, 256, (3, COLOURS)).astype(np.uint8)
    cat = Catalog.create(tmp_path / "c", MODEL)
    cat.add([with_colours, entry(1)], MODEL.id)
    got = Catalog.open(tmp_path / "c").colours(["v0000", "v0001", "nope"])
    assert list(got) == ["v0000"]
    np.testing.assert_array_equal(got["v0000"], with_colours.fp_colours)
