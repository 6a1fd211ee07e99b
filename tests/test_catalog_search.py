"""Search logic on synthetic vectors: diagonal alignment, ranking, exclusion of the query video."""

from dataclasses import astuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tubelet.catalog.search import Match, Query, align, diagonal_means, make_query, search
from tubelet.catalog.store import Catalog, ModelInfo, VideoEntry, VideoRecord
from tubelet.errors import TubeletError

DIM = 32
MODEL = ModelInfo(id="s" * 16, source="vit_tiny", dim=DIM)


def walk(seed: int, n: int) -> np.ndarray:
    """Unit vectors drifting smoothly over time: a stand-in for a video's segment embeddings."""
    rng = np.random.default_rng(seed)
    x = np.cumsum(rng.standard_normal((n, DIM)), 0) + 3 * rng.standard_normal(DIM)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def entry(i: int, n: int) -> VideoEntry:
    seg = walk(i, n)
    rec = VideoRecord(id=f"vid{i}", path=f"/v/{i}.mp4", content_hash=str(i), duration_s=n + 1.0, fps=25.0,
                      width=8, height=8, size_bytes=1, num_segments=n, added_at="", meta={})
    return VideoEntry(rec, seg.mean(0), np.arange(n, dtype=float), np.arange(n, dtype=float) + 2, seg)


@settings(max_examples=40, deadline=None)
@given(q=st.integers(1, 7), s=st.integers(1, 9), seed=st.integers(0, 99))
def test_diagonal_means_match_a_loop(q, s, seed):
    sim = np.random.default_rng(seed).random((q, s))
    got = diagonal_means(sim, min(q, s))
    for o in range(-(q - 1), s):
        vals = [sim[i, i + o] for i in range(q) if 0 <= i + o < s]
        want = np.mean(vals) if len(vals) >= min(q, s) else np.nan
        np.testing.assert_allclose(got[o + q - 1], want)


def test_align_finds_the_offset_of_an_excerpt():
    seg = walk(7, 40)
    noisy = seg[12:20] + 0.05 * np.random.default_rng(0).standard_normal((8, DIM)).astype(np.float32)
    query = Query("x", np.arange(8.0), np.arange(8.0) + 2, noisy / np.linalg.norm(noisy, axis=1, keepdims=True))
    match, pair = align(query, np.arange(40.0), np.arange(40.0) + 2, seg, 1.0)
    assert (match.start_s, match.end_s, match.query_start_s, match.query_end_s) == (12.0, 21.0, 0.0, 9.0)
    assert 0.9 < match.score <= pair.score <= 1.0
    assert pair.start_s - pair.query_start_s == 12.0


def test_search_ranks_the_source_first_and_locates_the_excerpt(tmp_path):
    cat = Catalog.create(tmp_path / "c", MODEL)
    cat.add([entry(i, 10 + 3 * i) for i in range(12)], MODEL.id)
    src = walk(5, 25)
    query = Query("excerpt", np.arange(6.0), np.arange(6.0) + 2, src[9:15])
    hits = search(cat, query, k=4)
    assert [h.rank for h in hits] == [1, 2, 3, 4]
    assert hits[0].id == "vid5" and hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert hits[0].match.start_s == 9.0 and hits[0].match.end_s == 16.0
    assert all(0 <= h.score <= 1 for h in hits) and hits[0].score > hits[1].score >= hits[3].score


def test_query_by_id_leaves_the_video_itself_out(tmp_path):
    cat = Catalog.create(tmp_path / "c", MODEL)
    cat.add([entry(i, 8) for i in range(5)], MODEL.id)
    q = make_query(cat, "vid2", start_s=3.0, end_s=5.0)
    assert list(q.starts) == [3.0] and list(q.ends) == [5.0]  # the segment inside 3–5 s, not those overlapping it
    hits = search(cat, q, k=10)
    assert len(hits) == 4 and "vid2" not in {h.id for h in hits}
    with pytest.raises(TubeletError, match="neither a video file nor a video id"):
        make_query(cat, "nope")


def numbers(matches: list[tuple[Match, Match]]) -> list[float]:
    return [x for pair in matches for m in pair for x in astuple(m)]


def test_aligning_videos_in_batches_equals_aligning_each(monkeypatch):
    from tubelet.catalog import search as search_mod

    lengths = [1, 4, 9, 30, 2, 17]
    starts = np.concatenate([np.arange(n, dtype=float) for n in lengths])
    starts[len(starts) - 1] -= 0.5  # an end-aligned tail window, off the grid
    video = np.repeat(np.arange(len(lengths)), lengths)
    vectors = walk(11, len(starts))
    q = walk(12, 6)
    query = Query("q", np.arange(6.0), np.arange(6.0) + 2, q)
    want = [align(query, starts[video == j], starts[video == j] + 2, vectors[video == j], 1.0)
            for j in range(len(lengths))]
    for budget in (10**9, 200):  # all in one batch; one or two videos per batch
        monkeypatch.setattr(search_mod, "BATCH_VALUES", budget)
        got = search_mod.align_videos(query, starts, starts + 2, vectors, video, 1.0)
        np.testing.assert_allclose(numbers(got), numbers(want), atol=1e-6)


def test_block_summaries_find_what_the_exact_scan_finds(tmp_path, monkeypatch):
    """Above SCAN_MAX_SEGMENTS the nearest segments come from the blocks nearest each query. Videos that share a
    piece with the query (re-edits: inserted into other footage, with noise) are found as by the exact scan, in the
    same order, with the same scores and matched spans, in long videos (many blocks) as in short ones; and a warmed
    catalog's kept normalised vectors score as the ones transformed per query."""
    from tubelet.catalog import store

    rng = np.random.default_rng(0)
    entries = [entry(i, 6 + 7 * (i % 9)) for i in range(60)]  # unrelated videos of 6…62 segments (1–4 blocks)
    sources = [walk(100 + f, 20) for f in range(3)]
    for f, src in enumerate(sources):
        for m, (before, after, noise) in enumerate([(0, 3, 0.1), (25, 10, 0.2), (44, 0, 0.3)]):
            e = entry(1000 + 10 * f + m, before + 20 + after)
            piece = src + noise * rng.standard_normal(src.shape).astype(np.float32) / np.sqrt(DIM)
            e.segments[before:before + 20] = piece / np.linalg.norm(piece, axis=1, keepdims=True)
            entries.append(e)
    cat = Catalog.create(tmp_path / "c", MODEL)
    cat.add(entries, MODEL.id)
    queries = [Query(f"from {f}", np.arange(8.0), np.arange(8.0) + 2, src[6:14]) for f, src in enumerate(sources)]
    exact = [search(cat, q, k=3) for q in queries]
    monkeypatch.setattr(store, "SCAN_MAX_SEGMENTS", 100)
    blocked = Catalog.open(tmp_path / "c")
    blocked.warm()  # as a server does: its candidates' normalised vectors are then rows of a kept matrix
    assert blocked.stats()["search"] == "blocks" and len(blocked._blocks(0).vectors) < blocked.num_segments // 8
    for f, (q, want) in enumerate(zip(queries, exact, strict=True)):
        got = search(blocked, q, k=3)
        assert [h.id for h in got] == [h.id for h in want] == [f"vid{1000 + 10 * f + m}" for m in range(3)]
        np.testing.assert_allclose(numbers([(h.match, h.pair) for h in got]),
                                   numbers([(h.match, h.pair) for h in want]), atol=1e-6)
