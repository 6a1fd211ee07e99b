"""`tubelet pretrain`, `tubelet distill`, `tubelet reconstruct` and `tubelet demo`."""

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
    from tubelet.train.pretrain import Pretraining

    own = {"data": data, "preset": preset, "init": init, "mask_ratio": mask_ratio,
           "decoder_mask_ratio": decoder_mask_ratio, "repeats": repeats, "grad_checkpointing": grad_checkpointing}
    _train(run, PretrainConfig, Pretraining, own, "tubelet pretrain DATA --out RUN_DIR")


def _train(run: RunOptions, config_cls: type, recipe_cls: type, own: dict, usage: str) -> None:
    """Resolve the run's config, train the recipe on the engine, report (rank 0 only)."""
    from tubelet.train.engine import run as train

    cfg = run.resolve(config_cls, own, recipe_cls.config_file)
    if not cfg.data:
        raise TubeletError(f"give the videos to train on: {usage}")
    result = train(recipe_cls(cfg), run.out, resume=run.resume, stop_after=run.stop_after, progress=True)
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
    if "reconstruction" in summary:
        typer.echo(f"reconstruction: {summary['reconstruction']}", err=True)
    for path in summary["skipped"]:
        typer.echo(f"skipped:        {path}", err=True)


@app.command()
@run_options
def distill(
    data: str = typer.Argument(None, help="Videos: a folder, a csv/jsonl manifest or tar shards (from the saved "
                                          "config when resuming)."),
    teacher: str = typer.Option(None, "--teacher", help="The model to learn from: a checkpoint, transformers dir, "
                                                        ".pth or Hub id; its logits too when it is a classifier."),
    student: str = typer.Option(None, "--student", help="A preset (random init) or a model to start from; "
                                                        "--set model.<field>=… shapes it."),
    labels: str = typer.Option(None, "--labels", help="Optional manifest path,label[,…] (paths from DATA): adds "
                                                      "the cross-entropy on the labels."),
    temperature: float = typer.Option(None, help="Softmax temperature of the logit loss."),
    stride: int = typer.Option(None, help="Frame sampling rate."),
    *, run: RunOptions,
) -> None:
    """Distill a teacher into a smaller student (VideoMAE v2): its tokens through a learned projection and
    interpolated token grids, and its logits when the teacher is a classifier."""
    from tubelet.train.distill import Distillation, DistillConfig

    own = {"data": data, "teacher": teacher, "student": student, "labels": labels, "temperature": temperature,
           "stride": stride}
    _train(run, DistillConfig, Distillation, own, "tubelet distill --teacher MODEL --student PRESET DATA --out RUN_DIR")


@app.command()
def reconstruct(
    video: Path = typer.Argument(..., help="A video file."),
    model: str = typer.Option(..., "--model", help="A pretraining checkpoint directory or a pretrain RUN_DIR (its "
                                                   "latest checkpoint)."),
    out: Path = typer.Option(..., "--out", help="PNG file to write."),
    mask_ratio: float = typer.Option(0.9, help="Share of tubes hidden."),
    mask_type: str = typer.Option("tube", help="tube or random."),
    start: float = typer.Option(None, help="Clip start in seconds (default: the middle of the video)."),
    stride: int = typer.Option(4, help="Frame sampling rate."),
    seed: int = typer.Option(0, min=0, max=2**32 - 1, help="Seed of the mask."),
    json_: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
) -> None:
    """Draw original / masked / reconstruction rows of a clip (the VideoMAE paper's picture)."""
    from tubelet.model.checkpoints import load_model, resolve_run_dir
    from tubelet.viz.reconstruct import reconstruct_video

    if out.suffix.lower() != ".png" or out.is_dir():
        raise TubeletError(f"{out}: --out takes the path of a .png file to write")
    src = resolve_run_dir(Path(model))
    net = load_model(src if src.exists() else model)
    rec = reconstruct_video(net, video, out, mask_ratio=mask_ratio, mask_type=mask_type, start_s=start,
                            stride=stride, seed=seed)
    info = {"video": str(video), "model": str(src), "out": str(out), "mask_ratio": rec.mask_ratio,
            "loss": rec.loss, "frames": net.config.num_frames, "image_size": list(net.config.image_size)}
    if json_:
        _print_json(info)
    else:
        typer.echo(f"{out}  (masked-patch loss {info['loss']:.4f})", err=True)


@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", help="Where the run goes."),
    minutes: float = typer.Option(3.0, help="Training budget in minutes."),
    steps: int = typer.Option(None, min=1, help="Train exactly this many steps instead of a time budget."),
    json_: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
) -> None:
    """Pretrain a tiny VideoMAE on the bundled clips, then draw its reconstruction picture."""
    from tubelet.demo import run_demo

    summary = run_demo(out, minutes=minutes, steps=steps)
    if json_:
        _print_json(summary)
