"""`tubelet probe` end to end on real clips from ../shared/data/videos (counts from SOURCES.md)."""

import json
import subprocess
import sys

import pytest
from conftest import HAVE_SHARED, SHARED_VIDEOS

pytestmark = pytest.mark.skipif(not HAVE_SHARED, reason="these files' quirks (AVI, SAR, sparse timestamps) are only "
                                                       "in ../shared/data/videos")


@pytest.mark.parametrize("name,frames,display", [
    ("eye_makeup_ucf101.avi", 164, (320, 240)),   # AVI, packed B-frames
    ("arm_wrestling.mp4", 280, (427, 256)),        # SAR 64/51: display width 340·64/51
    ("tree_wind_cinepak.avi", 68, (320, 240)),     # sparse timestamps, header says 15 fps
])
def test_probe_real_clip(name: str, frames: int, display: tuple[int, int]) -> None:
    cmd = [sys.executable, "-m", "tubelet.cli", "probe", str(SHARED_VIDEOS / name), "--exact", "--json"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    info = json.loads(p.stdout)
    assert info["num_frames"] == frames
    assert (info["width"], info["height"]) == display
    assert info["duration_s"] > 0
