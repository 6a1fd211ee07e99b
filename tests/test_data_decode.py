"""Decoding: exact frames and times against an independent full decode, and edge-case files."""

from __future__ import annotations

import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from conftest import HAVE_SHARED, SHARED_VIDEOS, VIDEOS, clip

import tubelet
from tubelet.data import probe, read_clip, read_clips, read_frames_at
from tubelet.errors import VideoError

ALL = sorted(p for p in VIDEOS.glob("*") if p.suffix != ".md")  # the shared set, or the bundled clips
# the quirky ones (SOURCES.md): packed B-frames, scrambled pts, sparse cinepak, VFR webm, 4:4:4 needing
# decoder priming after a seek, SAR, theora/ogg, shorter than a window, portrait
QUIRKY = ["eye_makeup_ucf101.avi", "hand_rotating_box.mp4", "tree_wind_cinepak.avi", "mixed_content_cuts.webm",
          "cockatoo_closeup.mp4", "arm_wrestling.mp4", "bbb_theora_lowres.ogv", "houseplant_static_short.mp4",
          "making_cake_vertical_shaky.mp4"]
needs_videos = pytest.mark.skipif(not HAVE_SHARED, reason="the quirky files are only in ../shared/data/videos")


def full_decode(path: Path) -> tuple[list[np.ndarray], list[float]]:
    """Every frame at stored size with plain PyAV, and the sorted pts as times (output order = display order)."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        frames, pts = [], []
        for f in c.decode(s):
            frames.append(f.to_ndarray(format="rgb24"))
            pts.append(f.pts)
        start = s.start_time or 0
        return frames, [float((p - start) * s.time_base) for p in sorted(pts)]


def expected_window(n: int, start: int, num_frames: int = 16, stride: int = 4) -> list[int]:
    """Indices a window should give: moved back to end on the last frame, clamped for short videos."""
    span = (num_frames - 1) * stride + 1
    if start + span > n:
        start = max(0, n - span)
    return [min(start + k * stride, n - 1) for k in range(num_frames)]


def check_against_full_decode(path: Path) -> None:
    frames, times = full_decode(path)
    n = len(frames)
    h, w = frames[0].shape[:2]
    for start in sorted({0, n // 3, max(0, n - 70), n - 3}):
        clip, ts = read_clip(path, 16, 4, start_s=times[start], size=(h, w))  # stored size: no scaling
        want = expected_window(n, start)
        assert clip.shape == (16, h, w, 3) and clip.dtype == torch.uint8
        np.testing.assert_allclose(ts.numpy(), [times[i] for i in want], atol=1e-6, err_msg=f"{path.name}@{start}")
        for k, i in enumerate(want):
            assert np.array_equal(clip[k].numpy(), frames[i]), f"{path.name}: window@{start} frame {k} != frame {i}"


@needs_videos
@pytest.mark.parametrize("name", QUIRKY)
def test_quirky_clips_match_full_decode(name: str) -> None:
    check_against_full_decode(SHARED_VIDEOS / name)


@pytest.mark.slow
@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_every_real_clip_matches_full_decode(path: Path) -> None:
    check_against_full_decode(path)


@needs_videos
def test_display_geometry_sar_and_size() -> None:
    clip, _ = read_clip(SHARED_VIDEOS / "arm_wrestling.mp4", 4, 2, start_s=0)  # 340x256 stored, SAR 64:51
    assert clip.shape[1:3] == (256, round(340 * 64 / 51))
    info = probe(SHARED_VIDEOS / "arm_wrestling.mp4")
    assert (info.width, info.height, info.coded_width) == (427, 256, 340) and info.codec == "h264"
    small, _ = read_clip(SHARED_VIDEOS / "arm_wrestling.mp4", 4, 2, start_s=0, size=128)  # short side 128, aspect kept
    assert small.shape[1:3] == (128, round(427 * 128 / 256))


@needs_videos
def test_default_start_centres_and_exports() -> None:
    path = SHARED_VIDEOS / "bottles_static_table.mp4"
    _, ts = tubelet.read_clip(path)
    info = tubelet.probe(path)
    middle = (ts[0] + ts[-1]) / 2
    assert abs(middle - info.duration_s / 2) < 0.1


@needs_videos
def test_time_based_and_multi_clip_sampling() -> None:
    path = SHARED_VIDEOS / "mixed_content_cuts.webm"  # VFR: 24/25/30 fps segments
    frames, times = full_decode(path)
    wanted = [0.0, 0.5, 3.33, 7.01, 14.9, 100.0]
    clip, ts = read_frames_at(path, wanted, size=frames[0].shape[:2])
    for k, t in enumerate(wanted):
        i = max(j for j, tj in enumerate(times) if tj <= t + 1e-4)  # the frame on screen at t
        assert ts[k] == pytest.approx(times[i]) and np.array_equal(clip[k].numpy(), frames[i])
    _, ts = read_clip(path, 8, start_s=2.0, fps=4.0)
    assert torch.all(ts <= torch.arange(8) / 4 + 2.0 + 1e-4) and torch.all(ts > torch.arange(8) / 4 + 2.0 - 0.05)
    clips, stamps = read_clips(path, [0.0, 5.0, 10.0], 8, 2, size=64)
    assert clips.shape[:2] == (3, 8) and stamps[1, 0] >= 5.0 - 1e-6 and stamps[2, 0] >= 10.0 - 1e-6


@needs_videos
@pytest.mark.parametrize("name", ["two_people_indoor_1080p.mp4", "cockatoo_closeup.mp4", "arm_wrestling.mp4"])
def test_scaled_frames_match_an_antialiased_resize(name: str) -> None:
    """size= scales in YUV before converting (yuv420p, yuv444p, SAR): the result stays within 2 grey levels on
    average of the full-size RGB frame resized with antialiasing in float."""
    path = SHARED_VIDEOS / name
    full, _ = read_clip(path, 2, 1, start_s=0)  # [2, H, W, 3] display size
    small, _ = read_clip(path, 2, 1, start_s=0, size=160)
    ref = torch.nn.functional.interpolate(full.permute(0, 3, 1, 2).float(), size=small.shape[1:3], mode="bilinear",
                                          antialias=True).permute(0, 2, 3, 1)
    assert (small.float() - ref).abs().mean() < 2.0


@needs_videos
def test_clips_decoded_in_a_worker_arrive_intact() -> None:
    """A clip decoded in a DataLoader worker (converted on the worker's own helper thread) reaches the main process
    with the same pixels and times as one decoded here."""
    path = clip("tennis_practice.mp4")
    here, ts = read_clip(path, 8, 4, start_s=1.0, size=96)

    class One(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return 1

        def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
            return read_clip(path, 8, 4, start_s=1.0, size=96, threads=1)

    loader = torch.utils.data.DataLoader(One(), batch_size=None, num_workers=1)
    (there, ts_there), = list(loader)
    assert torch.equal(there, here) and torch.equal(ts_there, ts)


# --- generated edge cases ---------------------------------------------------------------------------------------

def write(path: Path, frames: np.ndarray, *, codec: str = "libx264", pix_fmt: str = "yuv420p",
          pts_ms: list[int] | None = None, rotation: int = 0, sar: Fraction | None = None) -> Path:
    """Encode uint8 RGB frames; pts_ms gives variable timing; rotation is the display matrix (CCW degrees)."""
    with av.open(str(path), "w") as out:
        s = out.add_stream(codec, rate=25)
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        if pts_ms is not None:
            s.time_base = s.codec_context.time_base = Fraction(1, 1000)
        if sar is not None:
            s.codec_context.sample_aspect_ratio = sar
        if rotation:
            s.set_display_rotation(rotation)
        for i, f in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(f, format="rgb24")
            if pts_ms is not None:
                frame.pts, frame.time_base = pts_ms[i], Fraction(1, 1000)
            out.mux(s.encode(frame))
        out.mux(s.encode())
    return path


def numbered(n: int, h: int = 64, w: int = 96) -> np.ndarray:
    """Frame i is flat grey 10 + 8·i (identifiable after lossy coding) with a white top-left corner."""
    frames = np.repeat((10 + 8 * np.arange(n, dtype=np.uint8))[:, None, None, None], h * w * 3, 1).reshape(n, h, w, 3)
    frames[:, : h // 4, : w // 4] = 255
    return frames


def frame_ids(clip: torch.Tensor) -> list[int]:
    """Read back the grey level of numbered() frames (bottom-right corner, away from the marker)."""
    return [round((float(f[-4:, -4:].float().mean()) - 10) / 8) for f in clip]


def test_variable_frame_rate_gives_true_timestamps(tmp_path: Path) -> None:
    pts = [0, 40, 80, 200, 210, 220, 230, 600, 640, 1000, 1040, 1080]
    path = write(tmp_path / "vfr.mp4", numbered(len(pts)), pts_ms=pts)
    clip, ts = read_clip(path, 4, 2, start_s=0.1)  # first frame at/after 0.1 s is index 3 (0.2 s)
    assert frame_ids(clip) == [3, 5, 7, 9]
    np.testing.assert_allclose(ts.numpy(), [0.2, 0.22, 0.6, 1.0], atol=1e-6)
    clip, ts = read_frames_at(path, [0.5, 0.61, 2.0])
    assert frame_ids(clip) == [6, 7, 11]


def test_rotation_metadata_is_applied(tmp_path: Path) -> None:
    frames = numbered(3, 48, 80)  # landscape stored, white marker top-left
    path = write(tmp_path / "portrait.mp4", frames, rotation=-90)  # phone-style: display rotated 90° clockwise
    clip, _ = read_clip(path, 2, 1, start_s=0)
    assert clip.shape[1:3] == (80, 48)  # portrait on display
    assert clip[0, :10, -10:].float().mean() > 200  # marker now top-right, as a player shows it
    info = probe(path)
    assert (info.width, info.height, info.rotation) == (48, 80, 90)
    if shutil.which("ffmpeg"):  # independent reference: ffmpeg's autorotate
        raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-frames:v", "1", "-f", "rawvideo",
                              "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
        ref = np.frombuffer(raw, np.uint8).reshape(80, 48, 3)
        assert np.abs(ref.astype(int) - clip[0].numpy().astype(int)).mean() < 3


@pytest.mark.parametrize("codec,pix_fmt,h,w", [
    ("libx264", "yuv444p", 61, 97),  # odd size, 4:4:4
    ("ffv1", "gray", 40, 64),
    ("ffv1", "yuv420p10le", 40, 64),  # 10-bit
    ("libx264", "yuv420p10le", 48, 64),
])
def test_pixel_formats_come_out_rgb_uint8(tmp_path: Path, codec: str, pix_fmt: str, h: int, w: int) -> None:
    path = write(tmp_path / f"{codec}_{pix_fmt}.mkv", numbered(6, h, w), codec=codec, pix_fmt=pix_fmt)
    clip, _ = read_clip(path, 3, 2, start_s=0)
    assert clip.dtype == torch.uint8 and clip.shape == (3, h, w, 3)
    assert frame_ids(clip) == [0, 2, 4]
    assert clip[0, :4, :4].float().mean() > 230


def test_sar_scales_width(tmp_path: Path) -> None:
    path = write(tmp_path / "anamorphic.mp4", numbered(4, 64, 64), sar=Fraction(2, 1))
    clip, _ = read_clip(path, 2, 1, start_s=0)
    assert clip.shape[1:3] == (64, 128)


def test_one_frame_video_repeats_its_frame(tmp_path: Path) -> None:
    path = write(tmp_path / "one.mp4", numbered(1))
    clip, ts = read_clip(path, 16, 4)
    assert clip.shape[0] == 16 and torch.equal(clip[0], clip[-1]) and torch.all(ts == ts[0])


def test_4k_frame(tmp_path: Path) -> None:
    path = write(tmp_path / "uhd.mp4", np.zeros((2, 2160, 3840, 3), np.uint8) + 77)
    clip, _ = read_clip(path, 2, 1, size=224)
    assert clip.shape == (2, 224, 398, 3) and abs(float(clip.float().mean()) - 77) < 3


def test_bad_files_give_one_line_errors(tmp_path: Path) -> None:
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "text.mp4").write_text("this is not a video\n")
    with av.open(str(tmp_path / "audio.m4a"), "w") as out:
        s = out.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        for _ in range(8):
            out.mux(s.encode(frame))
        out.mux(s.encode())
    cases = {"empty.mp4": "empty file", "text.mp4": "not a readable video", "audio.m4a": "audio only",
             "missing.mp4": "no such file"}
    for name, reason in cases.items():
        with pytest.raises(VideoError) as e:
            read_clip(tmp_path / name)
        message = str(e.value)
        assert message.startswith(str(tmp_path / name)) and reason in message and "\n" not in message
    assert not probe(tmp_path / "audio.m4a").has_video


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_truncated_files_give_clip_or_error(tmp_path: Path, suffix: str) -> None:
    data = write(tmp_path / f"whole{suffix}", numbered(40)).read_bytes()
    outcomes = set()
    for frac in (0.02, 0.5, 0.9):
        cut = tmp_path / f"cut{frac}{suffix}"
        cut.write_bytes(data[: int(len(data) * frac)])
        try:
            clip, _ = read_clip(cut, 8, 4, start_s=0.5)
        except VideoError as e:
            assert str(e).startswith(str(cut)) and "\n" not in str(e)
            outcomes.add("error")
        else:
            assert clip.shape[0] == 8
            outcomes.add("clip")
    # Matroska streams: a cut file still gives what it holds; MP4 keeps its index at the end: every cut errors
    assert outcomes == ({"error", "clip"} if suffix == ".mkv" else {"error"})


def test_bytes_source_and_window_past_end(tmp_path: Path) -> None:
    path = write(tmp_path / "n.mp4", numbered(30))
    clip, ts = read_clip(path.read_bytes(), 4, 4, start_s=1.5)  # past the end: moved back onto the last frames
    assert frame_ids(clip) == [17, 21, 25, 29]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_times_are_refused_not_hung_on(bad: float) -> None:
    clip = tubelet.data.decode.Path(tubelet.__file__).parent / "assets" / "clips"
    path = sorted(clip.glob("*.mp4"))[0]
    calls = [lambda: read_clip(path, 4, 2, start_s=bad), lambda: read_clips(path, [0.0, bad], 4, 2),
             lambda: read_frames_at(path, [0.5, bad]), lambda: read_clip(path, 4, fps=bad)]
    for call in calls:
        with pytest.raises(VideoError, match=r"(not a finite number of seconds|must be a finite positive)") as e:
            call()
        assert str(e.value).startswith(str(path)) and "\n" not in str(e.value)


@pytest.mark.timeout(120)
def test_a_start_past_the_end_is_reported() -> None:
    path = tubelet.data.decode.Path(tubelet.__file__).parent / "assets" / "clips" / "houseplant_static_short.mp4"
    for start in (60.0, 1e20):
        with pytest.raises(VideoError, match=r"is past the end of the video \(1\.\d\d s\)"):
            read_clip(path, 4, 2, start_s=start)
    with pytest.raises(VideoError, match="past any video's end"):
        read_frames_at(path, [0.0, 1e20])
    assert read_clip(path, 4, 2, start_s=1.1)[0].shape[0] == 4  # inside the last window: moved back to fit
