"""ONNX export and the onnx engine, on real clips: fp32 parity with torch within 1e-4 (embeddings and a
classifier's logits, at another batch size than exported), int8 cosine ≥ 0.99, token subsets, and the catalog's
refusal to mix vectors that differ beyond that tolerance; `tubelet export` and `--engine onnx` end to end."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import BUNDLED_VIDEOS, VIDEOS, run_cli

pytest.importorskip("onnxruntime")

from tubelet.catalog.embed import EmbedOptions, Engine, _window_times, embed_video, load_embedder  # noqa: E402
from tubelet.data import read_frames_at  # noqa: E402
from tubelet.data.transforms import test_views as view_of  # noqa: E402
from tubelet.errors import TubeletError  # noqa: E402
from tubelet.export import EmbeddingGraph, OnnxRunner, check_parity, export_onnx  # noqa: E402

CLIPS = VIDEOS  # the shared clips, or the bundled ones
TINY = dict(depth=2, num_frames=8, image_size=64)


@pytest.fixture(scope="module", autouse=True)
def onnx_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TUBELET_CACHE", str(tmp_path_factory.mktemp("tubelet-cache")))
        yield


def real_clips(frames: int, size: int, n_videos: int = 3) -> torch.Tensor:
    """Two 2 s windows from each of the first real videos, as the embedder sees them."""
    out = []
    for video in sorted(p for p in CLIPS.iterdir() if p.suffix == ".mp4")[:n_videos]:
        for row in _window_times([(0.0, 2.0), (2.0, 4.0)], frames):
            frames_, _ = read_frames_at(video, row.tolist(), size=size)
            out.append(view_of(frames_, size)[0])
    return torch.stack(out)


def short_clip() -> Path:
    return BUNDLED_VIDEOS / "houseplant_static_short.mp4"


@pytest.mark.parametrize("kind", ["encoder", "classifier"])
def test_fp32_parity_and_int8_fidelity_on_real_clips(tmp_path, kind):
    extra = {"num_classes": 7, "decoder_depth": 0} if kind == "classifier" else {}
    model = load_embedder("vit_tiny", **TINY, **extra).model
    clips = real_clips(8, 64)  # 6 clips: a batch size the graph was not traced with
    fp32 = export_onnx(model, tmp_path / "m.onnx")
    parity = check_parity(model, fp32, clips)
    assert parity.max_abs_diff <= 1e-4
    if kind == "classifier":
        assert parity.logits_max_abs_diff <= 1e-4
    int8 = export_onnx(model, tmp_path / "m8.onnx", int8=True)
    assert int8.stat().st_size < 0.5 * fp32.stat().st_size
    assert check_parity(model, int8, clips).min_cosine >= 0.99


def test_token_subset_runs_the_same_in_torch_and_onnx(tmp_path):
    model = load_embedder("vit_tiny", **TINY).model
    clips = real_clips(8, 64, n_videos=2)
    path = export_onnx(model, tmp_path / "half.onnx", tokens=0.5)
    parity = check_parity(model, path, clips, tokens=0.5)
    assert parity.max_abs_diff <= 1e-4
    with torch.inference_mode():
        full, half = EmbeddingGraph(model)(clips)[0], EmbeddingGraph(model, tokens=0.5)(clips)[0]
    assert not torch.allclose(full, half)  # it really ran on half of the tubes
    assert OnnxRunner(path)(clips[:1])["embedding"].shape == (1, model.config.embed_dim)


def test_engine_identity_and_refusals():
    torch_fp32 = load_embedder("vit_tiny", **TINY)
    onnx_fp32 = load_embedder("vit_tiny", engine=Engine("onnx"), **TINY)
    onnx_int8 = load_embedder("vit_tiny", engine=Engine("onnx", int8=True), **TINY)
    halves = load_embedder("vit_tiny", tokens=0.5, **TINY)
    assert torch_fp32.id == onnx_fp32.id  # one embedding space: agree within 1e-4
    assert len({torch_fp32.id, onnx_int8.id, halves.id}) == 3
    clip = short_clip()
    a = embed_video(torch_fp32, clip, EmbedOptions())
    b = embed_video(onnx_fp32, clip, EmbedOptions())
    assert np.abs(a.segments - b.segments).max() <= 1e-4
    assert (embed_video(onnx_int8, clip, EmbedOptions()).segments * a.segments).sum(1).min() >= 0.99
    with pytest.raises(TubeletError, match="int8 weights need the onnx engine"):
        Engine("torch", int8=True)


@pytest.mark.slow
def test_cli_export_and_engine_onnx_end_to_end(tmp_path, monkeypatch, capsys):
    model_args = ["--model", "vit_tiny", *sum((["--set", f"{k}={v}"] for k, v in TINY.items()), [])]
    clip = BUNDLED_VIDEOS / "flower_timelapse.mp4"  # originality needs over a second of evidence: 1.2 s clips have less
    # export: fp32 parity and int8 fidelity reported by the command itself
    for int8 in (False, True):
        out = tmp_path / f"m{int8}.onnx"
        code, stdout, err = run_cli(monkeypatch, capsys, "export", "vit_tiny", "--onnx", out, "--frames", 8,
                                    "--size", 64, "--set", "depth=2", *(["--int8"] if int8 else []), "--json")
        assert code == 0, err
        r = json.loads(stdout)
        assert r["input"] == [None, 3, 8, 64, 64] and out.is_file()
        assert r["min_cosine"] >= 0.99 if int8 else r["max_abs_diff"] <= 1e-4
    # a catalog made by the onnx engine: recorded, searchable by torch and onnx, int8 refused
    cat = tmp_path / "cat"
    code, _, err = run_cli(monkeypatch, capsys, "index", "add", clip, "--catalog", cat, *model_args, "--engine",
                           "onnx", "--json")
    assert code == 0, err
    model = json.loads((cat / "catalog.json").read_text())["model"]
    assert (model["engine"], model["precision"], model["tokens"]) == ("onnx", "fp32", 1.0)
    for engine in ("torch", "onnx"):
        code, stdout, err = run_cli(monkeypatch, capsys, "search", clip, "--catalog", cat, "--engine", engine,
                                    "--json")
        assert code == 0, err
        assert json.loads(stdout)["results"][0]["score"] == pytest.approx(1.0, abs=1e-4)
    code, _, err = run_cli(monkeypatch, capsys, "search", clip, "--catalog", cat, "--engine", "onnx", "--int8")
    assert code == 1 and err.count("\n") == 1 and "fp32" in err and "int8" in err
    code, _, err = run_cli(monkeypatch, capsys, "index", "add", clip, "--catalog", cat, *model_args, "--engine",
                           "onnx", "--int8")
    assert code == 1 and err.count("\n") == 1 and "beyond the 1e-4 tolerance" in err
    code, stdout, err = run_cli(monkeypatch, capsys, "originality", clip, "--catalog", cat, "--engine", "onnx",
                                "--json")
    assert code == 0, err
    assert json.loads(stdout)["share"] > 0.5
    code, stdout, err = run_cli(monkeypatch, capsys, "analyze", clip, "--catalog", cat, "--engine", "onnx",
                                "--out", tmp_path / "report", "--json")
    assert code == 0, err
    # embed with int8 weights: the parquet says so
    code, _, err = run_cli(monkeypatch, capsys, "embed", clip, "--out", tmp_path / "e.parquet", *model_args,
                           "--engine", "onnx", "--int8", "--tokens", "0.5", "--json")
    assert code == 0, err
    from tubelet.catalog.embed import read_parquet

    info = read_parquet(tmp_path / "e.parquet").model
    assert (info.engine, info.precision, info.tokens) == ("onnx", "int8", 0.5)
