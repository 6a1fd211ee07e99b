"""Shared test helpers: which real clips the tests use, tiny model configs, the CLI run in-process, the stand-in
Hub.

Real clips come from ../shared/data/videos beside the repository when it is there, else from the clips bundled
in the package (tubelet/assets/clips); the test run's header says which. `clip(name)` gives a shared clip, or
without the shared set the bundled clip of that name or the bundled stand-in chosen for it.
"""

import atexit
import os
import shutil
import socket
import tempfile

# Before huggingface_hub is imported anywhere: every Hub request of the test session goes to a stand-in on
# 127.0.0.1 (`hub` fixture), never to the internet.
with socket.socket() as _s:
    _s.bind(("127.0.0.1", 0))
    HUB_PORT = _s.getsockname()[1]
os.environ["HF_ENDPOINT"] = f"http://127.0.0.1:{HUB_PORT}"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"

from fractions import Fraction  # noqa: E402
from pathlib import Path  # noqa: E402

import av  # noqa: E402
import cv2  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from hub_stub import StandInHub  # noqa: E402

from tubelet import ModelConfig, VideoMAE, preset  # noqa: E402

# OpenCV single-threaded in the test process: the CLI fuzz forks it, and OpenCV's worker pool does not survive a
# fork (once a test has run OpenCV multi-threaded, e.g. the anomaly features' optical flow, a forked `analyze` waits
# forever in cv2.setNumThreads). The suite passes either way.
cv2.setNumThreads(1)

SHARED_VIDEOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos"
BUNDLED_VIDEOS = Path(__file__).resolve().parents[1] / "tubelet" / "assets" / "clips"
# TUBELET_TEST_SHARED=0 runs the suite as a fresh machine without ../shared would (bundled clips only)
HAVE_SHARED = SHARED_VIDEOS.is_dir() and os.environ.get("TUBELET_TEST_SHARED", "1") != "0"
VIDEOS = SHARED_VIDEOS if HAVE_SHARED else BUNDLED_VIDEOS  # the real clip files, for tests over all of them
# bundled clips standing in for shared ones the tests name (similar content: people, motion, static scenes)
STAND_INS = {
    "arm_wrestling.mp4": "hand_rotating_box.mp4", "carphone_talking_head_qcif.mp4": "flower_timelapse.mp4",
    "eye_makeup_ucf101.avi": "kids_jumping_bedroom.mp4", "tennis_practice.mp4": "soccer_juggling.mp4",
    "cleaning_pool.mp4": "parking_lot_overhead_static.mp4", "basketball_gym.mp4": "highway_dashcam.mp4",
    "cat_lying_blanket.mp4": "cockatoo_closeup.mp4",
    "yoga_outdoor.mp4": "kids_jumping_bedroom.mp4", "child_talking_head.mp4": "bw_film_dialogue.mp4",
    "aquarium_fish_wide.mp4": "cockatoo_closeup.mp4",
    "pedestrians_plaza_surveillance.avi": "parking_lot_overhead_static.mp4",  # a fixed camera over people
}
# a shared clip no single bundled one stands in for, spliced from bundled pieces: 30 s with a cut every 6 s
SPLICED_STAND_INS = {
    "claymation_ad_cuts.webm": [(name, 0.0, 6.0) for name in ("highway_dashcam.mp4", "kids_jumping_bedroom.mp4",
                                                             "hand_rotating_box.mp4", "bottles_static_table.mp4",
                                                             "parking_lot_overhead_static.mp4")],
    "flower_timelapse.webm": [("dog_with_owner.mp4", 7.0, 9.6)],  # a video no other stand-in holds
}


def needs_shared(why: str) -> pytest.MarkDecorator:
    """Skip without the shared set a test whose figures depend on one shared clip's content (said in `why`)."""
    return pytest.mark.skipif(not HAVE_SHARED, reason=f"needs ../shared/data/videos: {why}")


def clip(name: str) -> Path:
    """The real clip `name`: from the shared set, else its bundled stand-in; skips the test when neither has it."""
    path = REAL_VIDEOS / name
    if path.exists():
        return path
    pytest.skip(f"{name}: only in the shared clips (../shared/data/videos is absent)")


def _which_clips() -> str:
    if HAVE_SHARED:
        count = sum(1 for p in SHARED_VIDEOS.iterdir() if p.suffix != ".md")
        return f"real clips: the shared set, {count} files in {SHARED_VIDEOS}"
    return (f"real clips: the bundled ones in {BUNDLED_VIDEOS} (../shared/data/videos is absent; "
            f"{len(STAND_INS) + len(SPLICED_STAND_INS)} shared names stand in by bundled clips, in {REAL_VIDEOS})")


def pytest_report_header(config: pytest.Config) -> str:
    return _which_clips()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    terminalreporter.write_line(_which_clips())  # also under -q, which hides the header


def small_config(**kw) -> ModelConfig:
    """A pretraining model small enough for exact comparisons: 4 frames of 32², patch 8, width 48, 2 + 2 blocks
    (the transformers parity tests build the same one on their side)."""
    base = dict(num_frames=4, image_size=32, patch_size=8, embed_dim=48, depth=2, num_heads=4, mlp_dim=96,
                decoder_dim=32, decoder_depth=2, decoder_heads=2, decoder_mlp_dim=64)
    return ModelConfig(**{**base, **kw})


def micro_model(image_size: int = 32, **kw) -> VideoMAE:
    """A seeded vit_tiny pretraining model with 2 encoder blocks and 1 decoder block on 4-frame clips."""
    torch.manual_seed(0)
    return VideoMAE(preset("vit_tiny", num_frames=4, image_size=image_size, depth=2, decoder_depth=1, **kw))


def run_cli(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    """The real entry point (tubelet.cli.main) in-process: (exit code, stdout, stderr)."""
    from tubelet.cli import main

    monkeypatch.setattr("sys.argv", ["tubelet", *map(str, args)])
    code = 0
    try:
        main()
    except SystemExit as e:
        code = e.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


def splice(pieces: list[tuple[Path, float, float]], dst: Path, fps: int = 25) -> None:
    """Re-encode the spans [start_s, end_s) of the sources one after the other (320×180 H.264 at `fps`, time
    from 0): each piece is round((end_s − start_s)·fps) frames, frame k showing the source frame on screen at
    start_s + k/fps (the last one past the source's end)."""
    with av.open(str(dst), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 320, 180, "yuv420p"
        n = 0

        def emit(frame: av.VideoFrame) -> None:
            nonlocal n
            f = frame.reformat(width=320, height=180, format="yuv420p")
            f.pts, f.time_base = n, Fraction(1, fps)
            n += 1
            for packet in stream.encode(f):
                out.mux(packet)

        for src, start_s, end_s in pieces:
            count, k, shown = round((end_s - start_s) * fps), 0, None
            with av.open(str(src)) as inp:
                for frame in inp.decode(video=0):
                    t = float(frame.pts * frame.time_base)
                    while shown is not None and k < count and start_s + k / fps < t:
                        emit(shown)
                        k += 1
                    if k == count:
                        break
                    shown = frame
                while k < count:
                    emit(shown)
                    k += 1
        for packet in stream.encode():
            out.mux(packet)


TRAIN_CLIPS = ["flower_timelapse.mp4", "bw_film_dialogue.mp4", "cockatoo_closeup.mp4", "dog_with_owner.mp4",
               "highway_dashcam.mp4", "soccer_juggling.mp4"]


@pytest.fixture
def videos(tmp_path) -> Path:
    """A folder of real clips to train on (links to the bundled TRAIN_CLIPS)."""
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in TRAIN_CLIPS:
        (folder / name).symlink_to(BUNDLED_VIDEOS / name)
    return folder


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """The stand-in Hub, running, with an empty Hugging Face cache of this test's own and offline mode off."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    server = StandInHub(HUB_PORT).start()
    yield server
    server.stop()


def unwritable_dir(tmp_path: Path) -> Path:
    """A directory in which creating anything fails: a read-only folder, or for root (whom file modes do not stop)
    a sysfs folder, which refuses new files to everyone."""
    if os.geteuid() != 0:
        d = tmp_path / "read-only"
        d.mkdir()
        d.chmod(0o555)
        return d
    d = Path("/sys/fs")
    try:
        (d / "tubelet-probe").touch()
    except OSError:
        return d
    pytest.skip("no unwritable directory on this machine")


def _stand_in_folder() -> Path:
    """A folder where every clip name the tests use resolves without the shared set: the bundled clips and, under
    the shared names, copies of their stand-ins and the spliced ones (files, not links: the catalog records the
    name it resolves), built once per session. The container is found from the content, whatever the suffix."""
    folder = Path(tempfile.mkdtemp(prefix="tubelet-test-clips-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    for path in BUNDLED_VIDEOS.iterdir():
        shutil.copyfile(path, folder / path.name)
    for name, stand_in in STAND_INS.items():
        shutil.copyfile(BUNDLED_VIDEOS / stand_in, folder / name)
    for name, pieces in SPLICED_STAND_INS.items():
        built = folder / f"{name}.mp4"
        splice([(BUNDLED_VIDEOS / src, start, end) for src, start, end in pieces], built)
        built.rename(folder / name)
    return folder


# every clip name the tests use: the shared set, else the bundled clips and their stand-ins
REAL_VIDEOS = SHARED_VIDEOS if HAVE_SHARED else _stand_in_folder()
