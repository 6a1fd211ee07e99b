"""Shared test helpers: where the team's real clips live, tiny model configs, the CLI run in-process."""

from pathlib import Path

import torch

from tubelet import ModelConfig, VideoMAE, preset

# ../shared/data/videos beside the repository, else the team's copy (a clone elsewhere on this machine)
SHARED_VIDEOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos"
if not SHARED_VIDEOS.is_dir():
    SHARED_VIDEOS = Path("/work/shared/data/videos")


def small_config(**kw) -> ModelConfig:
    """A pretraining model small enough for exact comparisons: 4 frames of 32², patch 8, width 48, 2 + 2 blocks
    (the transformers parity tests build the same one on their side)."""
    base = dict(num_frames=4, image_size=32, patch_size=8, embed_dim=48, depth=2, num_heads=4, mlp_dim=96,
                decoder_dim=32, decoder_depth=2, decoder_heads=2, decoder_mlp_dim=64)
    return ModelConfig(**{**base, **kw})


def micro_model(image_size: int = 32, **kw) -> VideoMAE:
    """A seeded vit_tiny pretraining model with 2 encoder blocks and 1 decoder block on 4-frame clips."""
    torch.manual_seed(0)
    return VideoMAE(preset("vit_tiny", num_frames=4, image_size=image_size, depth=2, decoder_depth=1, **kw))


def run_cli(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    """The real entry point (tubelet.cli.main) in-process: (exit code, stdout, stderr)."""
    from tubelet.cli import main

    monkeypatch.setattr("sys.argv", ["tubelet", *map(str, args)])
    code = 0
    try:
        main()
    except SystemExit as e:
        code = e.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err
