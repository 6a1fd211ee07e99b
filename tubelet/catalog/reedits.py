"""The re-edits creators make of other people's videos, as ffmpeg filter graphs: what copy detection must see through.

Each family comes at two strengths (the benchmark and the tests use both). Geometry: crop/zoom keeps 92 % or
80 % of the picture (the strong one off-centre) and scales back; captions burn text in (the strong one in the
black bars of a square letterbox); re-compression goes to 240p at a low bitrate; mirror flips left–right; speed
plays 1.25× or 0.75× (`speed` of the Edit: output seconds = input seconds / speed); 9:16 puts the 16:9 picture
over a blurred, zoomed copy of itself; combinations chain several. Excerpts and inserts are cut and spliced by
the caller (`render`'s span, `concat`).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tubelet.errors import TubeletError

CAPTION = "drawtext=text='{text}':fontcolor=white:fontsize=h/12:borderw=2:x=(w-text_w)/2:y=h-2*text_h"


@dataclass(frozen=True)
class Edit:
    """One re-edit: a family, a strength, the ffmpeg video filter graph, and its speed (output s = input s / speed)."""

    family: str
    strength: str  # "mild" or "strong"
    vf: str
    speed: float = 1.0

    @property
    def name(self) -> str:
        return f"{self.family}-{self.strength}"

    @property
    def key(self) -> str:
        """The name and a digest of the filter graph: changes when the edit does."""
        return f"{self.name}-{hashlib.sha256(f'{self.vf}|{self.speed}'.encode()).hexdigest()[:8]}"


def _vertical(extra: str = "") -> str:
    """16:9 → 9:16 (360×640): the picture scaled to the width over a blurred copy of itself zoomed to fill."""
    return ("split[a][b];[a]scale=360:640:force_original_aspect_ratio=increase,crop=360:640,boxblur=20:2[bg];"
            f"[b]scale=360:-2{extra}[fg];[bg][fg]overlay=(W-w)/2:(H-h)/2")


EDITS: tuple[Edit, ...] = (
    Edit("crop", "mild", "crop=iw*0.92:ih*0.92,scale=trunc(iw/0.92/2)*2:trunc(ih/0.92/2)*2"),
    Edit("crop", "strong", "crop=iw*0.8:ih*0.8:iw*0.15:ih*0.05,scale=trunc(iw/0.8/2)*2:trunc(ih/0.8/2)*2"),
    Edit("grade", "mild", "eq=contrast=1.15:brightness=0.04:saturation=1.3"),
    Edit("grade", "strong", "hue=h=35:s=1.6,eq=contrast=1.35:gamma=0.8:brightness=-0.05,colorbalance=rs=0.2:bs=-0.2"),
    Edit("caption", "mild", CAPTION.format(text="you will not believe this")),
    Edit("caption", "strong", "pad=iw:iw:0:(oh-ih)/2:black," + CAPTION.format(text="WAIT FOR IT part 2")
         + ",drawtext=text='@somebody':fontcolor=yellow:fontsize=h/16:x=10:y=10"),
    Edit("compress", "mild", "scale=-2:240"),
    Edit("compress", "strong", "scale=-2:240,fps=12,noise=alls=12:allf=t"),
    Edit("mirror", "mild", "hflip"),
    Edit("mirror", "strong", "hflip,scale=-2:360,eq=saturation=1.2"),
    Edit("speed", "mild", "setpts=PTS/1.25", 1.25),
    Edit("speed", "strong", "setpts=PTS/0.75", 0.75),
    Edit("vertical", "mild", _vertical()),
    Edit("vertical", "strong", _vertical(",eq=contrast=1.1") + "," + CAPTION.format(text="follow for more")),
    Edit("combo", "mild", "hflip,crop=iw*0.9:ih*0.9,scale=trunc(iw/0.9/2)*2:trunc(ih/0.9/2)*2,"
         "eq=saturation=1.4:contrast=1.1", 1.0),
    Edit("combo", "strong", "setpts=PTS/1.5," + _vertical(",hflip") + ",scale=-2:240,"
         + CAPTION.format(text="so satisfying"), 1.5),
)
FAMILIES = tuple(dict.fromkeys(e.family for e in EDITS))
CRF = {"compress": 36}  # the re-compression family goes to a low bitrate; everything else a typical upload


def ffmpeg() -> str:
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise TubeletError("ffmpeg is not installed; it makes the re-edits")
    return exe


def _ffmpeg(args: list[str], dst: Path, what: str) -> Path:
    """Run ffmpeg writing H.264 to a temp name beside `dst`, then rename it onto `dst`."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp.mp4")
    done = subprocess.run([ffmpeg(), "-v", "error", "-y", *args, "-an", "-c:v", "libx264", "-preset", "veryfast",
                           "-pix_fmt", "yuv420p", str(tmp)], capture_output=True, text=True)
    if done.returncode:
        tmp.unlink(missing_ok=True)
        raise TubeletError(f"ffmpeg could not make {dst.name} from {what}: {done.stderr.strip().splitlines()[-1:]}")
    tmp.replace(dst)
    return dst


def render(src: str | Path, dst: str | Path, edit: Edit | None = None, start_s: float = 0.0,
           end_s: float | None = None) -> Path:
    """Write [start_s, end_s) of `src` (source seconds) with `edit` applied as an H.264 file at `dst`."""
    cut = ["-ss", f"{start_s:.3f}"] + (["-t", f"{end_s - start_s:.3f}"] if end_s is not None else [])
    vf = "scale=trunc(iw/2)*2:trunc(ih/2)*2" + (f",{edit.vf}" if edit else "")
    crf = CRF.get(edit.family, 23) if edit else 23
    return _ffmpeg([*cut, "-i", str(src), "-filter_complex", vf, "-crf", str(crf)], Path(dst), str(src))


def concat(parts: list[Path], dst: str | Path, size: tuple[int, int] = (480, 270)) -> Path:
    """The files one after the other, each scaled and padded to `size` (W, H), as one H.264 file."""
    w, h = size
    inputs = [a for p in parts for a in ("-i", str(p))]
    scaled = "".join(f"[{i}:v]scale={w}:{h}:force_original_aspect_ratio=decrease,pad={w}:{h}:(ow-iw)/2:(oh-ih)/2,"
                     f"setsar=1,fps=25[v{i}];" for i in range(len(parts)))
    graph = scaled + "".join(f"[v{i}]" for i in range(len(parts))) + f"concat=n={len(parts)}:v=1:a=0[out]"
    return _ffmpeg([*inputs, "-filter_complex", graph, "-map", "[out]", "-crf", "23"], Path(dst),
                   ", ".join(p.name for p in parts))
