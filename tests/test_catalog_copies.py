"""Copy detection on synthetic segment vectors: runs, coverage, located spans, the calibrated threshold."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_catalog_search import MODEL, entry, walk

from tubelet.catalog.copies import calibrate_threshold, covered_seconds, find_copies, runs
from tubelet.catalog.search import Query, make_query
from tubelet.catalog.store import Catalog
from tubelet.errors import TubeletError


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


@pytest.fixture
def catalog(tmp_path):
    cat = Catalog.create(tmp_path / "c", MODEL)
    cat.add([entry(i, 20) for i in range(10)], MODEL.id)
    return cat


def query_of(*pieces: np.ndarray) -> Query:
    vecs = np.concatenate(pieces)
    n = len(vecs)
    return Query("q", np.arange(n, dtype=float), np.arange(n, dtype=float) + 2, vecs)


def test_copied_spans_are_located_and_measured(catalog):
    fresh = walk(99, 4)  # a video nobody indexed
    report = find_copies(catalog, query_of(walk(3, 20)[4:14], fresh), threshold=0.99)
    assert [(s.id, s.query_start_s, s.query_end_s, s.start_s, s.end_s, s.segments) for s in report.spans] == [
        ("vid3", 0.0, 11.0, 4.0, 15.0, 10)]
    assert report.spans[0].score == pytest.approx(1.0, abs=1e-5)
    assert report.duration_s == report.compared_s == 15.0 and report.copied_s == 11.0
    assert report.share == pytest.approx(11 / 15) and report.flagged and report.originality == pytest.approx(4 / 15)
    # the same copy in a longer video is under the 70 % flag
    longer = find_copies(catalog, query_of(walk(3, 20)[4:14], walk(98, 10)), threshold=0.99)
    assert longer.copied_s == 11.0 and longer.share == pytest.approx(11 / 21) and not longer.flagged


def test_a_compilation_names_every_source(catalog):
    report = find_copies(catalog, query_of(walk(2, 20)[0:5], walk(7, 20)[10:16]), threshold=0.99)
    got = [(s.id, s.query_start_s, s.start_s, s.segments) for s in report.spans]
    assert got == [("vid2", 0.0, 0.0, 5), ("vid7", 5.0, 10.0, 6)]
    assert report.share == 1.0 and report.originality == 0.0


def test_unrelated_video_is_original(catalog):
    report = find_copies(catalog, query_of(walk(97, 12)))
    assert report.spans == [] and report.share == 0.0 and report.originality == 1.0 and not report.flagged
    assert report.threshold_source == "catalog"


def test_query_by_id_does_not_find_itself(catalog):
    report = find_copies(catalog, make_query(catalog, "vid4"), threshold=0.99)
    assert report.spans == [] and report.originality == 1.0


def test_calibrated_threshold_is_the_quantile_of_cross_video_neighbours(catalog):
    seg = catalog.segments()
    sim = seg.vectors @ seg.vectors.T
    sim[seg.video[:, None] == seg.video[None, :]] = -np.inf
    assert calibrate_threshold(catalog, quantile=0.9) == pytest.approx(float(np.quantile(sim.max(1), 0.9)), abs=1e-6)
    one = Catalog.create(catalog.root.parent / "one", MODEL)
    one.add([entry(0, 5)], MODEL.id)
    assert calibrate_threshold(one) is None
    assert find_copies(one, query_of(walk(0, 5))).threshold_source == "default"


def test_bad_settings_are_one_line_errors(catalog):
    with pytest.raises(TubeletError, match="min_run"):
        find_copies(catalog, query_of(walk(1, 3)), min_run=0)
    with pytest.raises(TubeletError, match="flag_at"):
        find_copies(catalog, query_of(walk(1, 3)), flag_at=1.5)
