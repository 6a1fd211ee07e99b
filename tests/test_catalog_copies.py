"""Copy detection on synthetic fingerprints: runs, coverage, speed-changed and mirrored copies located in time,
compilations, scores, and the catalog's normalisation staying consistent through add and rm."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_catalog_search import MODEL, walk

from tubelet.catalog.copies import Line, Pairs, covered_seconds, find_copies, follow, hough_line, runs, score_of
from tubelet.catalog.fingerprint import DIM, FPS, mirrored
from tubelet.catalog.search import Query, make_query
from tubelet.catalog.store import Catalog, VideoEntry, VideoRecord
from tubelet.errors import TubeletError

SPACING = 1 / FPS


@settings(max_examples=60, deadline=None)
@given(bits=st.lists(st.booleans(), max_size=30), min_run=st.integers(1, 4))
def test_runs_match_a_loop(bits, min_run):
    want, start = [], None
    for i, b in enumerate([*bits, False]):
        if b and start is None:
            start = i
        elif not b and start is not None:
            if i - start >= min_run:
                want.append((start, i))
            start = None
    assert runs(np.asarray(bits, bool), min_run) == want


def test_covered_seconds_is_the_union():
    assert covered_seconds([]) == 0
    assert covered_seconds([(0, 2), (1, 3), (5, 6)]) == 4
    assert covered_seconds([(4, 9), (5, 6), (0, 1)]) == 6


def frames(seed: int, seconds: float) -> np.ndarray:
    """Fingerprints of a made-up video at FPS: frames that change gradually (correlation 0.8 from one to the next,
    fading with time apart, as motion does), around a look of their own."""
    rng = np.random.default_rng(seed)
    x = np.empty((int(seconds * FPS), DIM))
    x[0] = rng.standard_normal(DIM)
    for i in range(1, len(x)):
        x[i] = 0.8 * x[i - 1] + 0.6 * rng.standard_normal(DIM)
    x += 0.5 * rng.standard_normal(DIM)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def at(fp: np.ndarray, times: np.ndarray) -> np.ndarray:
    """The fingerprints shown at source `times` (nearest frame), with a little noise (re-encoding)."""
    idx = np.clip(np.round(times * FPS - 0.5).astype(int), 0, len(fp) - 1)
    x = fp[idx] + 0.05 * np.random.default_rng(7).standard_normal((len(idx), DIM))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def fp_times(seconds: float) -> np.ndarray:
    return (np.arange(int(seconds * FPS)) + 0.5) / FPS


def entry(i: int, seconds: float = 20.0) -> VideoEntry:
    n = int(seconds)
    seg = walk(i, n)
    rec = VideoRecord(id=f"vid{i}", path=f"/v/{i}.mp4", content_hash=str(i), duration_s=seconds, fps=25.0,
                      width=8, height=8, size_bytes=1, num_segments=n, added_at="", meta={})
    return VideoEntry(rec, seg.mean(0), np.arange(n, dtype=float), np.arange(n, dtype=float) + 2, seg,
                      fp_times(seconds), frames(i, seconds))


def query_of(*pieces: np.ndarray) -> Query:
    """A query whose fingerprints are the pieces one after the other."""
    fp = np.concatenate(pieces)
    seconds = len(fp) / FPS
    n = max(1, int(seconds))
    return Query("q", np.arange(n, dtype=float), np.arange(n, dtype=float) + 2, walk(1000, n), None,
                 fp_times(seconds), fp)


@pytest.fixture
def catalog(tmp_path):
    cat = Catalog.create(tmp_path / "c", MODEL)
    cat.add([entry(i) for i in range(10)], MODEL.id)
    return cat


def test_a_copy_is_located_in_query_and_source_time(catalog):
    copied = at(frames(3, 20), 4 + fp_times(8))  # source 4–12 s
    report = find_copies(catalog, query_of(copied, frames(99, 3)))
    (span,) = report.spans
    assert span.id == "vid3" and not span.mirrored and span.speed == pytest.approx(1.0, abs=0.03)
    assert span.query_start_s == pytest.approx(0, abs=0.5) and span.query_end_s == pytest.approx(8, abs=0.5)
    assert span.start_s == pytest.approx(4, abs=0.5) and span.end_s == pytest.approx(12, abs=0.5)
    assert report.share == pytest.approx(8 / 11, abs=0.05) and report.flagged
    assert report.originality == pytest.approx(1 - report.share) and span.score > 0.9
    assert [s.id for s in report.sources][:1] == ["vid3"] and report.sources[0].score == pytest.approx(span.score)
    longer = find_copies(catalog, query_of(copied, frames(98, 8)))  # the same copy in a longer video: not flagged
    assert longer.copied_s == pytest.approx(8, abs=0.5) and not longer.flagged


@pytest.mark.parametrize("speed", [0.75, 1.25, 1.5])
def test_a_speed_changed_and_mirrored_copy_is_located(catalog, speed):
    q_t = fp_times(8)
    copied = mirrored(at(frames(5, 20), 2 + speed * q_t))  # source 2 … 2 + 8·speed s, played at `speed`, flipped
    report = find_copies(catalog, query_of(frames(97, 2), copied))
    (span,) = report.spans
    assert span.id == "vid5" and span.mirrored and span.speed == pytest.approx(speed, rel=0.04)
    assert span.query_start_s == pytest.approx(2, abs=0.5) and span.query_end_s == pytest.approx(10, abs=0.5)
    assert span.start_s == pytest.approx(2, abs=0.6) and span.end_s == pytest.approx(2 + 8 * speed, abs=0.6)


def test_a_compilation_names_every_source(catalog):
    report = find_copies(catalog, query_of(at(frames(2, 20), fp_times(5)), at(frames(7, 20), 10 + fp_times(6))))
    got = [(s.id, round(s.query_start_s), round(s.start_s)) for s in report.spans]
    assert got == [("vid2", 0, 0), ("vid7", 5, 10)]
    assert report.share == pytest.approx(1.0, abs=0.05)


def test_unrelated_video_is_original_and_scores_low(catalog):
    report = find_copies(catalog, query_of(frames(97, 12)))
    assert report.spans == [] and report.share == 0.0 and report.originality == 1.0 and not report.flagged
    assert all(s.score < 0.5 for s in report.sources)


def test_query_by_id_does_not_find_itself(catalog):
    report = find_copies(catalog, make_query(catalog, "vid4"))
    assert report.spans == [] and report.originality == 1.0


def test_hough_prefers_the_true_slope_among_distractors():
    rng = np.random.default_rng(0)
    q = fp_times(10)
    true = Pairs(q, 3 + 1.25 * q, np.full(len(q), 0.8))
    noise = Pairs(rng.uniform(0, 10, 60), rng.uniform(0, 20, 60), rng.uniform(0, 0.5, 60))
    both = Pairs(*(np.concatenate([getattr(true, f), getattr(noise, f)]) for f in ("query_t", "source_t", "weight")))
    line = hough_line(both, SPACING)
    assert line.slope == pytest.approx(1.25, rel=0.03) and line.offset == pytest.approx(3, abs=0.5)
    assert len(line.query_t) >= len(q) - 1


def test_a_found_piece_is_followed_along_its_line_and_no_further():
    """Rows next to a piece that match the source where the line puts it, nearer the piece's level than their
    floor, join it (however far under the catalog's chance level); a row that does not stops the growth, and a
    strong match off the line does not count."""
    q, src = fp_times(10), fp_times(20)
    line = Line(0.75, 8.0, q[8:16], np.ones(8))
    sim = np.full((len(q), len(src)), -0.1)
    on = np.argmin(np.abs(src[None] - (0.75 * q[:, None] + 8)), axis=1)  # the source item the line puts each row at
    level = np.array([0.9, 0, 0, 0.2, 0.65, 0.65, 0.75, 0.72, *[0.9] * 8, 0.64, 0.4, 0.9, 0.9])
    sim[np.arange(len(q)), on] = level
    sim[18:, 0] = 0.95  # rows 18–19 match the start of the source: far off the line
    floor = np.full(len(q), 0.3)
    assert follow(8, 15, line, q, sim, src, floor, SPACING) == (4, 16)  # 0.64 > (0.3 + 0.9) / 2, 0.4 is not
    assert follow(8, 15, line, q, sim, src, np.full(len(q), 0.5), SPACING) == (6, 15)  # a higher floor: less
    sim[7, on[7]] = 0.2  # a broken row: nothing beyond it joins
    assert follow(8, 15, line, q, sim, src, floor, SPACING)[0] == 8


def test_the_model_adds_evidence_only_where_the_fingerprints_saw_the_source(catalog):
    """A 3 s insert between unrelated footage that a weak model reads as the source all along: the segments add to
    the insert, but do not grow its span over the footage (which would flag a partial copy)."""
    insert = at(frames(4, 20), 6 + fp_times(3))  # source 6–9 s at query 3–6 s
    fp = query_of(frames(98, 3), insert, frames(97, 3))
    seg = walk(4, 20)[4:13]  # the model: query segment k (k…k+2 s) looks like the source's k + 4
    query = dataclasses.replace(fp, starts=np.arange(9.0), ends=np.arange(9.0) + 2, vectors=seg)
    alone = find_copies(catalog, query, channels=("segments",))
    assert alone.copied_s >= 7  # what the model alone says: the whole query
    report = find_copies(catalog, query, channels=("frames", "segments"))
    spans = [s for s in report.spans if s.id == "vid4"]
    assert spans and all(2.5 <= s.query_start_s and s.query_end_s <= 6.5 for s in spans) and not report.flagged


def test_scores_are_in_unit_range_and_increase_with_evidence():
    e = np.array([0, 0.5, 1, 3, 30])
    s = score_of(e)
    assert s[0] == 0 and s[2] == pytest.approx(0.5) and np.all(np.diff(s) > 0) and np.all(s < 1)


def test_normalisation_is_stored_and_consistent_after_add_and_rm(tmp_path):
    """Adding then removing videos gives the normalisation of a catalog that never had them, whatever the order."""
    grown = Catalog.create(tmp_path / "grown", MODEL)
    grown.add([entry(i) for i in range(6)], MODEL.id)
    before = grown.normalisation()
    grown.add([entry(i) for i in range(6, 9)], MODEL.id)
    assert grown.normalisation().videos == 9 and not np.allclose(grown.normalisation().mean, before.mean)
    grown.remove(["vid1", "vid7"])
    fresh = Catalog.create(tmp_path / "fresh", MODEL)
    fresh.add([entry(i) for i in (8, 6, 5, 4, 3, 2, 0)], MODEL.id)  # the same videos, another order
    a, b = Catalog.open(tmp_path / "grown").normalisation(), fresh.normalisation()
    assert a.videos == b.videos == 7
    np.testing.assert_allclose(a.mean, b.mean, atol=1e-6)
    np.testing.assert_allclose(a.whiten, b.whiten, atol=1e-4)
    for f in ("segment_chance", "raw_segment_chance", "frame_chance"):
        assert getattr(a, f) == pytest.approx(getattr(b, f), abs=1e-5), f
    assert grown.refit_normalisation().frame_chance == pytest.approx(a.frame_chance, abs=1e-6)  # stored = refit
    norm_files = sorted(p.name for p in (tmp_path / "grown").glob("norm-*.npz"))
    assert len(norm_files) == 1  # the replaced ones were collected
    z = a.transform(grown.segments().vectors)  # whitened: unrelated segments spread around 0
    assert abs(float(np.mean(z @ z.T))) < 0.2
    grown.remove([f"vid{i}" for i in (0, 2, 3, 4, 5, 6)])
    assert Catalog.open(tmp_path / "grown").normalisation() is None  # one video: nothing to calibrate on


def test_bad_settings_are_one_line_errors(catalog):
    with pytest.raises(TubeletError, match="min_run"):
        find_copies(catalog, query_of(frames(1, 3)), min_run=0)
    with pytest.raises(TubeletError, match="flag_at"):
        find_copies(catalog, query_of(frames(1, 3)), flag_at=1.5)
    with pytest.raises(TubeletError, match="min_score"):
        find_copies(catalog, query_of(frames(1, 3)), min_score=1.0)


def test_both_readings_of_a_video_are_stored_and_either_finds_it(tmp_path):
    """A video whose margins read two ways keeps both in the catalog (the strict rows after the first ones, at the
    same instants): a copy that shows only the strict reading is found, which it is not where the catalog keeps
    the first reading alone, and a query by the video's id gets both readings back, apart."""
    from tubelet.catalog.embed import VideoEmbedding
    from tubelet.catalog.fingerprint import split_readings

    others = [entry(i) for i in range(10) if i != 3]
    e = entry(3)
    strict = frames(303, 20)  # the same video in its strict box: other fingerprints
    emb = VideoEmbedding(e.record.path, "3" * 64, 1, 20.0, 25.0, 8, 8, MODEL.id, e.starts, e.ends, e.segments,
                         e.vector, e.fp_times, e.fp_vectors, strict)
    both = Catalog.create(tmp_path / "both", MODEL)
    both.add([*others, emb.to_entry()], MODEL.id)
    f = both.frames([emb.id])
    assert len(f.times) == 2 * len(e.fp_times) and split_readings(f.times) == len(e.fp_times)
    np.testing.assert_array_equal(f.times[len(e.fp_times):], e.fp_times)
    copy = query_of(at(strict, 4 + fp_times(8)), frames(99, 2))
    report = find_copies(both, copy)
    assert [s.id for s in report.spans] == [emb.id] and report.flagged
    assert report.spans[0].start_s == pytest.approx(4, abs=0.5)
    first_only = Catalog.create(tmp_path / "first", MODEL)
    first_only.add([*others, e], MODEL.id)
    assert not find_copies(first_only, copy).flagged
    q = make_query(both, emb.id, 2.0, 12.0)
    assert len(q.fp_vectors) == len(q.fp_alt) > 0 and split_readings(q.fp_times) == len(q.fp_times)
    np.testing.assert_allclose(q.fp_vectors, e.fp_vectors[(e.fp_times >= 2) & (e.fp_times <= 12)])
    np.testing.assert_allclose(q.fp_alt, strict[(e.fp_times >= 2) & (e.fp_times <= 12)])
    assert split_readings(fp_times(5)) == 10 and split_readings(np.zeros(0)) == 0


def test_captioned_black_bars_get_a_second_reading_that_matches_the_picture():
    """Text burnt into black bars has edges, so the first content box keeps the bars; the strict reading cuts the
    rows black in every frame, and its fingerprints match those of the picture alone. A dark picture that
    changes is not cut, and a video without bars has no second reading."""
    import cv2

    from tubelet.catalog.fingerprint import FrameSampler, content_box, describe

    rng = np.random.default_rng(0)
    picture = np.stack([cv2.resize(rng.integers(0, 256, (24, 32)).astype(np.uint8), (128, 96),
                                   interpolation=cv2.INTER_CUBIC) for _ in range(8)])  # [8, 96, 128], changing
    padded = np.zeros((8, 128, 128), np.uint8)
    padded[:, 16:112] = picture
    text = np.kron(rng.random((3, 36)) > 0.5, np.ones((3, 3), np.uint8))[:8] * np.uint8(255)  # captions on the
    # bars, next to the picture, on every frame
    padded[:, 8:16, 10:118] = text
    padded[:, 112:120, 10:118] = text[::-1]
    first, cut = content_box(padded), content_box(padded, strict=True)
    assert first[:2] == (0, 128) and cut[:2] == (16, 112) and cut[2:] == first[2:]
    sampler = FrameSampler(0.0, 4.0)
    for i, frame in enumerate(padded):
        sampler.offer(sampler.times[i], np.repeat(frame[..., None], 3, -1))
    fp = sampler.fingerprints()
    alone = describe(picture, (0, 96, 0, 128))
    assert len(fp.alt) == len(fp.vectors) == 8
    assert (fp.alt * alone).sum(1).min() > 0.9 > (fp.vectors * alone).sum(1).mean()
    dark = picture // 8  # dark, but not black in every frame
    assert content_box(dark, strict=True) == content_box(dark)
    plain = FrameSampler(0.0, 4.0)
    for i, frame in enumerate(picture):
        plain.offer(plain.times[i], np.repeat(frame[..., None], 3, -1))
    assert len(plain.fingerprints().alt) == 0


def panning(seed: int, n: int = 20) -> np.ndarray:
    """Grey frames [n, 96, 170] of a camera panning over a smooth texture of its own."""
    import cv2

    rng = np.random.default_rng(seed)
    tex = cv2.resize(rng.integers(0, 256, (8, 14)).astype(np.uint8), (280, 160), interpolation=cv2.INTER_CUBIC)
    return np.stack([tex[2 * i:2 * i + 96, 3 * i:3 * i + 170] for i in range(n)])


def sampled(grey: np.ndarray):
    """The fingerprints (and thumbnails) of grey frames shown at FPS."""
    from tubelet.catalog.fingerprint import FrameSampler

    s = FrameSampler(0.0, len(grey) / FPS)
    for t, f in zip(s.times, grey, strict=True):
        s.offer(float(t), np.repeat(f[..., None], 3, -1))
    return s.fingerprints()


def pixel_entry(i: int, grey: np.ndarray, readings: bool = True) -> VideoEntry:
    """A catalog entry of grey frames (with every reading the catalog stores, or the first one alone)."""
    from tubelet.catalog.fingerprint import stored_rows

    fp, n = sampled(grey), len(grey) // 2
    seg = walk(i, n)
    rec = VideoRecord(id=f"vid{i}", path=f"/v/{i}.mp4", content_hash=str(i), duration_s=n, fps=25.0, width=170,
                      height=96, size_bytes=1, num_segments=n, added_at="", meta={})
    times, vectors = stored_rows(fp) if readings else (fp.times, fp.vectors)
    return VideoEntry(rec, seg.mean(0), np.arange(n, dtype=float), np.arange(n, dtype=float) + 2, seg, times,
                      vectors, fp.thumbs)


def test_an_off_centre_80_percent_crop_is_located_through_its_sources_crop_views(tmp_path):
    """The fingerprints of an 80 % crop away from the crop lattice see their source weakly and, the camera panning,
    one second off; the crop views of the source (compared because the fingerprints saw it) match it strongly and
    in place. An unrelated video gets no crop evidence, and a lattice view is the fingerprint of that crop."""
    import cv2

    from tubelet.catalog.fingerprint import CROP, GRID, PATCH, THUMB, crop_views, describe

    cat = Catalog.create(tmp_path / "c", MODEL)
    cat.add([pixel_entry(i, panning(i)) for i in range(8)], MODEL.id)
    assert 0 < cat.normalisation().crop_chance < 1
    src = panning(3)
    y0, x0 = round(0.3 * (1 - CROP) * 96), round(0.7 * (1 - CROP) * 170)  # between lattice points
    crop = np.stack([cv2.resize(f[y0:y0 + round(CROP * 96), x0:x0 + round(CROP * 170)], (170, 96)) for f in src])
    fq = sampled(crop)
    q = Query("q", np.arange(10.0), np.arange(10.0) + 2, walk(99, 10), None, fq.times, fq.vectors)
    alone = find_copies(cat, q, channels=("frames",))
    both = find_copies(cat, q, channels=("frames", "crops"))
    assert both.sources[0].id == alone.sources[0].id == "vid3" and both.flagged
    assert both.sources[0].score > 0.99 > alone.sources[0].score
    assert abs(both.spans[0].start_s) < 0.25 < abs(alone.spans[0].start_s)
    other = sampled(panning(99))
    assert find_copies(cat, Query("o", np.arange(10.0), np.arange(10.0) + 2, walk(98, 10), None, other.times,
                                  other.vectors)).sources == []
    thumbs = cat.thumbs(["vid3"])["vid3"]
    views = crop_views(thumbs)
    assert thumbs.shape == (20, PATCH, PATCH) and views.shape == (GRID * GRID, 20, DIM)
    last = PATCH - THUMB  # the lattice's far corner
    np.testing.assert_allclose(views[-1], describe(thumbs, (last, PATCH, last, PATCH)), atol=1e-5)


def test_a_corner_crop_the_fingerprints_never_line_up_with_is_found_through_the_video_they_resemble_most(tmp_path):
    """An 80 % crop of a corner shares no frame with its source above chance, so the fingerprints see nothing;
    its frames still resemble the source more than any other video, which nominates the source's crop views
    (NOMINATE): those find it over the whole query. Unrelated footage, nominated too, gets no crop evidence."""
    import cv2

    from tubelet.catalog.fingerprint import CROP

    cat = Catalog.create(tmp_path / "c", MODEL)
    cat.add([pixel_entry(i, panning(i)) for i in range(8)], MODEL.id)
    y0, x0 = round(0.9 * (1 - CROP) * 96), round(0.1 * (1 - CROP) * 170)
    crop = np.stack([cv2.resize(f[y0:y0 + round(CROP * 96), x0:x0 + round(CROP * 170)], (170, 96))
                     for f in panning(3)])
    fq = sampled(crop)
    q = Query("q", np.arange(10.0), np.arange(10.0) + 2, walk(99, 10), None, fq.times, fq.vectors)
    assert find_copies(cat, q, channels=("frames",)).sources == []
    found = find_copies(cat, q, channels=("frames", "crops"))
    assert [s.id for s in found.sources] == ["vid3"] and found.flagged
    assert found.spans[0].query_end_s - found.spans[0].query_start_s > 9  # the whole query
    other = sampled(panning(99))
    assert find_copies(cat, Query("o", np.arange(10.0), np.arange(10.0) + 2, walk(98, 10), None, other.times,
                                  other.vectors), channels=("frames", "crops")).sources == []


def test_a_catalog_from_before_thumbnails_still_reads_and_merges(tmp_path, monkeypatch):
    """Fragments written without the thumbnail column read as videos without thumbnails (no crop views), and
    merge with newer fragments."""
    import pyarrow as pa

    import tubelet.catalog.store as store

    root = tmp_path / "c"
    cat = Catalog.create(root, MODEL)
    cat.add([pixel_entry(i, panning(i, 8)) for i in range(2)], MODEL.id)
    assert set(Catalog.open(root).thumbs(["vid0", "vid1", "nope"])) == {"vid0", "vid1"}
    for frag in root.glob("frag-*.arrow"):  # as an older tubelet wrote it
        with pa.memory_map(str(frag)) as f:
            table = pa.ipc.open_file(f).read_all().drop_columns(["fp_thumb"])
        tmp = frag.with_suffix(".tmp")
        with pa.OSFile(str(tmp), "wb") as f, pa.ipc.new_file(f, table.schema) as w:
            w.write_table(table)
        tmp.replace(frag)  # a new inode: the open catalog's maps of the old file stay valid
    old = Catalog.open(root)
    assert old.thumbs(["vid0", "vid1"]) == {} and len(old.frames().times) == 16
    monkeypatch.setattr(store, "MAX_FRAGMENTS", 1)
    old.add([pixel_entry(2, panning(2, 8))], MODEL.id)  # two fragments: merged into one
    new = Catalog.open(root)
    assert len(list(root.glob("frag-*.arrow"))) == 1 and len(new) == 3
    assert set(new.thumbs(["vid0", "vid1", "vid2"])) == {"vid2"}
    np.testing.assert_array_equal(new.thumbs(["vid2"])["vid2"], sampled(panning(2, 8)).thumbs)
    assert 0 < new.normalisation().crop_chance <= 1


def test_a_piece_of_a_video_whose_flat_bands_read_as_margin_is_found_inside_other_footage(tmp_path):
    """Flat bands (a screen recording's white page) read as margin, so the source's box cuts them; a piece of it
    between other footage is described whole (the footage has no margins). The catalog keeps the source's whole
    frame too, and finds the piece there strongly; with the boxed reading alone, weakly."""
    src = panning(7, 24)
    src[:, :22], src[:, 74:] = 235, 235  # flat white above and below the picture
    fp = sampled(src)
    assert fp.box[:2] != (0, 96) and len(fp.whole) == len(fp.vectors) == 24
    piece = np.concatenate([panning(50, 6), src[6:18], panning(51, 6)])
    q = sampled(piece)
    assert q.box == (0, 96, 0, 170)
    query = Query("q", np.arange(12.0), np.arange(12.0) + 2, walk(97, 12), None, q.times, q.vectors)
    found = []
    for readings in (True, False):
        cat = Catalog.create(tmp_path / str(readings), MODEL)
        cat.add([pixel_entry(i, panning(i)) for i in range(6)] + [pixel_entry(7, src, readings)], MODEL.id)
        found.append(find_copies(cat, query, channels=("frames",)))
    (span,) = found[0].spans
    assert span.id == "vid7" and span.query_start_s == pytest.approx(3, abs=0.5)
    assert span.query_end_s == pytest.approx(9, abs=0.5) and span.start_s == pytest.approx(3, abs=0.5)
    assert span.score > 0.95 and max((s.score for s in found[1].spans if s.id == "vid7"), default=0) < 0.7


@pytest.mark.parametrize("seconds", [6, 3])
def test_a_pillarboxed_piece_between_other_footage_is_read_in_its_own_box(tmp_path, seconds):
    """A 4:3 piece pillarboxed between 16:9 footage: the query's box (set by the footage) keeps the piece's black
    pillars, its local reading cuts them and matches the source, down to a 3 s piece (no window across the piece's
    edge is wholly inside it)."""
    import cv2

    cat = Catalog.create(tmp_path / "c", MODEL)
    cat.add([pixel_entry(i, panning(i)) for i in range(8)], MODEL.id)
    n = int(seconds * FPS)
    piece = np.zeros((n, 96, 170), np.uint8)
    piece[:, :, 21:149] = [cv2.resize(f, (128, 96), interpolation=cv2.INTER_AREA) for f in panning(3)[4:4 + n]]
    q = sampled(np.concatenate([panning(50, 6), piece, panning(51, 6)]))
    assert q.box == (0, 96, 0, 170) and len(q.local) == len(q.vectors) == 12 + n
    reports = [find_copies(cat, Query("q", np.arange(12.0), np.arange(12.0) + 2, walk(97, 12), None, q.times,
                                      q.vectors, fp_local=local), channels=("frames",))
               for local in (q.local, np.zeros((0, DIM), np.float32))]
    (span,) = [s for s in reports[0].spans if s.id == "vid3"]
    assert span.query_start_s == pytest.approx(3, abs=0.5) and span.query_end_s == pytest.approx(3 + seconds, abs=0.5)
    assert span.start_s == pytest.approx(2 + span.query_start_s - 3, abs=0.5) and span.score > 0.5 + seconds / 15
    assert max((s.score for s in reports[1].spans if s.id == "vid3"), default=0) < 0.5


def still(direction: np.ndarray, seconds: float, seed: int) -> np.ndarray:
    """Fingerprints of a still shot: one look, a little sensor noise from frame to frame."""
    x = direction + 0.02 * np.random.default_rng(seed).standard_normal((int(seconds * FPS), DIM))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def leaning(towards: np.ndarray, cosine: float, seed: int) -> np.ndarray:
    """A unit direction at `cosine` to the unit vector `towards`."""
    other = np.random.default_rng(seed).standard_normal(DIM)
    other -= (other @ towards) * towards
    return cosine * towards + np.sqrt(1 - cosine**2) * other / np.linalg.norm(other)


@pytest.mark.parametrize("weight, copied", [(0.2, False), (0.7, True)])
def test_a_still_look_alike_is_no_copy_however_long_but_a_clear_still_copy_is(catalog, weight, copied):
    """Two still scenes line up at any alignment, so frame after frame barely above chance must not add up to a
    copy (PEAK_MIN); a still copy whose frames clearly match is one."""
    look = leaning(np.eye(DIM)[0], 0.0, 1)
    catalog.add([dataclasses.replace(entry(50), fp_vectors=still(look, 20, 2))], MODEL.id)
    chance = catalog.normalisation().frame_chance
    query = still(leaning(look, chance + weight * (1 - chance), 3), 12, 4)
    report = find_copies(catalog, query_of(query))
    assert [s.id for s in report.spans][:1] == (["vid50"] if copied else [])
    assert report.flagged == copied
