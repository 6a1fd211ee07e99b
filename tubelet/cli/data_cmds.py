"""`tubelet probe VIDEO`: what a video file holds (duration, fps, frames, display size, codec, rotation); the
`probe` command itself is registered in downstream_cmds, which also takes `probe DATA --init CKPT`."""

from __future__ import annotations

import json

import typer

from tubelet.errors import VideoError


def describe_video(video: str, exact: bool = False, as_json: bool = False) -> None:
    """Describe a video: duration, fps, frame count, display size (SAR and rotation applied), codec, rotation;
    `exact` counts packets (reads the whole file) instead of trusting the container's header."""
    from tubelet.data.decode import probe as probe_video

    info = probe_video(video, exact=exact)
    if not info.has_video:
        raise VideoError(f"{video}: no video stream" + (" (audio only)" if info.has_audio else ""))
    if as_json:
        typer.echo(json.dumps(info.to_dict()))
        return
    frames = f"{info.num_frames}" + ("" if info.frames_exact else " (from header)")
    lines = [
        ("file", info.path),
        ("duration", f"{info.duration_s:.3f} s"),
        ("fps", f"{info.fps:.3f}"),
        ("frames", frames),
        ("size", f"{info.width}x{info.height} (stored {info.coded_width}x{info.coded_height}, SAR {info.sar:.4g})"),
        ("rotation", f"{info.rotation}°"),
        ("codec", f"{info.codec} {info.pix_fmt} in {info.container}"),
        ("audio", "yes" if info.has_audio else "no"),
    ]
    for key, value in lines:
        typer.echo(f"{key:9s} {value}")
