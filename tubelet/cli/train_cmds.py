"""`tubelet pretrain`, `tubelet reconstruct` and `tubelet demo`."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from tubelet.cli import app
from tubelet.cli.run_options import RunOptions, run_options
from tubelet.errors import TubeletError


def _print_json(data: dict) -> None:
    typer.echo(json.dumps(data, indent=2))


@app.command()
@run_options
def pretrain(
    data: str = typer.Argument(None, help="Videos: a folder, a csv/jsonl manifest or tar shards (from the saved "
                                          "config when resuming)."),
    preset: str = typer.Option(None, help="Model preset (vit_tiny … vit_giant); its paper recipe is the default."),
    init: str = typer.Option(None, help="Start from these weights (checkpoint dir, transformers dir, .pth)."),
    mask_ratio: float = typer.Option(None, help="Share of tubes hidden from the encoder."),
    decoder_mask_ratio: float = typer.Option(None, help="VideoMAE v2 dual masking: share dropped by the decoder."),
    repeats: int = typer.Option(None, help="Repeated augmentation: masked views per decoded clip."),
    grad_checkpointing: bool = typer.Option(None, "--grad-checkpointing", help="Recompute blocks in backward."),
    *, run: RunOptions,
) -> None:
    """Pretrain a VideoMAE on unlabeled videos (masked tube reconstruction)."""
    from tubelet.train.config import PretrainConfig
    from tubelet.train.pretrain import CONFIG_FILE
    from tubelet.train.pretrain import pretrain as train

    own = {"data": data, "preset": preset, "init": init, "mask_ratio": mask_ratio,
           "decoder_mask_ratio": decoder_mask_ratio, "repeats": repeats, "grad_checkpointing": grad_checkpointing}
    cfg = run.resolve(PretrainConfig, own, CONFIG_FILE)
    if not cfg.data:
        raise TubeletError("give the videos to train on: tubelet pretrain DATA --out RUN_DIR")
    result = train(cfg, run.out, resume=run.resume, stop_after=run.stop_after, progress=True)
    if result.rank != 0:
        return
    if run.json:
        _print_json(result.summary())
    else:
        _report(result.summary())


def _report(summary: dict) -> None:
    typer.echo(f"step {summary['step']}/{summary['total_steps']}  loss {summary['first_loss']} → "
               f"{summary['last_loss']}  ({summary['clips_per_s']} clips/s, {summary['seconds']} s)", err=True)
    typer.echo(f"checkpoint:     {summary['checkpoint']}", err=True)
    typer.echo(f"reconstruction: {summary['reconstruction']}", err=True)
    for path in summary["skipped"]:
        typer.echo(f"skipped:        {path}", err=True)


@app.command()
def reconstruct(
    video: Path = typer.Argument(..., help="A video file."),
    model: str = typer.Option(..., "--model", help="A pretraining checkpoint directory or a pretrain RUN_DIR."),
    out: Path = typer.Option(..., "--out", help="PNG file to write."),
    mask_ratio: float = typer.Option(0.9, help="Share of tubes hidden."),
    mask_type: str = typer.Option("tube", help="tube or random."),
    start: float = typer.Option(None, help="Clip start in seconds (default: the middle of the video)."),
    stride: int = typer.Option(4, help="Frame sampling rate."),
    seed: int = typer.Option(0, min=0, max=2**32 - 1, help="Seed of the mask."),
    json_: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
) -> None:
    """Draw original / masked / reconstruction rows of a clip (the VideoMAE paper's picture)."""
    from tubelet.viz.reconstruct import reconstruct_video

    if out.suffix.lower() != ".png" or out.is_dir():
        raise TubeletError(f"{out}: --out takes the path of a .png file to write")
    info = reconstruct_video(model, video, out, mask_ratio=mask_ratio, mask_type=mask_type, start_s=start,
                             stride=stride, seed=seed)
    if json_:
        _print_json(info)
    else:
        typer.echo(f"{out}  (masked-patch loss {info['loss']:.4f})", err=True)


@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", help="Where the run goes."),
    minutes: float = typer.Option(3.0, help="Training budget in minutes."),
    steps: int = typer.Option(None, help="Train exactly this many steps instead of a time budget."),
    json_: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
) -> None:
    """Pretrain a tiny VideoMAE on the bundled clips, then draw its reconstruction picture."""
    from tubelet.demo import run_demo

    summary = run_demo(out, minutes=minutes, steps=steps)
    if json_:
        _print_json(summary)
