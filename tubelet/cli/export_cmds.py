"""`tubelet export`: the encoder as used for embedding (and a classifier's logits) as an ONNX file."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from tubelet.cli import app


@app.command()
def export(
    model: str = typer.Argument(..., help="Preset (seeded random init), checkpoint or Hub id (owner/name[@rev])."),
    onnx: Path = typer.Option(..., "--onnx", help="Output .onnx file (written atomically)."),
    int8: bool = typer.Option(False, "--int8", help="int8 weights (ONNX Runtime dynamic quantisation)."),
    frames: int = typer.Option(None, "--frames", help="Frames per clip (default: the model's)."),
    size: int = typer.Option(None, "--size", help="Crop side in pixels (default: the model's)."),
    layer: int = typer.Option(-1, help="Encoder block to pool (-1: last, normed)."),
    pool: str = typer.Option("mean", help="Token pooling: mean or max."),
    tokens: float = typer.Option(1.0, "--tokens", help="Fraction of the tubes the encoder sees (1 = all)."),
    overrides: list[str] = typer.Option([], "--set", help="Model config override FIELD=VALUE."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Export the embedding graph (video [B, 3, T, H, W] → unit embedding, and logits for a classifier) to ONNX
    with a dynamic batch, then check it against torch on two clips and print the agreement."""
    from tubelet.catalog.embed import load_embedder
    from tubelet.export import check_parity, example_input, export_onnx
    from tubelet.settings import model_overrides

    sets = model_overrides(overrides)
    sets.update({k: v for k, v in (("num_frames", frames), ("image_size", size)) if v is not None})
    emb = load_embedder(model, layer, pool, tokens, **sets)
    out = export_onnx(emb.model, onnx, layer=layer, pool=pool, tokens=tokens, int8=int8)
    parity = check_parity(emb.model, out, example_input(emb.model, batch=2, seed=1), layer=layer, pool=pool,
                          tokens=tokens)
    cfg = emb.model.config
    result = {"onnx": str(out), "model": emb.source, "model_id": emb.id, "precision": "int8" if int8 else "fp32",
              "input": [None, cfg.in_chans, cfg.num_frames, *cfg.image_size], "outputs": emb.graph.outputs,
              "size_bytes": out.stat().st_size, "max_abs_diff": parity.max_abs_diff, "min_cosine": parity.min_cosine,
              "logits_max_abs_diff": parity.logits_max_abs_diff}
    if as_json:
        print(json.dumps(result, indent=2))
        return
    typer.echo(f"wrote {out} ({result['precision']}, {result['size_bytes'] / 2**20:.1f} MiB): video "
               f"[B, {cfg.in_chans}, {cfg.num_frames}, {cfg.image_size[0]}, {cfg.image_size[1]}] → "
               f"{', '.join(emb.graph.outputs)}; vs torch on 2 clips: max |Δ| {parity.max_abs_diff:.1e}, "
               f"min cosine {parity.min_cosine:.6f}", err=True)
