"""`tubelet convert` and `tubelet info`: move checkpoints between formats, describe one."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from tubelet.cli import app
from tubelet.config import PRESETS, ModelConfig, preset
from tubelet.settings import model_overrides


class Target(StrEnum):
    tubelet = "tubelet"
    transformers = "transformers"


PARTS = {"encoder": ("encoder.",), "decoder": ("decoder.", "encoder_to_decoder.", "mask_token"),
         "head": ("fc_norm.", "head.")}


def _kind(cfg: ModelConfig) -> str:
    return "pretraining" if cfg.is_pretraining else "classifier" if cfg.is_classifier else "encoder"


def describe(src: str) -> dict[str, Any]:
    """Architecture summary of a checkpoint or preset: config, kind, token grid, parameter counts by part."""
    if src in PRESETS and not Path(src).exists():
        import torch

        from tubelet.model.videomae import VideoMAE

        cfg, source = preset(src), "preset"
        with torch.device("meta"):
            shapes = {k: v.numel() for k, v in VideoMAE(cfg).state_dict().items()}
    else:
        from tubelet.model.checkpoints import read_checkpoint

        ckpt = read_checkpoint(src)
        cfg, source = ckpt.config, ckpt.source_format
        shapes = {k: v.numel() for k, v in ckpt.state_dict.items()}
    by_part = {part: sum(n for k, n in shapes.items() if k.startswith(prefixes)) for part, prefixes in PARTS.items()}
    return {
        "path": src, "format": source, "kind": _kind(cfg), "parameters": sum(shapes.values()),
        "parameters_by_part": by_part, "grid": list(cfg.grid), "tokens": cfg.num_patches, "config": cfg.to_dict(),
    }


def _print_summary(info: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    c = info["config"]
    rows = [
        ("format", info["format"]), ("kind", info["kind"]), ("name", c["name"]),
        ("parameters", f"{info['parameters']:,}"),
        ("input", f"{c['num_frames']}×{c['image_size'][0]}×{c['image_size'][1]}, {c['in_chans']} channels"),
        ("tubelet", f"{c['tubelet_size']}×{c['patch_size']}×{c['patch_size']} → grid "
                    f"{'×'.join(map(str, info['grid']))} = {info['tokens']} tokens"),
        ("encoder", f"dim {c['embed_dim']}, depth {c['depth']}, heads {c['num_heads']}, mlp {c['mlp_dim']}, "
                    f"{info['parameters_by_part']['encoder']:,} params"),
        ("position", "learnable" if c["learnable_pos_emb"] else "fixed sinusoid"),
    ]
    if c["layer_scale_init"] > 0:
        rows.append(("layer scale", "yes"))
    if info["kind"] == "pretraining":
        rows.append(("decoder", f"dim {c['decoder_dim']}, depth {c['decoder_depth']}, heads {c['decoder_heads']}, "
                                f"mlp {c['decoder_mlp_dim']}, norm_pix_loss {c['norm_pix_loss']}"))
    if info["kind"] == "classifier":
        names = ", ".join(c["class_names"][:5]) + (" …" if len(c["class_names"]) > 5 else "")
        rows.append(("head", f"{c['num_classes']} classes, {'mean pooling' if c['use_mean_pooling'] else 'token 0'}"
                             + (f" ({names})" if names else "")))
    table = Table(title=info["path"], show_header=False, box=None)
    for key, value in rows:
        table.add_row(key, str(value))
    Console().print(table)


@app.command()
def info(
    checkpoint: str = typer.Argument(..., help="Checkpoint directory, official .pth, or preset name."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Describe a checkpoint: architecture, token grid, parameter count, source format."""
    summary = describe(checkpoint)
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        _print_summary(summary)


@app.command()
def convert(
    src: str = typer.Argument(..., help="Checkpoint directory, official .pth, or preset name."),
    dst: Path = typer.Argument(..., help="Output directory."),
    to: Target = typer.Option(Target.tubelet, "--to", help="Output format."),
    overrides: list[str] = typer.Option([], "--set", help="Model config override FIELD=VALUE, e.g. num_frames=8 "
                                        "or num_heads=4 (repeatable)."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Convert a checkpoint to tubelet's format or to a transformers VideoMAE directory."""
    from tubelet.model.checkpoints import load_model, save_model

    model = load_model(src, **model_overrides(overrides))
    out = save_model(model, dst, format=to.value)
    result = {"source": src, "destination": str(out), "format": to.value, "parameters": model.num_params()}
    if as_json:
        print(json.dumps(result))
    else:
        typer.echo(f"wrote {to.value} checkpoint ({model.num_params():,} parameters) to {out}", err=True)


@app.command()
def models(as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON.")) -> None:
    """Known-good Hub models for each job (pretrained encoders to embed, search and find anomalies; fine-tuned
    classifiers), with size, training data and whether each is in the local Hugging Face cache. Use the id
    (`owner/name`, optionally `@revision`) wherever a model is taken."""
    import torch

    from tubelet.model.hub import KNOWN_MODELS, cached_revisions
    from tubelet.model.videomae import VideoMAE

    rows = []
    for m in KNOWN_MODELS:
        with torch.device("meta"):
            params = VideoMAE(m.config()).num_params()
        cached = cached_revisions(m.repo)
        rows.append({"repo": m.repo, "job": m.job, "architecture": m.preset, "kind": m.kind, "parameters": params,
                     "size_mb": round(params * 4 / 2**20), "trained_on": m.trained_on, "cached": bool(cached),
                     "cached_revisions": cached})
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("job", "model", "params", "fp32 MB", "trained on", "cache",
                  title="Hub models tubelet loads as they are (tubelet embed --model ID, finetune --init ID, …)")
    table.columns[4].overflow = "fold"
    for r in rows:
        table.add_row(r["job"], r["repo"], f"{r['parameters'] / 1e6:.1f}M", str(r["size_mb"]), r["trained_on"],
                      "cached" if r["cached"] else "-")
    Console(width=160).print(table)
