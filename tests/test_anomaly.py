"""Anomaly detection end to end on a real fixed-camera clip: `tubelet anomaly fit` on its first part, `score` on
later footage with an injected event (found, located within 1 s, of the right kind) and on a later stretch left as
it is (no event); a growing file reports its event before the file is finished; the model directory's contents."""

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from conftest import REAL_VIDEOS, needs_shared, run_cli

from tubelet.anomaly.calibrate import Calibration, too_few
from tubelet.anomaly.detectors import (
    MOTION,
    CellKNN,
    Cover,
    Defocus,
    Direction,
    Grain,
    Residual,
    Shift,
    Ticks,
    Tint,
    top_mean,
)
from tubelet.anomaly.features import LUMA, FeatureExtractor
from tubelet.anomaly.fit import calibration_warnings, fit_normal
from tubelet.anomaly.frames import open_reader, ticks
from tubelet.anomaly.normal import NormalModel
from tubelet.anomaly.score import Segment, SegmentScorer, score_source
from tubelet.anomaly.synthetic import _shift, extra_frames, inject, plan, read_frames, write_frames
from tubelet.errors import TubeletError

BUNDLED = Path(__file__).resolve().parents[1] / "tubelet" / "assets" / "clips"
RATE = 10.0


def scene() -> Path:
    """The long indoor CCTV clip of the team's videos, else the bundled parking lot."""
    cctv = REAL_VIDEOS / "people_indoor_cctv_long.mp4"
    return cctv if cctv.is_file() else BUNDLED / "parking_lot_overhead_static.mp4"


@pytest.fixture(scope="module")
def footage(tmp_path_factory) -> dict:
    """normal.mp4 (the first 60 %, at most 60 s), later.mp4 (a later 12 s, untouched), dark.mp4 and frozen.mp4
    (the same stretch with the lights dropping, or the picture frozen, from 4.0 to 7.0 s), all at 10 frames/s."""
    d = tmp_path_factory.mktemp("anomaly")
    frames = read_frames(scene(), RATE, 320)
    n = min(int(0.6 * len(frames)), int(60 * RATE))
    later = frames[n:n + int(12 * RATE)]
    write_frames(d / "normal.mp4", frames[:n], RATE)
    write_frames(d / "later.mp4", later, RATE)
    start, dur = int(min(4.0, 0.3 * len(later) / RATE) * RATE), int(min(3.0, 0.3 * len(later) / RATE) * RATE)
    dark = inject(later, "dark", len(later), start, dur, np.random.default_rng(0))
    write_frames(d / "dark.mp4", dark, RATE)
    write_frames(d / "frozen.mp4", inject(later, "frozen", len(later), start, dur, np.random.default_rng(0)), RATE)
    return {"dir": d, "event": (start / RATE, (start + dur) / RATE), "dark": dark, "later": later}


@pytest.fixture(scope="module")
def model_dir(footage) -> Path:
    out = footage["dir"] / "camera.normal"
    code = subprocess.run([sys.executable, "-m", "tubelet.cli", "anomaly", "fit", str(footage["dir"] / "normal.mp4"),
                           "--out", str(out), "--json"], capture_output=True, text=True)
    assert code.returncode == 0, code.stderr
    return out


def test_fit_writes_a_complete_model_dir(model_dir, footage):
    manifest = json.loads((model_dir / "anomaly.json").read_text())
    assert manifest["format"] == "tubelet-anomaly" and manifest["detectors"][:3] == ["frozen", "lighting", "shift"]
    assert manifest["normal"][0]["sha256"] and manifest["normal"][0]["duration_s"] > 5
    quantiles = manifest["calibration"]["normal_quantiles"]
    if not too_few(manifest["fit"]["segments"]):
        assert quantiles["p99"] == pytest.approx(1.0, abs=1e-3)  # 1.0 = normal p99
    else:  # too few segments to read a p99 off (the bundled clips): it is extrapolated above their largest
        assert quantiles["max"] < 1.0
    assert {p.name for p in model_dir.iterdir()} == {"anomaly.json", "detectors.safetensors"}  # no pickle, no temp
    assert not list(model_dir.parent.glob(".camera.normal*"))
    normal = NormalModel.load(model_dir)
    assert normal.names == manifest["detectors"] and normal.calibration.combined_p99 > 0


@needs_shared("a minute of one fixed camera (people_indoor_cctv_long.mp4); the bundled clips are ≤ 10 s")
def test_score_finds_and_locates_an_injected_event(model_dir, footage, monkeypatch, capsys):
    d = footage["dir"]
    code, out, err = run_cli(monkeypatch, capsys, "anomaly", "score", d / "dark.mp4", d / "later.mp4",
                             d / "frozen.mp4", "--normal", model_dir, "--out", d / "report", "--json")
    assert code == 0, err
    doc = json.loads(out)
    dark, later, frozen = doc["videos"]
    for v in (dark, later, frozen):  # segments cover the whole video, in order, without gaps
        segs = v["segments"]
        assert segs[0]["start_s"] == 0 and abs(segs[-1]["end_s"] - v["duration_s"]) < 1e-6
        assert all(abs(a["end_s"] - b["start_s"]) < 1e-6 for a, b in zip(segs, segs[1:], strict=False))
        assert Path(v["timeline"]).is_file()
    a, b = footage["event"]
    hits = [e for e in dark["events"] if e["start_s"] < b and e["end_s"] > a]
    assert len(hits) == 1, dark["events"]
    assert abs(hits[0]["start_s"] - a) <= 1.0 and abs(hits[0]["end_s"] - b) <= 1.0, (hits, a, b)
    assert hits[0]["kind"] == "lighting/tamper" and hits[0]["score"] >= doc["threshold"]
    # a frozen picture of this still room scores near its normal p99 (the room is nearly still itself), but the
    # frozen alarm makes it an event (the encoder refines a repeated frame in pulses: all but one tick must be still)
    assert [e["kind"] for e in frozen["events"]] == ["frozen picture"], frozen["events"]
    assert 0 <= frozen["events"][0]["start_s"] - a <= 1.0 and abs(frozen["events"][0]["end_s"] - b) <= 1.0
    assert later["events"] == [], later["events"]  # the same stretch without the event: nothing
    assert json.loads((d / "report" / "anomaly.json").read_text()) == doc
    assert "started" in err  # events as they happen go to stderr in --json mode


def test_score_reports_a_bad_file_and_goes_on(model_dir, footage, monkeypatch, capsys, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video at all" * 100)
    code, out, err = run_cli(monkeypatch, capsys, "anomaly", "score", bad, footage["dir"] / "later.mp4",
                             "--normal", model_dir, "--out", tmp_path / "r", "--json")
    assert code == 1 and "broken.mp4" in err and "error:" in err
    assert [Path(v["path"]).name for v in json.loads(out)["videos"]] == ["later.mp4"]
    code, _, err = run_cli(monkeypatch, capsys, "anomaly", "score", footage["dir"] / "later.mp4", "--normal",
                           tmp_path, "--out", tmp_path / "r")
    assert code == 1 and "not an anomaly model directory" in err
    code, _, err = run_cli(monkeypatch, capsys, "anomaly", "score", footage["dir"] / "later.mp4", "--normal",
                           model_dir, "--threshold", "nan")
    assert code == 1 and "--threshold" in err
    code, _, err = run_cli(monkeypatch, capsys, "anomaly", "fit", footage["dir"] / "normal.mp4", "--out", bad)
    assert code == 1 and "not an anomaly model directory" in err and bad.read_bytes().startswith(b"not a video")


@needs_shared("a minute of one fixed camera (people_indoor_cctv_long.mp4); the bundled clips are ≤ 10 s")
def test_growing_file_reports_the_event_before_it_ends(model_dir, footage, tmp_path):
    """A recorder appends MPEG-TS to a file; `score --follow` prints the event while the file is still growing."""
    full = tmp_path / "full.ts"
    frames = np.concatenate([footage["dark"], footage["later"], footage["later"][::-1]])
    write_frames(full, frames, RATE, container="mpegts")
    data = full.read_bytes()
    seconds = len(frames) / RATE
    growing = tmp_path / "camera.ts"
    growing.write_bytes(b"")
    finished = threading.Event()

    def record() -> None:  # in real time, half a second of video at a time
        with open(growing, "ab") as f:
            chunk = int(len(data) / seconds / 2) + 1
            for i in range(0, len(data), chunk):
                f.write(data[i:i + chunk])
                f.flush()
                time.sleep(0.5)
        finished.set()

    proc = subprocess.Popen([sys.executable, "-m", "tubelet.cli", "anomaly", "score", str(growing), "--normal",
                             str(model_dir), "--follow", "--idle", "3", "--out", str(tmp_path / "r")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    writer = threading.Thread(target=record)
    writer.start()
    early = None
    for line in proc.stdout:
        if "lighting/tamper started" in line and early is None:
            early = not finished.is_set()
    proc.wait(timeout=120)
    writer.join()
    assert proc.returncode == 0, proc.stderr.read()
    assert early is True, "the event was reported only after the file was complete"


@pytest.mark.slow
@needs_shared("the MAE detectors calibrated on the bundled clips' 6 s of normal footage (12 segments) read the "
              "bundled parking lot's later exposure dip, and a bundled still table's later stretch, as new")
def test_default_model_adapts_and_scores(footage, monkeypatch, capsys):
    """The MAE detectors (vit_tiny adapted to the camera, briefly here) join the frame detectors end to end."""
    d = footage["dir"]
    code, out, err = run_cli(monkeypatch, capsys, "anomaly", "fit", d / "normal.mp4", "--out", d / "mae.normal",
                             "--model", "vit_tiny", "--adapt-steps", "5", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["detectors"][-2:] == ["mae_reconstruction", "mae_embedding"] and summary["adapt_steps"] == 5
    assert (d / "mae.normal" / "mae" / "model.safetensors").is_file()
    code, out, err = run_cli(monkeypatch, capsys, "anomaly", "score", d / "dark.mp4", d / "later.mp4", "--normal",
                             d / "mae.normal", "--out", d / "mae.report", "--json")
    assert code == 0, err
    a, b = footage["event"]
    dark, later = json.loads(out)["videos"]
    events = dark["events"]
    assert any(abs(e["start_s"] - a) <= 1.0 and abs(e["end_s"] - b) <= 1.0 for e in events), events
    assert later["events"] == [], later["events"]  # the same stretch without the event: nothing


def test_shift_guard_measures_a_knock_on_textureless_asphalt_and_ignores_exposure():
    """The bundled parking lot (grey asphalt, a few painted lines, auto-exposure, a white car, a mast that sways by a
    pixel): the camera-moved guard reports a knock as its size in % of the short side, and for the same footage in
    place or darkened at most the sway, under its smallest scale."""
    with open_reader(BUNDLED / "parking_lot_overhead_static.mp4") as reader:
        luma = np.stack([t.rgb for t in ticks(reader, lambda *_: (96, 176), RATE)]).astype(np.float32) @ LUMA / 255
    n = int(0.6 * len(luma))
    shift = Shift()
    normal = shift.fit(Ticks(None, None, None, None, np.zeros(n), luma[:n], np.arange(n), np.zeros(n, int)))
    later = luma[n:]
    assert np.percentile(normal, 90) == 0
    knocked = np.array([shift._raw(y) for y in _shift(later[..., None], 5, -7)[..., 0]])
    assert np.median(knocked) == pytest.approx(100 * np.hypot(5, 7) / 96, abs=1.0)
    for same in (later, later * 0.55):  # in place; darker (the camera's exposure, lights)
        assert np.median([shift._raw(y) for y in same]) < Shift.floor


@needs_shared("40 s of a table where a hand now and then moves the bottles (bottles_static_table.mp4); the bundled "
              "10 s never rearranges them")
def test_shift_guard_measures_a_knock_where_things_in_the_scene_were_moved():
    """A camera on a table whose bottles a hand moves: in the later half the table no longer matches the normal
    reference picture at the bottles' edges (its most textured pixels). A knock is still reported as its size, and
    the footage in place is not reported at all. (Before the guard forgave a one-pixel miss, 8 of the 20 seconds
    read as not moved.)"""
    with open_reader(REAL_VIDEOS / "bottles_static_table.mp4") as reader:
        luma = np.stack([t.rgb for t in ticks(reader, lambda *_: (96, 176), RATE)]).astype(np.float32) @ LUMA / 255
    n = len(luma) // 2
    shift = Shift()
    shift.fit(Ticks(None, None, None, None, np.zeros(n), luma[:n], np.arange(n), np.zeros(n, int)))
    later = luma[n::5]
    knocked = np.array([shift._raw(y) for y in _shift(later[..., None], 5, -7)[..., 0]])
    assert np.mean(np.abs(knocked - 100 * np.hypot(5, 7) / 96) <= 1.6) >= 0.9, knocked.round(1)
    assert max(shift._raw(y) for y in later) == 0


@needs_shared("a hand-held camera (baseball_batting_cage.mp4); the bundled clips are fixed cameras")
def test_shift_guard_reads_no_knock_from_a_hand_held_camera_s_chance_matches():
    """A hand-held camera: its normal footage's median picture is a blur, and against it a later frame matches by
    chance far off, a different way on each tick (16 % of ticks). A knocked camera stays put, so a segment counts a
    shift only where most of its ticks agree on it: no segment of the later half reads as moved farther than the
    guard's smallest scale (the hand does roll the camera by a pixel or so, as a knock's roll is read)."""
    with open_reader(REAL_VIDEOS / "baseball_batting_cage.mp4") as reader:
        luma = np.stack([t.rgb for t in ticks(reader, lambda *_: (96, 128), RATE)]).astype(np.float32) @ LUMA / 255
    n = len(luma) // 2
    shift = Shift()
    shift.fit(Ticks(None, None, None, None, np.zeros(n), luma[:n], np.arange(n), np.zeros(n, int)))
    raw = np.array([shift._raw(y) for y in luma[n:n + (len(luma) - n) // 5 * 5]])
    assert np.mean(raw > 0) > 0.1  # chance matches do happen: the agreement is what rules them out
    assert max(shift.reduce(segment) for segment in raw.reshape(-1, 5)) < Shift.floor
    knocked = np.array([shift._raw(y) for y in _shift(luma[:n:5][..., None], 5, -7)[..., 0]])
    assert shift.reduce(knocked[:5]) > Shift.floor  # the normal footage knocked: its ticks agree


def test_a_guard_adds_evidence_only_past_its_own_normal_p99():
    """Calibrated scores combine in quadrature, but a guard (gate 1) below its own p99 adds nothing; the gates
    travel with the model directory's calibration, and a calibration without them is refused; over time, a
    segment takes the larger of its own evidence and the root mean square with its neighbours'."""
    normal = np.random.default_rng(0).normal(size=500)
    cal = Calibration()
    z_motion = cal.fit_detector("cell_motion", normal, 1e-6)
    cal.fit_detector("frozen", normal, 1e-6, gate=1.0)
    assert np.percentile(z_motion, 99) == pytest.approx(1.0)
    z = np.array([[0.9, 0.0], [0.0, 0.9], [0.0, 1.2], [3.0, 4.0], [-2.0, -2.0]])
    np.testing.assert_allclose(cal.evidence(z), [0.9, 0.0, 1.2, 5.0, 0.0])
    # over time: a dip between two unusual segments is lifted, a lone spike keeps its height
    np.testing.assert_allclose(Calibration.steady(np.array([3.0, 0.0]), np.array([1.0, 3.0]), np.array([3.0, 0.0])),
                               [np.sqrt(19 / 3), 3.0])
    # beside a strong event (one neighbour), a segment rises at most to `most`; between two, as far as before
    np.testing.assert_allclose(Calibration.steady(np.array([20.0, 20.0, 20.0]), np.array([0.5, 0.5, 3.0]),
                                                  np.array([0.1, 20.0, 0.1]), most=2.0),
                               [2.0, np.sqrt(800.25 / 3), 3.0])
    back = Calibration.from_dict(json.loads(json.dumps(cal.to_dict())))
    assert back.gate == {"cell_motion": 0.0, "frozen": 1.0}
    with pytest.raises(TubeletError, match="gate"):
        Calibration.from_dict({k: v for k, v in cal.to_dict().items() if k != "gate"})


def test_plan_leaves_out_what_a_short_clip_cannot_hold():
    """A 5 s test part (a 10 s clip): a 4× fast stretch of 2 s needs 8 s of source, so it is left out; the others
    are planned inside the source and start inside their video; a long source holds every kind."""
    kinds = ["object", "fast", "reverse", "none"]
    short = plan(kinds, np.random.default_rng(0), 50, 10.0, 12.0, (2.0, 2.5), speed=4)
    assert [k for k, *_ in short] == ["object", "reverse", "none"]
    for kind, offset, length, start, dur in short:
        assert 0 < length and offset + length + extra_frames(kind, dur) <= 50 and start < length
    assert [k for k, *_ in plan(kinds, np.random.default_rng(0), 1000, 10.0, 12.0, (2.0, 2.5))] == kinds


@pytest.mark.slow
def test_benchmark_leaves_out_a_scene_too_short_to_learn_from():
    """A 1.2 s clip (0.6 s of normal footage) among the scenes is reported as left out, with the reason, and the
    benchmark goes on to print its tables instead of stopping with a traceback."""
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, str(root / "benchmarks" / "anomaly.py"), "--videos", str(BUNDLED),
                          "--scenes", "houseplant_static_short.mp4", "--donors", "dog_with_owner.mp4"],
                         capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "300"})
    assert out.returncode == 0, out.stderr
    assert "houseplant_static_short.mp4: left out (normal footage too short: 0.6 s" in out.stderr
    assert "anomaly benchmark" in out.stdout and "Traceback" not in out.stderr


@pytest.mark.parametrize("detector", [Direction, Residual, CellKNN])
def test_short_footage_tail_is_extrapolated_not_set_by_one_event(detector):
    """15 s of normal footage (30 segments) whose top 3 are one one-off move: the detectors scored against what
    the normal footage showed (direction, residual, the cell banks) extrapolate the p99 from the bulk's exponential
    tail (near the true ln 50 above the median), not that move's height; on long footage, on footage too short to
    have a tail (10 segments: its largest is extrapolated, see `few`), and without a tail count, it is read off
    the data as before — but for a `short` detector (the tamper guards) on footage without a tail, which is
    extrapolated as `few`."""
    short = np.r_[-np.log(1 - np.arange(27) / 29), [20.0, 21.0, 22.0]]  # exponential(1) at its 30 quantiles
    cal = Calibration()
    cal.fit_detector("plain", short, 1e-6)
    cal.fit_detector(detector.name or "cells", short, 1e-6, tail_count=detector.tail_count)
    assert cal.scale["plain"] > 15
    assert cal.scale[detector.name or "cells"] == pytest.approx(np.log(50), abs=0.15)  # exponential(1): p99 − median
    tiny = short[::3]  # 5 s of footage: its 5th largest of 10 is no tail: its largest is extrapolated (`few`)
    cal.fit_detector("tiny", tiny, 1e-6, tail_count=detector.tail_count)
    assert cal.scale["tiny"] == pytest.approx((tiny.max() - np.median(tiny)) * np.log(50) / np.log(5.5))
    cal.fit_detector("tiny plain", tiny, 1e-6)
    assert cal.scale["tiny plain"] == pytest.approx(np.percentile(tiny, 99) - np.median(tiny))
    cal.fit_detector("tiny short", tiny, 1e-6, short=True)  # a guard extrapolated only where there is no tail
    assert cal.scale["tiny short"] == pytest.approx((tiny.max() - np.median(tiny)) * np.log(50) / np.log(5.5))
    cal.fit_detector("short", short, 1e-6, short=True)
    assert cal.scale["short"] == cal.scale["plain"]
    long = np.random.default_rng(0).exponential(size=2000)
    cal.fit_detector("long", long, 1e-6, tail_count=detector.tail_count)
    assert cal.scale["long"] == pytest.approx(np.percentile(long, 99) - np.median(long))


@pytest.mark.parametrize("segments", [8, 16])
def test_too_few_normal_segments_set_a_threshold_fresh_normal_footage_rarely_passes(segments):
    """On 4 or 8 s of normal footage the combined 99th percentile read off the segments is about their largest,
    which fresh footage from the same camera passes 1 time in n + 1 (8 segments: 15 % of fresh segments past 1.0,
    a false event every few seconds at the threshold); extrapolated along the exponential tail from where the
    largest lies, fresh footage passes it about as rarely as a 99th percentile (median over 100 short fits ≤ 3 %);
    from 17 segments on it is read off the data as before."""
    rng = np.random.default_rng(0)
    cal = Calibration()
    cal.fit_detector("cells", rng.exponential(size=4000), 1e-6)
    fresh = cal.evidence(cal.z("cells", rng.exponential(size=(5000, 1))))
    fresh = Calibration.steady(np.r_[fresh[:1], fresh[:-1]], fresh, np.r_[fresh[1:], fresh[-1:]])
    passed = []
    for _ in range(100):
        cal.fit_combined(cal.z("cells", rng.exponential(size=(segments, 1))), np.arange(segments))
        passed.append(np.mean(fresh > cal.combined_p99))
    assert np.median(passed) <= 0.03
    z = cal.z("cells", rng.exponential(size=(17, 1)))
    cal.fit_combined(z, np.arange(17))
    e = cal.evidence(z)
    steady = Calibration.steady(np.r_[e[:1], e[:-1]], e, np.r_[e[1:], e[-1:]])
    assert cal.combined_p99 == pytest.approx(np.percentile(steady, 99))


def test_direction_scores_motion_against_a_lane_s_usual_way():
    """A 6×8-cell camera whose normal footage has a lane (row 2) going right and a square (row 4) crossed both
    ways: the lane played backwards scores far above its normal ticks, the square either way scores as normal,
    nothing moving scores 0 — and the normal ticks are scored by tables that did not see them (cross-fitting)."""
    n, grid = 400, (6, 8)
    rng = np.random.default_rng(0)
    motion = np.zeros((n, grid[0] * grid[1], 3), np.float32)
    lane, square = slice(16, 24), slice(32, 40)
    motion[:, lane, 1] = 2.0 + rng.normal(0, 0.3, (n, 8))
    motion[:, square, 1] = np.where(rng.random((n, 1)) < 0.5, -2.0, 2.0)
    luma = np.zeros((1, 48, 64), np.float32)  # 8-pixel cells: the grid comes from the frame size
    det = Direction()
    normal = det.fit(Ticks(None, motion, None, None, np.zeros(n), luma, np.zeros(1, int), np.arange(n) * 4 // n))
    assert normal.shape == (n,) and np.percentile(normal, 99) < -0.5  # the lane's way is the likely one

    def score(cells: slice, u: float) -> float:
        m = np.zeros(motion.shape[1:], np.float32)
        m[cells, 1] = u
        return det.tick(SimpleNamespace(motion=m))

    assert score(lane, -2.0) > 1.5 > normal.max()
    assert abs(score(square, -2.0) - score(square, 2.0)) < 0.1 and score(square, -2.0) < 0.5
    assert score(lane, 0.5) == 0.0  # slower than `moving`: nothing moves


@needs_shared("a minute of one fixed camera (people_indoor_cctv_long.mp4); the bundled clips are ≤ 10 s")
def test_residual_flags_a_jump_in_time(model_dir, footage):
    """The later stretch with 3 s cut out at 6 s, where people walk (footage that jumps in time, as a spliced or
    reversed stretch does where it starts): people are suddenly elsewhere, change no optical flow explains, so the
    residual detector passes its own normal p99 on the segment of the jump; on the untouched stretch it stays under."""
    later = footage["later"]
    write_frames(footage["dir"] / "jump.mp4", np.concatenate([later[:60], later[90:]]), RATE)
    normal = NormalModel.load(model_dir)
    col = normal.names.index("residual")
    jump = score_source(normal, footage["dir"] / "jump.mp4").z[:, col]
    plain = score_source(normal, footage["dir"] / "later.mp4").z[:, col]
    assert jump[12] > 1.0 > plain.max()
    assert jump[12] == jump.max()


@needs_shared("a minute of one fixed camera (people_indoor_cctv_long.mp4); the bundled clips are ≤ 10 s")
def test_footage_between_two_jumps_in_time_scores_as_spliced_in(model_dir, footage):
    """The later stretch with 6.0–9.0 s played backwards, where people walk: it starts and ends with a jump in time
    (the residual past its p99 on segments 12 and 18) and in between looks like normal footage; every segment in
    between takes the weaker jump's score, above most of the untouched stretch. (Before: segments 15–17 scored
    0.37–0.71, under the weaker jump's 0.77.)"""
    reverse = inject(footage["later"], "reverse", len(footage["later"]), 60, 30, None)
    write_frames(footage["dir"] / "reverse.mp4", reverse, RATE)
    normal = NormalModel.load(model_dir)
    res = score_source(normal, footage["dir"] / "reverse.mp4")
    plain = score_source(normal, footage["dir"] / "later.mp4")
    jumps = np.flatnonzero(res.z[:, normal.names.index("residual")] > 1.0)
    assert jumps.tolist() == [12, 18]
    inside = res.scores[13:18]
    assert inside.min() >= min(res.scores[12], res.scores[18]) > np.percentile(plain.scores, 75)
    assert np.array_equal(res.scores[:11], plain.scores[:11])  # before the first jump (and its neighbour) as before


@pytest.mark.parametrize("version", [5, 6, 7, 8, 9, 10])
def test_an_older_model_dir_still_loads_and_scores(model_dir, footage, tmp_path, version):
    """A model fitted before the residual detector (format version 5), the stall detector (6), the jump detector
    (7), the cover guard (8), the defocus guard (9) or the grain and tint guards (10) loads and scores without the
    detectors added since."""
    old = tmp_path / "old.normal"
    old.mkdir()
    for p in model_dir.iterdir():
        (old / p.name).write_bytes(p.read_bytes())
    manifest = json.loads((old / "anomaly.json").read_text())
    added = {"residual": 6, "stall": 7, "jump": 8, "cover": 9, "defocus": 10, "grain": 11, "tint": 11}
    assert manifest["version"] == 11
    assert manifest["detectors"][-len(added):] == list(added)
    dropped = [name for name in manifest["detectors"] if added.get(name, 0) > version]
    keep = len(manifest["detectors"]) - len(dropped)
    manifest.update(version=version, detectors=manifest["detectors"][:keep], kinds=manifest["kinds"][:keep])
    for key in ("median", "scale", "gate"):
        for name in dropped:
            manifest["calibration"][key].pop(name)
    (old / "anomaly.json").write_text(json.dumps(manifest))
    normal = NormalModel.load(old)
    assert not set(dropped) & set(normal.names) and len(normal.names) == len(manifest["detectors"])
    res = score_source(normal, footage["dir"] / "later.mp4")
    full = score_source(NormalModel.load(model_dir), footage["dir"] / "later.mp4")
    assert res.z.shape[1] == len(normal.names) == full.z.shape[1] - len(dropped) and np.isfinite(res.scores).all()
    assert np.array_equal(res.starts, full.starts) and res.ends[-1] == full.ends[-1] >= res.duration_s - 0.5
    manifest["version"] = 4
    (old / "anomaly.json").write_text(json.dumps(manifest))
    with pytest.raises(TubeletError, match="version-5/6/7/8/9/10/11"):
        NormalModel.load(old)


def test_tamper_events_defocus_or_cover_the_picture_for_the_event_only():
    """The benchmark's tampering kinds: `blur` halves the picture's fine detail (mean |Laplacian|) and keeps its
    brightness; `cover` darkens 40–70 % of the picture from one edge; frames outside the event are untouched."""
    frames = read_frames(BUNDLED / "bottles_static_table.mp4", RATE, 320)[:40]
    ev = slice(10, 30)
    grey = frames.mean(-1)

    def detail(x: np.ndarray) -> float:
        return float(np.mean([np.abs(cv2.Laplacian(f.mean(-1), cv2.CV_64F)).mean() for f in x]))

    blurred = inject(frames, "blur", 40, 10, 20, np.random.default_rng(0))
    assert detail(blurred[ev]) < 0.5 * detail(frames[ev])
    assert abs(blurred[ev].mean() - frames[ev].mean()) < 2.0
    for seed in range(4):
        covered = inject(frames, "cover", 40, 10, 20, np.random.default_rng(seed))
        dark = (covered[ev].mean(-1) < 45) & (grey[ev] >= 45)
        assert 0.35 < dark.mean(0).astype(bool).mean() <= 0.7
    for out in (blurred, covered):
        assert np.array_equal(out[:10], frames[:10]) and np.array_equal(out[30:], frames[30:])


@pytest.mark.parametrize(("clip", "share"), [("bottles_static_table.mp4", 1.0),
                                             ("parking_lot_overhead_static.mp4", 0.35)])
def test_shift_guard_measures_a_knocked_camera_s_roll(clip, share):
    """A camera knocked askew, turned about the lens by 3–8° and moved by a few pixels: the camera-moved guard reads
    the farthest a pixel moved, half the diagonal × the angle, which a move alone (phase correlation) does not follow.
    A table's bottles carry the fit on every segment; the parking lot's few painted lines on at least a third (a white
    car, the exposure). The fit reads a scene that changed since its normal footage (the later bottles were moved)
    short, by up to a third, and no segment reads much more than the roll."""
    with open_reader(BUNDLED / clip) as reader:
        luma = np.stack([t.rgb for t in ticks(reader, lambda *_: (96, 128), RATE)]).astype(np.float32) @ LUMA / 255
    n = int(0.6 * len(luma))
    shift = Shift()
    shift.fit(Ticks(None, None, None, None, np.zeros(n), luma[:n], np.arange(n), np.zeros(n, int)))
    later = luma[n:n + 40]
    for angle, (dy, dx) in ((3, (2, -1)), (5, (0, 0)), (8, (-2, 3))):
        m = cv2.getRotationMatrix2D((64, 48), angle, 1.0) + np.array([[0, 0, dx], [0, 0, dy]])
        turned = np.array([shift._raw(cv2.warpAffine(y, m, (128, 96), borderMode=cv2.BORDER_REPLICATE)) for y in later])
        segments = np.array([shift.reduce(ticks_) for ticks_ in turned.reshape(-1, 5)])
        corner = 100 * np.hypot(96, 128) / 2 * np.radians(angle) / 96
        assert np.mean((segments >= 0.6 * corner) & (segments <= 1.4 * corner)) >= share, (angle, segments.round(1))
        assert segments.max() <= 1.4 * corner
        assert shift._move(shift._gradient(cv2.warpAffine(later[0], m, (128, 96)))) < corner / 2


def test_grain_guard_reads_noise_over_the_picture_not_exposure_or_motion(tmp_path):
    """Noise of 12–25 grey levels over the bundled parking lot (H.264-encoded, as a camera records it): each tick's
    grain stands far over the normal footage's largest, while the footage as it is, fading to half its light
    (exposure) or with a car driving through stays under it; the cells' texture, averaged at the analysis size,
    barely moves."""
    frames = read_frames(BUNDLED / "parking_lot_overhead_static.mp4", RATE, 320)
    n = int(0.6 * len(frames))
    later = frames[n:]

    def grain(video: np.ndarray, name: str) -> np.ndarray:
        write_frames(tmp_path / name, video, RATE)
        with open_reader(tmp_path / name) as reader:
            fx = FeatureExtractor(8)
            return np.array([fx(t.rgb).grain for t in ticks(reader, lambda *_: (96, 176), RATE)])[1:]

    normal = Grain().fit(Ticks(None, None, None, grain(frames[:n], "normal.mp4"), None, None, None, None))
    noisy = grain(inject(later, "noise", len(later), 0, len(later), np.random.default_rng(0)), "noisy.mp4")
    faded = grain((later * np.linspace(1, 0.5, len(later))[:, None, None, None]).astype(np.uint8), "faded.mp4")
    plain = grain(later, "plain.mp4")
    assert noisy.min() > 2 * normal.max()
    assert faded.max() < normal.max() * 1.2 and np.percentile(plain, 99) < normal.max() * 1.2


@pytest.mark.parametrize(("guard", "kind", "clip"), [(Cover, "cover", "parking_lot_overhead_static.mp4"),
                                                     (Defocus, "blur", "parking_lot_overhead_static.mp4"),
                                                     (Tint, "grey", "bottles_static_table.mp4")])
def test_tamper_guards_read_the_lens_covered_or_defocused_not_exposure(guard, kind, clip):
    """The bundled parking lot (grey asphalt, auto-exposure swings, a white car driving through): a dark cover over
    half the picture splits the cells' brightness ratios (the cover guard), a defocused lens softens every cell's
    texture against its brightness (the defocus guard); the bundled table of bottles in black and white moves the
    picture's colour (the tint guard). Each guard reads the tampered footage above the same footage untouched on every
    tick, on most by 3× the normal footage's own spread (median to largest; a white car driving through the later
    footage moves the defocus guard's level), while the footage as it is or darkened as a whole (exposure, lights)
    stays under the normal footage's largest."""
    frames = read_frames(BUNDLED / clip, RATE, 320)
    n = int(0.6 * len(frames))
    fx = FeatureExtractor(8)
    size = (96, 176)

    def raw(video: np.ndarray) -> np.ndarray:
        feats = [fx(cv2.resize(f, size[::-1], interpolation=cv2.INTER_AREA)) for f in video]
        return np.array([detector.tick(f) for f in feats])

    detector = guard()
    feats = [fx(cv2.resize(f, size[::-1], interpolation=cv2.INTER_AREA)) for f in frames[:n]]
    app, bright = np.stack([f.appearance for f in feats]), np.array([f.brightness for f in feats])
    normal = detector.fit(Ticks(app, None, bright, None, np.zeros(n), np.zeros((1, *size)), None, np.zeros(n, int)))
    later = frames[n:]
    tampered = inject(later, kind, len(later), 0, len(later), np.random.default_rng(0))
    plain = raw(later)
    gap = raw(tampered) - plain
    assert gap.min() > 0 and np.median(gap) > 3 * (normal.max() - np.median(normal))
    for same in (plain, raw((later * 0.55).astype(np.uint8))):
        assert np.median(same) < normal.max()


def test_the_shortest_normal_footage_calibrates_every_detector(tmp_path):
    """4 s of normal footage (8 segments, the least `fit` takes): its first part lies wholly in the first second,
    before any cell has a second of change to compare, and the stall detector learns nothing from it rather than
    an infinite least; every calibration number is finite and so are the scores of later footage."""
    frames = read_frames(BUNDLED / "bottles_static_table.mp4", RATE, 320)
    write_frames(tmp_path / "normal.mp4", frames[:40], RATE)
    write_frames(tmp_path / "later.mp4", frames[40:70], RATE)
    normal = fit_normal([tmp_path / "normal.mp4"])
    cal = normal.calibration.to_dict()
    assert all(np.isfinite(v) for key in ("median", "scale") for v in cal[key].values())
    assert np.isfinite(cal["combined_p99"]) and np.isfinite(normal.detectors[normal.names.index("stall")].least).all()
    assert np.isfinite(score_source(normal, tmp_path / "later.mp4").scores).all()


@needs_shared("a camera on foliage in the wind (tree_wind_cinepak.avi); the bundled clips show none")
def test_stall_reports_part_of_the_foliage_stopping(tmp_path):
    """Foliage in the wind moves in every cell all the time. Where a rectangle of it keeps one frame for 2.5 s
    while the rest plays on (a stalled machine, water or foliage that stops), one "unusual motion" event is
    reported within 1 s of the stall's start and end, and the stall detector passes its own normal p99 on every
    segment from the stall's second second on (its window is the last second); the same stretch untouched gives
    no event and stays under that p99."""
    frames = read_frames(REAL_VIDEOS / "tree_wind_cinepak.avi", RATE, 320)
    later = frames[150:215]  # 15–21.5 s: after the 15 s of normal footage, before a hand enters the picture
    start, dur = 20, 25
    write_frames(tmp_path / "normal.mp4", frames[:150], RATE)
    write_frames(tmp_path / "later.mp4", later, RATE)
    write_frames(tmp_path / "stall.mp4", inject(later, "stall", len(later), start, dur, np.random.default_rng(0)),
                 RATE)
    normal = fit_normal([tmp_path / "normal.mp4"])
    col = normal.names.index("stall")
    plain, stall = score_source(normal, tmp_path / "later.mp4"), score_source(normal, tmp_path / "stall.mp4")
    assert plain.events == [] and plain.z[:, col].max() < 1.0
    [event] = stall.events
    assert event.kind == MOTION
    assert abs(event.start_s - start / RATE) <= 1.0 and abs(event.end_s - (start + dur) / RATE) <= 1.0
    inside = (stall.starts >= start / RATE) & (stall.ends <= (start + dur) / RATE)
    assert inside.sum() == 5 and stall.z[inside, col][2:].min() > 1.0  # the first second: its window still moved


def test_fit_warns_when_the_normal_footage_is_too_short_to_calibrate(tmp_path, monkeypatch, capsys):
    """6 s of normal footage (12 segments, under the 17 a 99th percentile is read off): `fit` says so in one line
    naming the file, its length and the reason, on stderr and in the summary; 20 s (40 segments) raises nothing."""
    frames = read_frames(BUNDLED / "parking_lot_overhead_static.mp4", RATE, 320)
    write_frames(tmp_path / "short.mp4", frames[:60], RATE)
    code, out, err = run_cli(monkeypatch, capsys, "anomaly", "fit", tmp_path / "short.mp4", "--out",
                             tmp_path / "short.normal", "--json")
    assert code == 0, err
    lines = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(lines) == 1 and "short.mp4 (6.0 s, 12 segments)" in lines[0] and "too short" in lines[0], err
    assert json.loads(out)["warnings"] == [lines[0].removeprefix("warning: ")]
    long_ = np.concatenate([frames, frames[::-1]] * 2)[:200]  # 20 s: the clip played back and forth
    write_frames(tmp_path / "long.mp4", long_, RATE)
    code, out, err = run_cli(monkeypatch, capsys, "anomaly", "fit", tmp_path / "long.mp4", "--out",
                             tmp_path / "long.normal", "--json")
    assert code == 0 and "warning" not in err and json.loads(out)["warnings"] == []
    # with the MAE, its held-out last quarter must hold 17 windows too (34 s of footage)
    mae = calibration_warnings("f.mp4 (20.0 s, 40 segments)", None, 10, 0.5)
    assert len(mae) == 1 and "MAE" in mae[0] and "10 windows" in mae[0] and "34 s" in mae[0]
    assert calibration_warnings("f.mp4", 68, 17, 0.5) == [] and len(calibration_warnings("f.mp4", 12, 3, 0.5)) == 2


def test_jump_stands_out_on_the_tick_of_a_splice_not_on_sustained_unexplained_change():
    """A smooth texture drifting a pixel a tick, a jump of 30 px on one tick, then fresh textures for six ticks
    (change no flow explains, tick after tick, as motion too fast to follow or an exposure swing leaves): the
    residual is higher on those than on the jump; the jump feature (reported a tick late) stands out on the jump
    alone."""
    rng = np.random.default_rng(0)

    def smooth(h: int, w: int) -> np.ndarray:
        return cv2.normalize(cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), np.uint8), (0, 0), 3), None, 0, 255,
                             cv2.NORM_MINMAX)

    texture = smooth(240, 320)
    frames = [texture[100 - t:196 - t, 100 - t:228 - t] for t in range(10)]
    frames += [texture[70 - t:166 - t, 70 - t:198 - t] for t in range(10, 16)]  # the jump at tick 10
    frames += [smooth(96, 128) for _ in range(6)] + [frames[15]] * 3  # ticks 16–21 fresh
    fx = FeatureExtractor(8)
    feats = [fx(np.ascontiguousarray(f)) for f in frames]
    residual = np.array([top_mean(f.residual, 20) for f in feats])
    jump = np.array([top_mean(f.jump, 20) for f in feats])
    assert residual[10] > 3 * residual[1:10].max() and residual[16:22].min() > residual[10]
    assert jump[11] == jump.max() and jump[17:23].max() < 0.6 * jump[11]  # tick 10's jump, read at tick 11


def test_a_jump_on_a_segment_s_last_tick_counts_in_that_segment(tmp_path):
    """The jump feature reports a tick late; its score is credited to the tick it is about, so a cut in time on the
    last tick of segment 4 (tick 24) lands in segment 4, and one on the next tick in segment 5 (read on the tick
    after, it spilled into the next segment: there the steady score lifted a segment past a reversed stretch)."""
    frames = read_frames(BUNDLED / "parking_lot_overhead_static.mp4", RATE, 320)
    write_frames(tmp_path / "normal.mp4", frames[:60], RATE)
    normal = fit_normal([tmp_path / "normal.mp4"])
    later = frames[40:]
    for cut, segment in ((24, 4), (25, 5)):
        write_frames(tmp_path / "cut.mp4", np.concatenate([later[:cut], later[cut + 20:]]), RATE)
        z = score_source(normal, tmp_path / "cut.mp4").z[:, normal.names.index("jump")]
        assert int(np.argmax(z)) == segment and z[segment] > 1.0 > np.delete(z, segment).max()
    # a jump is a moment: it does not lift its neighbours (lasting evidence does)
    p99, quiet, zero = normal.calibration.combined_p99, 0.1, np.zeros(len(normal.names))
    for lasting, lifted in ((0.0, quiet / p99), (6.0, np.sqrt((36 + 2 * quiet ** 2) / 3) / p99)):
        segs = [Segment(0.5 * i, 0.5 * i + 0.5, e, min(e, lasting), MOTION, zero)
                for i, e in enumerate([quiet, 6.0, quiet])]
        scored = SegmentScorer(normal)._steady(segs, final=True)
        assert scored[0].score == pytest.approx(lifted) and scored[2].score == pytest.approx(lifted)
