"""End-to-end: `tubelet index add MANIFEST`, `clusters`, `recommend` and `trends` on excerpts of real clips with a
random-init vit_tiny (8 frames, 112 px), plus the trend rule, times and manifests on their own."""

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import REAL_VIDEOS, needs_shared, splice
from test_catalog_cli import one_thread, run, run_json  # noqa: F401 (one_thread: autouse fixture)

from tubelet.errors import TubeletError
from tubelet.insights.clusters import ClusterParams
from tubelet.insights.times import format_time, parse_time, parse_window
from tubelet.insights.trends import ALPHA, find_trends, split_new_groups, trends_with_groups

MODEL = ["--model", "vit_tiny", "--set", "num_frames=8", "--set", "image_size=112"]
# three clips that look nothing alike; the last one is uploaded only lately (a rising topic)
TOPICS = ["bw_film_dialogue.mp4", "aquarium_fish_wide.mp4", "soccer_juggling.mp4"]
STARTS = [0.5, 2.0, 3.5]


def _excerpt(tmp: Path, topic: str, start: float) -> Path:
    dst = tmp / f"{Path(topic).stem}-{start:.1f}.mp4"
    splice([(REAL_VIDEOS / topic, start, start + 1.5)], dst)
    return dst


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    """9 uploads (3 excerpts of 3 clips) from a CSV manifest: days 1–6 for the first two clips, 10–12 for the third."""
    tmp = tmp_path_factory.mktemp("insights")
    days = {TOPICS[0]: [1, 2, 3], TOPICS[1]: [4, 5, 6], TOPICS[2]: [10, 11, 12]}
    rows = [(_excerpt(tmp, t, s).name, d, t) for t in TOPICS for s, d in zip(STARTS, days[t], strict=True)]
    manifest = tmp / "uploads.csv"
    manifest.write_text("path,uploaded_at,creator\n" + "".join(f"{p},{d},{t}\n" for p, d, t in rows))
    report = run_json("index", "add", manifest, "--catalog", tmp / "cat", *MODEL)
    assert not report["failed"] and len(report["added"]) == 9
    return tmp, tmp / "cat", {Path(v["path"]).name: v for v in run_json("index", "ls", "--catalog", tmp / "cat")}


def _topic(videos: dict, vid: str) -> str:
    return next(v["meta"]["creator"] for v in videos.values() if v["id"] == vid)


def test_manifest_metadata_is_listed(catalog):
    _, _, videos = catalog
    assert all(set(v["meta"]) == {"uploaded_at", "creator"} for v in videos.values())
    v = videos["soccer_juggling-2.0.mp4"]
    assert v["meta"] == {"uploaded_at": "11", "creator": "soccer_juggling.mp4"}


@needs_shared("three topics a random-init model tells apart (the bundled stand-ins mix two)")
def test_clusters_recommend_trends_end_to_end(catalog):
    tmp, cat, videos = catalog
    res = run_json("clusters", "--catalog", cat, "--min-size", "3", "--out", tmp / "out")
    ids = {v["id"] for v in videos.values()}
    members = [m for c in res["clusters"] for m in c["members"]]
    assert sorted(members + res["noise"]) == sorted(ids)  # every video once: in one cluster or noise
    assert len(res["clusters"]) >= 2
    for c in res["clusters"]:
        assert c["size"] == len(c["members"]) >= 3 and set(c["exemplars"]) <= set(c["members"])
        assert len({_topic(videos, m) for m in c["members"]}) == 1  # a cluster is one clip's excerpts
    assert (tmp / "out" / "clusters.png").stat().st_size > 10_000
    assert json.loads((tmp / "out" / "clusters.json").read_text())["clusters"] == res["clusters"]
    assert res["fitted"]["videos"] == 9 and res["fitted"]["model_id"] == run_json(
        "index", "stats", "--catalog", cat)["model"]["id"]

    liked = videos["aquarium_fish_wide-0.5.mp4"]["id"]
    rec = run_json("recommend", "--catalog", cat, "--liked", liked, "-k", "4")
    assert len(rec["results"]) == 4 and liked not in [r["id"] for r in rec["results"]]
    assert {_topic(videos, r["id"]) for r in rec["results"][:2]} == {"aquarium_fish_wide.mp4"}
    assert all(0 <= r["score"] <= 1 and set(r) == {"id", "path", "score", "cluster"} for r in rec["results"])
    scores = [r["score"] for r in rec["results"]]
    assert scores == sorted(scores, reverse=True)
    # a liked file not in the catalog is embedded and compared by the same affinity; one in it counts as its id
    fresh = _excerpt(tmp, TOPICS[2], 2.7)
    rec = run_json("recommend", "--catalog", cat, "--liked", fresh, "-k", "3")["results"]
    assert [_topic(videos, r["id"]) for r in rec[:2]] == ["soccer_juggling.mp4"] * 2
    indexed = tmp / "soccer_juggling-2.0.mp4"
    rec = run_json("recommend", "--catalog", cat, "--liked", indexed, "-k", "8")["results"]
    assert videos[indexed.name]["id"] not in [r["id"] for r in rec] and len(rec) == 8

    tr = run_json("trends", "--catalog", cat, "--window", "3", "--period", "1", "--out", tmp / "out")
    rising = [t for t in tr["trends"] if t["direction"] == "rising"]
    soccer = {videos[f"soccer_juggling-{s:.1f}.mp4"]["id"] for s in STARTS}
    cluster_of = {m: c["id"] for c in res["clusters"] for m in c["members"]}
    assert [t["cluster"] for t in rising] == [cluster_of[next(iter(soccer))]]
    assert rising[0]["since"] == 9.0 and sum(rising[0]["counts"]) == 3  # its uploads began in the period after day 9
    assert (tmp / "out" / "trends.png").stat().st_size > 10_000
    code, out, _ = run("trends", "--catalog", cat, "--window", "3")
    assert code == 0 and "rising" in out


def test_new_upload_is_assigned_without_refit(catalog):
    tmp, cat, videos = catalog
    before = run_json("clusters", "--catalog", cat, "--min-size", "3")
    assert before["fitted"]["fitted_on"] == "affinity"  # so the new video is placed by its affinity
    near = _excerpt(tmp, TOPICS[1], 2.04)  # almost the same picture as an indexed excerpt
    run_json("index", "add", near, "--catalog", cat, "--meta", "uploaded_at=12")
    code, out, err = run("clusters", "--catalog", cat, "--json")
    assert code == 0 and "assigned 1 new video" in err
    after = json.loads(out)
    assert after["fitted"] == before["fitted"]  # same fit: same time, same catalog state
    new_id = next(v["id"] for v in run_json("index", "ls", "--catalog", cat) if Path(v["path"]).name == near.name)
    twin = videos["aquarium_fish_wide-2.0.mp4"]["id"]
    home = [c for c in after["clusters"] if twin in c["members"]]
    assert home and new_id in home[0]["members"]
    old = {c["id"]: c["members"] for c in before["clusters"]}
    assert all(set(old[c["id"]]) <= set(c["members"]) for c in after["clusters"])  # nobody moved
    refit = run_json("clusters", "--catalog", cat, "--refit", "--min-size", "3")
    assert refit["fitted"]["videos"] == 10 and refit["fitted"]["fitted_at"] >= before["fitted"]["fitted_at"]


def test_a_clustering_fitted_on_another_version_of_the_affinity_is_fitted_again(catalog, tmp_path):
    """A stored clustering whose statistics are of another version of the affinity's channels (one stored before
    the colour ranks records none) is stale: `clusters` fits afresh instead of placing new videos with it."""
    import shutil

    _, cat, _ = catalog
    shutil.copytree(cat, tmp_path / "cat")
    run_json("clusters", "--catalog", tmp_path / "cat", "--min-size", "3")
    code, _, err = run("clusters", "--catalog", tmp_path / "cat", "--min-size", "3", "--json")
    assert code == 0 and "clusters: up to date" in err
    path = tmp_path / "cat" / "insights" / "clusters.npz"
    with np.load(path) as z:
        stored = {k: z[k] for k in z.files}
    meta = json.loads(str(stored["meta"]))
    assert meta["info"].pop("affinity_version") >= 2
    np.savez(path, **{**stored, "meta": np.array(json.dumps(meta))})
    code, _, err = run("clusters", "--catalog", tmp_path / "cat", "--min-size", "3", "--json")
    assert code == 0 and "clusters: fitted" in err


def test_trends_split_off_a_new_group_of_recent_uploads(catalog):
    """A fourth recent soccer upload: the recent soccer uploads are one another's nearest and far from every older
    upload, so `tubelet trends` reports them as a new group (with its members and the clusters they were in), and
    the aquarium upload of the same days (near its older twins) stays out of it."""
    tmp, cat, videos = catalog
    extra = _excerpt(tmp, TOPICS[2], 1.2)
    run_json("index", "add", extra, "--catalog", cat, "--meta", "uploaded_at=12")
    ids = {Path(v["path"]).name: v["id"] for v in run_json("index", "ls", "--catalog", cat)}
    soccer = {ids[f"soccer_juggling-{s:.1f}.mp4"] for s in [*STARTS, 1.2]}
    clusters = run_json("clusters", "--catalog", cat)
    assert clusters["fitted"]["fitted_on"] == "affinity"
    cluster_of = {m: c["id"] for c in clusters["clusters"] for m in c["members"]}
    tr = run_json("trends", "--catalog", cat, "--window", "3", "--period", "1", "--out", tmp / "groups")
    assert (tmp / "groups" / "trends.png").stat().st_size > 10_000
    groups = [t for t in tr["trends"] if "members" in t]
    assert len(groups) == 1 and set(groups[0]["members"]) == soccer and groups[0]["direction"] == "rising"
    assert groups[0]["cluster"] >= len(clusters["clusters"])  # numbered after the clustering's clusters
    assert groups[0]["within"] == sorted({cluster_of.get(v, -1) for v in soccer}) and groups[0]["kind"] == "new"
    code, out, _ = run("trends", "--catalog", cat, "--window", "3")
    assert code == 0 and "new group" in out


def test_the_benchmark_finds_a_byte_identical_re_upload_as_the_catalog_video_it_duplicates(catalog, tmp_path,
                                                                                           monkeypatch):
    """`index add` keeps one video per content; benchmarks/trends.py maps each upload to its catalog row by content,
    so an upload that repeats another's bytes under another name is that video (by path it was missing)."""
    import importlib.util
    import shutil
    import sys

    from tubelet.catalog.store import Catalog

    spec = importlib.util.spec_from_file_location("bench_trends", Path(__file__).parents[1] / "benchmarks/trends.py")
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_trends", bench)  # its dataclasses look their module up
    spec.loader.exec_module(bench)
    tmp, cat, videos = catalog
    original = next(iter(videos))
    again = shutil.copy(tmp / original, tmp_path / "again.mp4")
    ids, _ = Catalog.open(cat).video_vectors()
    uploads = [bench.Upload(str(p), "t", "steady", 0.0, 0.0) for p in (tmp / original, again)]
    rows = bench.catalog_rows(Catalog.open(cat), uploads)
    assert rows[0] == rows[1] == ids.index(videos[original]["id"])


def test_too_few_videos_is_a_clear_error(catalog, tmp_path):
    tmp, _, _ = catalog
    small = tmp_path / "small"
    run_json("index", "add", *sorted(tmp.glob("aquarium*.mp4"))[:3], "--catalog", small, *MODEL)
    code, out, err = run("clusters", "--catalog", small)
    assert code == 1 and out == ""
    need = f"at least {2 * ClusterParams().min_size}"
    assert err.strip().count("\n") == 0 and "holds 3 videos" in err and need in err
    code, _, err = run("trends", "--catalog", small)
    assert code == 1 and need in err


def test_trend_rule_finds_the_riser_and_the_fader_not_the_steady():
    rng = np.random.default_rng(0)
    times, labels = [], []
    for c, (lo, hi, rate) in enumerate([(0, 30, 1.0), (0, 30, 1.0), (0, 30, 1.0), (20, 30, 3.0), (0, 10, 3.0)]):
        t = rng.uniform(lo, hi, rng.poisson(rate * (hi - lo)))
        times += t.tolist()
        labels += [c] * len(t)
    report = find_trends(np.array(times), np.array(labels), window=7.0, period=1.0)
    kinds = {t.cluster: t.direction for t in report.trends}
    assert kinds == {3: "rising", 4: "fading"}
    rising = report.trends[0]
    assert 19 <= rising.since <= 21 and 0 < rising.score <= 1 and sum(rising.counts) == labels.count(3)
    assert 9 <= report.trends[1].since <= 11  # the fader's last uploads were just before day 10
    assert len(report.periods) == len(rising.counts) == 30


def test_a_new_interest_ranks_above_a_large_steady_one_s_upswing():
    """A large interest (2/day, then 8/day in the last week) and a new one (6 uploads from day 25) both rise;
    the large one's share moves more (higher score), the new one's grows from nothing (higher lift) and ranks
    first."""
    rng = np.random.default_rng(0)
    large = np.concatenate([rng.uniform(0, 23, 46), rng.uniform(23, 30, 56)])
    times = np.concatenate([large, rng.uniform(25, 30, 6), rng.uniform(0, 30, 120)])
    labels = np.repeat([0, 1, 2, 3, 4, 5], [len(large), 6, 30, 30, 30, 30])
    report = find_trends(times, labels, window=7.0, period=1.0, now=30.0)
    rising = {t.cluster: t for t in report.trends if t.direction == "rising"}
    assert set(rising) == {0, 1}
    assert rising[0].score > rising[1].score and rising[1].lift > rising[0].lift
    assert [t.cluster for t in report.trends][:2] == [1, 0]


def test_steady_topics_rise_no_more_often_than_alpha():
    """Steady topics (Poisson uploads at a constant rate): the rise test's false alarms stay within its level. A
    test that took the baseline share as exact (a binomial) fires twice as often (≈ 1.7 % at 1 %)."""
    rng = np.random.default_rng(0)
    alarms, tests = 0, 0
    for _ in range(300):
        labels = np.repeat(np.arange(6), rng.poisson(1.5 * 30, 6))
        report = find_trends(rng.uniform(0, 30, len(labels)), labels, window=7.0, period=1.0, now=30.0)
        alarms += sum(t.direction == "rising" for t in report.trends)
        tests += 6
    assert alarms / tests <= ALPHA


def test_times_and_windows():
    assert parse_time("2026-01-02T00:00:00Z", "x") == (1767312000.0, True)
    assert parse_time(3.5, "x") == (3.5, False) and parse_time("3.5", "x") == (3.5, False)
    assert format_time(1767312000.0, True) == "2026-01-02T00:00:00Z"
    assert parse_window("7d") == (7 * 86400.0, True) and parse_window("2.5") == (2.5, False)
    for bad in ["soon", "-1d", "0"]:
        with pytest.raises(TubeletError):
            parse_window(bad)
    with pytest.raises(TubeletError, match="neither a number nor an ISO-8601"):
        parse_time("yesterday", "a.mp4: uploaded_at")


def test_a_new_group_inside_a_steady_cluster_is_split_off_and_rises():
    """Synthetic affinities: steady topics A and B over 30 days; a new topic C (6 uploads from day 25) whose
    uploads HDBSCAN put in B's cluster; 5 recent A uploads of one moment, as alike to their older fellows as to
    each other. Only C is a new group, and it is the one rising trend; A's sub-group stays in A."""
    rng = np.random.default_rng(0)
    topic = np.array([0] * 20 + [1] * 20 + [2] * 6 + [0] * 5)
    times = np.concatenate([rng.uniform(0, 30, 40), rng.uniform(25, 30, 6), rng.uniform(24, 30, 5)])
    alike = np.array([[3.0, 0.0, 0.0], [0.0, 3.0, 1.5], [0.0, 1.5, 3.2]])
    a = alike[topic][:, topic] + rng.normal(0, 0.3, (len(topic), len(topic)))
    a[-5:, -5:] = 3.6  # the A sub-group: one moment…
    a[-5:, :20] = 3.0 + rng.normal(0, 0.1, (5, 20))  # …that older A uploads show too
    a[:20, -5:] = a[-5:, :20].T
    a = np.maximum(a, a.T)
    np.fill_diagonal(a, np.inf)
    labels = np.where(topic == 2, 1, topic)  # C joined B's cluster
    split, groups = split_new_groups(times, labels, 7.0, 30.0, 2, lambda rows: a[rows])
    assert [g.rows.tolist() for g in groups] == [np.flatnonzero(topic == 2).tolist()] and groups[0].within == [1]
    assert (split[topic == 2] == 2).all() and (split[topic != 2] == labels[topic != 2]).all()
    rising = [t.cluster for t in find_trends(times, split, 7.0, 1.0, now=30.0).trends if t.direction == "rising"]
    assert rising == [2]
    # fewer recent uploads than a group needs: nothing split
    assert split_new_groups(times, labels, 0.2, 30.0, 2, lambda rows: a[rows])[1] == []


@pytest.mark.parametrize("a_rises", [False, True])
def test_a_rising_cluster_reports_its_rising_part_not_its_steady_majority(a_rises):
    """Synthetic affinities: one cluster holds steady A (26 uploads), steady B (19; a little like C) and emerging
    C (25, from day 22: old enough to have older uploads of its own, so no new group); clusters 1 and 2 are steady.
    The cluster rises on C's uploads, but A is its largest topic. Its rising part (B + C, then C within it) is
    reported, not the cluster. When A rises too (its own upswing), the cluster is left whole."""
    rng = np.random.default_rng(0)
    topic = np.repeat([0, 1, 2, 3, 4], [26, 19, 25, 40, 40])
    steady = lambda n: np.linspace(0, 30, n)  # noqa: E731
    times = np.concatenate([steady(26), steady(19), np.linspace(22, 30, 25), steady(40), steady(40)])
    if a_rises:
        times[:26] = np.concatenate([np.linspace(0, 23, 6), np.linspace(23.5, 30, 20)])
    alike = np.full((5, 5), -1.0) + np.diag([4.0] * 5)
    alike[:3, :3] = [[3.0, 1.5, 1.5], [1.5, 3.0, 2.0], [1.5, 2.0, 3.0]]
    a = alike[topic][:, topic] + rng.normal(0, 0.3, (len(topic), len(topic)))
    a = np.maximum(a, a.T)
    np.fill_diagonal(a, np.inf)
    labels = np.array([0, 0, 0, 1, 2])[topic]  # A, B and C share cluster 0
    plain = find_trends(times, labels, 7.0, 1.0, now=30.0)
    assert [t.cluster for t in plain.trends if t.direction == "rising"] == [0]
    report, split, parts = trends_with_groups(times, labels, 7.0, 1.0, 30.0, 3, lambda rows: a[rows])
    rising = [t.cluster for t in report.trends if t.direction == "rising"]
    if a_rises:
        assert parts == [] and rising == [0] and (split == labels).all()
        return
    # cut in turn: B + C out of the cluster, then C out of B + C (then C itself: the cut finds no topic left and
    # leaves 7 of its uploads behind, not rising); the one rising trend holds C's uploads only
    assert [p.within for p in parts][:2] == [[0], [3]]
    assert sorted(parts[0].rows.tolist()) == np.flatnonzero((topic == 1) | (topic == 2)).tolist()
    assert sorted(parts[1].rows.tolist()) == np.flatnonzero(topic == 2).tolist()
    assert len(rising) == 1 and rising[0] >= 3 and (topic[split == rising[0]] == 2).sum() >= 2 / 3 * 25
    assert (topic[split == rising[0]] == 2).all()
