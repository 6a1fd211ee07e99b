"""`tubelet finetune`, `tubelet probe` and `tubelet evaluate` (multi-view).

`tubelet probe` is registered here, once: `probe VIDEO` describes a video file (`cli/data_cmds.describe_video`),
`probe DATA --init CKPT` fits a linear probe of frozen features (`train/linear_probe.py`).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from tubelet.cli import app
from tubelet.cli.data_cmds import describe_video
from tubelet.cli.run_options import RunOptions, run_options
from tubelet.errors import TubeletError
from tubelet.settings import model_overrides

DATA_HELP = "Folder the manifest's relative paths start from (or labelled videos in class sub-folders)."


def _print_json(data: dict) -> None:
    typer.echo(json.dumps(data, indent=2))


@app.command()
@run_options
def finetune(
    data: str = typer.Argument(None, help=DATA_HELP + " Read from the saved config when resuming."),
    labels: str = typer.Option(None, "--labels", help="Manifest: path,label[,start_s,end_s,split] (CSV/JSONL or "
                                                      "official `path label` lists); labels are names or ids."),
    init: str = typer.Option(None, "--init", help="Weights to start from: pretrained or fine-tuned checkpoint "
                                                  "(tubelet/transformers dir, official .pth) or a preset name."),
    classes: str = typer.Option(None, "--classes", help="Class list: one name per line (or JSON list/map)."),
    val: str = typer.Option(None, "--val", help="Validation manifest (default: the split column, else --val-frac)."),
    val_frac: float = typer.Option(None, "--val-frac", help="Share of each class held out for validation."),
    layer_decay: float = typer.Option(None, help="Layer-wise lr decay (1 = none)."),
    drop_path: float = typer.Option(None, help="Stochastic depth rate."),
    smoothing: float = typer.Option(None, help="Label smoothing."),
    mixup: float = typer.Option(None, help="Mixup alpha (0 = off)."),
    cutmix: float = typer.Option(None, help="CutMix alpha (0 = off)."),
    stride: int = typer.Option(None, help="Frame sampling rate."),
    flip: bool = typer.Option(None, "--flip/--no-flip", help="Random horizontal flip (off when left/right "
                                                              "carries the label)."),
    *, run: RunOptions,
) -> None:
    """Fine-tune a classifier on labelled clips (layer-wise lr decay, mixup/cutmix, RandAugment, drop path)."""
    from tubelet.train.finetune import FinetuneConfig, Finetuning
    from tubelet.train.finetune import finetune as train

    own = {"data": data, "labels": labels, "init": init, "classes": classes, "val": val, "val_frac": val_frac,
           "layer_decay": layer_decay, "drop_path": drop_path, "smoothing": smoothing, "mixup": mixup,
           "cutmix": cutmix, "stride": stride, "flip": flip}
    result = train(run.resolve(FinetuneConfig, own, Finetuning.config_file), run.out, resume=run.resume,
                   stop_after=run.stop_after, progress=True)
    if result.rank != 0:
        return
    summary = result.summary()
    if run.json:
        _print_json(summary)
        return
    typer.echo(f"step {summary['step']}/{summary['total_steps']}  loss {summary['first_loss']} → "
               f"{summary['last_loss']}  ({summary['clips_per_s']} clips/s, {summary['seconds']} s)")
    if result.val is not None:
        typer.echo(f"val top-1 {result.val.top1:.4f}  top-5 {result.val.top5:.4f}  ({result.val.num_examples} clips)")
    typer.echo(f"checkpoint: {summary['checkpoint']}")


@app.command()
def probe(
    target: str = typer.Argument(None, metavar="VIDEO|DATA", help="A video file to describe, or with --init the "
                                                                  "labelled videos to linear-probe (" + DATA_HELP +
                                                                  ")"),
    init: str = typer.Option(None, "--init", help="Linear probe: the encoder (any checkpoint load_model reads, or "
                                                  "a preset name for random init)."),
    labels: str = typer.Option(None, "--labels", help="Manifest: path,label[,start_s,end_s,split]."),
    layer: int = typer.Option(None, help="Encoder block whose output is pooled (negative counts from the end; "
                                         "default: the final normed features)."),
    val: str = typer.Option(None, "--val", help="Manifest to score on (default: split column, else --val-frac)."),
    val_frac: float = typer.Option(0.2, "--val-frac", help="Share of each class held out for scoring."),
    classes: str = typer.Option(None, "--classes", help="Class list file."),
    stride: int = typer.Option(4, help="Frame sampling rate."),
    set_: list[str] = typer.Option(None, "--set", help="Model overrides field=value (e.g. num_frames=8)."),
    batch_size: int = typer.Option(8, help="Clips per forward pass."),
    workers: int = typer.Option(0, help="Data-loading worker processes."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N."),
    precision: str = typer.Option("fp32", help="bf16, fp16 or fp32 for feature extraction."),
    seed: int = typer.Option(0, min=0, max=2**32 - 1, help="Seed of the split and the probe's held-out fifth."),
    exact: bool = typer.Option(False, "--exact", help="Describing a video: count packets for frames and duration "
                                                      "(reads the whole file)."),
    json_: bool = typer.Option(False, "--json", help="Print JSON on stdout."),
) -> None:
    """Describe a video (`probe VIDEO`), or linear-probe an encoder (`probe DATA --init CKPT`): mean-pooled frozen
    features of one layer → batch norm + logistic regression; accuracy on held-out clips."""
    if init is None:
        if target is None:
            raise TubeletError("give a VIDEO to describe, or DATA --init CKPT to linear-probe an encoder")
        describe_video(target, exact=exact, as_json=json_)
        return
    from tubelet.train.accuracy import format_report
    from tubelet.train.linear_probe import run_linear_probe

    result = run_linear_probe(target, labels, init, layer, val, val_frac, classes, stride, model_overrides(set_),
                       batch_size, workers, device, precision, seed)
    if json_:
        _print_json(result.summary())
        return
    where = "final features" if layer is None else f"block {layer}"
    typer.echo(f"linear probe on {where} ({result.feature_dim}-d, {result.train_clips} training clips, "
               f"L2 {result.l2:g}, {result.seconds:.1f} s)")
    typer.echo(format_report(result.report))


@app.command()
def evaluate(
    data: str = typer.Argument(None, help=DATA_HELP),
    labels: str = typer.Option(None, "--labels", help="Manifest: path,label[,start_s,end_s]."),
    model: str = typer.Option(..., "--model", help="Classifier: tubelet/transformers dir, or an official "
                                                   "fine-tuned .pth (give its geometry with --set)."),
    clips: int = typer.Option(5, help="Windows per video, spread uniformly."),
    crops: int = typer.Option(3, help="Crops per window: 1 (centre) or 3 (along the long side)."),
    stride: int = typer.Option(4, help="Frame sampling rate."),
    classes: str = typer.Option(None, "--classes", help="Class list, for models without class names."),
    set_: list[str] = typer.Option(None, "--set", help="Model overrides field=value, e.g. num_frames=16 "
                                                       "image_size=224."),
    batch_size: int = typer.Option(2, help="Videos per batch (each with clips × crops views)."),
    workers: int = typer.Option(0, help="Data-loading worker processes."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N."),
    precision: str = typer.Option("fp32", help="bf16, fp16 or fp32."),
    out: Path = typer.Option(None, "--out", help="Folder for evaluation.json and confusion.png."),
    json_: bool = typer.Option(False, "--json", help="Print the JSON report on stdout."),
) -> None:
    """Multi-view testing (clips × crops, softmax averaged): top-1, top-5, per-class accuracy, confusion matrix."""
    from tubelet.train.accuracy import format_report
    from tubelet.train.evaluate import evaluate as run

    result = run(data, labels, model, clips, crops, stride, classes, model_overrides(set_), batch_size, workers,
                 device, precision, out)
    if json_:
        _print_json(result.summary())
        return
    typer.echo(f"{model}: {clips} clip(s) × {crops} crop(s), {result.seconds:.1f} s")
    typer.echo(format_report(result.report))
    if result.confusion_png:
        typer.echo(f"confusion matrix: {result.confusion_png}")
