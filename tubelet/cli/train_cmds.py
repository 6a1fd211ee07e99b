"""`tubelet pretrain`, `tubelet reconstruct` and `tubelet demo`."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from tubelet.cli import app
from tubelet.errors import TubeletError


def _print_json(data: dict) -> None:
    typer.echo(json.dumps(data, indent=2))


@app.command()
def pretrain(
    data: str = typer.Argument(None, help="Videos: a folder, a csv/jsonl manifest or tar shards (from the saved "
                                          "config when resuming)."),
    out: Path = typer.Option(..., "--out", help="Run directory: config, metrics, checkpoints, pictures."),
    preset: str = typer.Option(None, help="Model preset (vit_tiny … vit_giant); its paper recipe is the default."),
    config: Path = typer.Option(None, help="TOML or YAML file of settings (see RUN_DIR/pretrain.yaml)."),
    steps: int = typer.Option(None, help="Optimizer steps to train."),
    epochs: int = typer.Option(None, help="Epochs to train (instead of --steps)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last checkpoint."),
    set_: list[str] = typer.Option(None, "--set", help="Override any setting: key=value, model.<field>=value."),
    batch_size: int = typer.Option(None, help="Clips per process per micro-step."),
    accum: int = typer.Option(None, help="Micro-steps accumulated per optimizer step."),
    lr: float = typer.Option(None, help="Base learning rate (scaled by total batch / 256)."),
    mask_ratio: float = typer.Option(None, help="Share of tubes hidden from the encoder."),
    decoder_mask_ratio: float = typer.Option(None, help="VideoMAE v2 dual masking: share dropped by the decoder."),
    repeats: int = typer.Option(None, help="Repeated augmentation: masked views per decoded clip."),
    precision: str = typer.Option(None, help="auto (bf16 on GPU, fp32 on CPU), bf16, fp16 (grad scaler) or fp32."),
    clip_grad: float = typer.Option(None, help="Max gradient norm (0 = off)."),
    workers: int = typer.Option(None, help="Data-loading worker processes."),
    seed: int = typer.Option(None),
    device: str = typer.Option(None, help="auto, cpu, cuda or cuda:N."),
    fsdp: bool = typer.Option(None, "--fsdp", help="Shard the model with FSDP (under torchrun)."),
    compile_: bool = typer.Option(None, "--compile", help="torch.compile the model."),
    grad_checkpointing: bool = typer.Option(None, "--grad-checkpointing", help="Recompute blocks in backward."),
    deterministic: bool = typer.Option(None, "--deterministic", help="Deterministic algorithms (reproducible)."),
    init: str = typer.Option(None, help="Start from these weights (checkpoint dir, transformers dir, .pth)."),
    save_every: int = typer.Option(None, help="Steps between checkpoints."),
    keep: int = typer.Option(None, help="Checkpoints kept."),
    stop_after: int = typer.Option(0, help="End this session after N steps (checkpointed); --resume continues."),
    json_: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
) -> None:
    """Pretrain a VideoMAE on unlabeled videos (masked tube reconstruction)."""
    from tubelet.train.config import read_config_file, resolve
    from tubelet.train.pretrain import CONFIG_FILE
    from tubelet.train.pretrain import pretrain as run

    cli = {"data": data, "preset": preset, "steps": steps, "epochs": epochs, "batch_size": batch_size,
           "accum_steps": accum, "base_lr": lr, "mask_ratio": mask_ratio, "decoder_mask_ratio": decoder_mask_ratio,
           "repeats": repeats, "precision": precision, "clip_grad": clip_grad, "workers": workers, "seed": seed,
           "device": device, "fsdp": fsdp, "compile": compile_, "grad_checkpointing": grad_checkpointing,
           "deterministic": deterministic, "init": init, "save_every": save_every, "keep_last": keep}
    base = None
    if resume:
        saved = out / CONFIG_FILE
        if not saved.is_file():
            raise TubeletError(f"{out}: not a run directory (no {CONFIG_FILE}); nothing to resume")
        base = read_config_file(saved)
        if steps is not None and "epochs" in base:
            base["epochs"] = 0
        if epochs is not None and "steps" in base:
            base["steps"] = 0
    cfg = resolve(cli, config, set_ or [], base=base)
    if not cfg.data:
        raise TubeletError("give the videos to train on: tubelet pretrain DATA --out RUN_DIR")
    result = run(cfg, out, resume=resume, stop_after=stop_after, progress=True)
    if result.rank != 0:
        return
    if json_:
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
    seed: int = typer.Option(0, help="Seed of the mask."),
    json_: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
) -> None:
    """Draw original / masked / reconstruction rows of a clip (the VideoMAE paper's picture)."""
    from tubelet.viz.reconstruct import reconstruct_video

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
