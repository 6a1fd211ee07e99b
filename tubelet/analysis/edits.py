"""Edits of real clips with known transitions, rendered by ffmpeg: what shot detection is measured and tested on.

An `Edit` is pieces of source clips joined by hard cuts or ffmpeg `xfade` transitions (cross-fades, fades through
black or white, wipes), optionally with a fade in from black at the start, or one effect over a single piece that
must *not* read as a transition (a whip pan, fast motion, camera shake, flashes, a step of the exposure).
`Edit.truth()` gives the transitions it holds, frame-exact: every piece is a whole number of frames at the edit's
rate, and an `xfade` of D frames at offset O blends frames [O, O + D).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tubelet.analysis.transitions import Transition
from tubelet.errors import TubeletError

# ffmpeg xfade names for each transition kind
XFADES = {"dissolve": ("fade", "dissolve"), "fade": ("fadeblack", "fadewhite"),
          "wipe": ("wipeleft", "wiperight", "wipeup", "wipedown", "wipetl", "wipebr")}
EFFECTS = ("whip", "fast", "shake", "flash")  # the benchmark's clips without a transition (and "exposure")


@dataclass(frozen=True)
class Piece:
    """`frames` frames of `src` from `start_s` (at 4× speed when the edit's effect is "fast")."""

    src: str
    start_s: float
    frames: int


@dataclass(frozen=True)
class Join:
    """How a piece follows the previous one: "cut", or an xfade transition of `frames` frames."""

    kind: str  # "cut" or a key of XFADES
    xfade: str = ""
    frames: int = 0


@dataclass
class Edit:
    name: str
    width: int
    height: int
    fps: int
    pieces: list[Piece]
    joins: list[Join] = field(default_factory=list)  # len(pieces) - 1
    fade_in: int = 0  # frames of fade in from black at the start
    effect: str = ""  # one of EFFECTS or "exposure", over a single piece
    effect_at: tuple[float, ...] = ()  # seconds: when the whip or the flashes happen; exposure: (seconds, gain)

    def truth(self) -> list[Transition]:
        """The transitions in the rendered edit, in time order (a cut spans the first frame of the new shot)."""
        f = self.fps
        out = [Transition("fade", 0.0, self.fade_in / f, "black")] if self.fade_in else []
        length = self.pieces[0].frames
        for join, piece in zip(self.joins, self.pieces[1:], strict=True):
            if join.kind == "cut":
                out.append(Transition("cut", length / f, length / f))
            else:
                start = length - join.frames
                out.append(Transition(join.kind, start / f, (start + join.frames) / f, join.xfade))
                length -= join.frames
            length += piece.frames
        return out

    @property
    def frames(self) -> int:
        return sum(p.frames for p in self.pieces) - sum(j.frames for j in self.joins)

    def _piece_filter(self, i: int, piece: Piece) -> str:
        w, h, f = self.width, self.height, self.fps
        speed = 4 if self.effect == "fast" else 1
        chain = [f"trim=start={piece.start_s:.3f}:duration={speed * piece.frames / f + 1:.3f}", "setpts=PTS-STARTPTS"]
        if speed != 1:
            chain.append(f"setpts=PTS/{speed}")
        chain.append(f"fps={f}")
        if self.effect in ("whip", "shake"):  # frame a part of a larger picture, and move the frame
            chain.append(f"scale={2 * w}:{2 * h}:force_original_aspect_ratio=increase,crop={2 * w}:{2 * h}")
            if self.effect == "whip":
                t0, dur = self.effect_at
                x = f"if(lt(t,{t0}),0,if(lt(t,{t0 + dur}),(t-{t0})/{dur}*{w},{w}))"
                chain += [f"crop={w}:{h}:x='{x}':y={h // 2}",
                          f"gblur=sigma=12:sigmaV=0.01:enable='between(t,{t0},{t0 + dur})'"]
            else:
                x = f"{w // 2}+{w // 10}*sin(17*t)+{w // 20}*sin(41*t+1)"
                y = f"{h // 2}+{h // 10}*sin(23*t+2)+{h // 20}*sin(37*t)"
                chain.append(f"crop={w}:{h}:x='{x}':y='{y}'")
        else:
            chain.append(f"scale={w}:{h}:force_original_aspect_ratio=increase,crop={w}:{h}")
        if self.effect == "flash":
            chain += [f"eq=brightness=0.6:enable='between(t,{t:.3f},{t + 1.5 / f:.3f})'" for t in self.effect_at]
        if self.effect == "exposure":  # the whole picture's luma times a gain from then on
            t, gain = self.effect_at
            chain.append(f"lutyuv=y='clip(val*{gain},0,255)':enable='gte(t,{t:.3f})'")
        if i == 0 and self.fade_in:
            chain.append(f"fade=t=in:st=0:d={self.fade_in / f:.4f}")
        chain += ["setsar=1", "format=yuv420p", f"trim=end_frame={piece.frames}", "setpts=PTS-STARTPTS",
                  f"settb=1/{f}"]
        return f"[{i}:v]{','.join(chain)}[p{i}]"

    def render(self, dst: str | os.PathLike) -> Path:
        """Write the edit to `dst` (H.264, written under a temp name and renamed)."""
        if shutil.which("ffmpeg") is None:
            raise TubeletError("ffmpeg is needed to render edits and is not on PATH")
        graph = [self._piece_filter(i, p) for i, p in enumerate(self.pieces)]
        current, length = "p0", self.pieces[0].frames
        for k, (join, piece) in enumerate(zip(self.joins, self.pieces[1:], strict=True), 1):
            if join.kind == "cut":
                graph.append(f"[{current}][p{k}]concat=n=2:v=1:a=0,settb=1/{self.fps}[j{k}]")
            else:
                offset = (length - join.frames) / self.fps
                graph.append(f"[{current}][p{k}]xfade=transition={join.xfade}:duration={join.frames / self.fps:.4f}"
                             f":offset={offset:.4f}[j{k}]")
                length -= join.frames
            current, length = f"j{k}", length + piece.frames
        dst = Path(dst)
        tmp = dst.with_name(f".{dst.stem}.tmp{dst.suffix}")
        cmd = ["ffmpeg", "-v", "error", "-y", *[a for p in self.pieces for a in ("-i", p.src)],
               "-filter_complex", ";".join(graph), "-map", f"[{current}]", "-frames:v", str(self.frames),
               "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-an", str(tmp)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise TubeletError(f"{dst.name}: ffmpeg failed: {done.stderr.strip()[-600:]}")
        os.replace(tmp, dst)
        return dst
