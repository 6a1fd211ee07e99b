"""Checkpoint I/O: tubelet's own directory format, official VideoMAE v1/v2 .pth files, transformers directories.

Every reader turns a source into (ModelConfig, state dict in tubelet's key layout); `load_model` then applies
config overrides (geometry, a classification head) and adapts the weights to them.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pickletools
import re
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save
from torch import Tensor

from tubelet.atomic import atomic_dir, atomic_write
from tubelet.config import PRESETS, ModelConfig, preset
from tubelet.errors import CheckpointError, TubeletError
from tubelet.model.hub import download, is_hub_id
from tubelet.model.official_ckpt import from_hub_v2, from_official, state_dict_of
from tubelet.model.transformers_ckpt import config_from_transformers, from_transformers, to_transformers
from tubelet.model.videomae import VideoMAE
from tubelet.model.vit import interpolate_pos_embed

FORMAT_NAME = "tubelet"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
HF_BIN_FILE = "pytorch_model.bin"
RUN_CHECKPOINTS = "checkpoints"  # in a training run's directory
# Official training checkpoints also hold their argparse.Namespace of settings: plain data, allowed.
SAFE_GLOBALS = [argparse.Namespace]
# What torch.save itself writes into a pickle: rebuilding tensors and storages, ordered dicts.
SAFE_CALLS = ("torch.", "collections.OrderedDict", "argparse.Namespace", "_codecs.encode", "numpy.")

StateDict = dict[str, Tensor]


@dataclass
class Checkpoint:
    """A checkpoint read into tubelet's layout: config, weights and the format it came from."""

    config: ModelConfig
    state_dict: StateDict
    source_format: str  # "tubelet" | "transformers" | "videomae-v2" (OpenGVLab Hub) | "official"


# ---- reading --------------------------------------------------------------------------------------

def _one_line(e: BaseException) -> str:
    text = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
    return text[0] if text else type(e).__name__


def _require(path: Path) -> Path:
    if not path.is_file():
        raise CheckpointError(f"{path}: missing")
    return path


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: cannot read config ({_one_line(e)})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: config is not a JSON object")
    return data


def _read_safetensors(path: Path) -> StateDict:
    try:
        return load_file(str(path))
    except (OSError, SafetensorError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors file ({_one_line(e)})") from None


def _load_pth(path: Path) -> Any:
    """torch.load with weights_only=True: tensors and plain containers only, never pickled code."""
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: empty file")
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on pickle protocols: the error below says what matters
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # arbitrary bytes fail in many ways (UnpicklingError, KeyError, struct.error, …)
        text = str(e)
        refused = re.search(r"GLOBAL ([\w.]+)", text)  # torch names the global it blocked
        code = [refused.group(1)] if refused else [g for g in _pickled_globals(path) if not g.startswith(SAFE_CALLS)]
        if code:
            raise CheckpointError(f"{path}: holds code and was not loaded (it tries to call {', '.join(code[:3])}); "
                                  f"only tensors and plain containers are loaded") from None
        reason = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", text)
        raise CheckpointError(f"{path}: not a PyTorch checkpoint ({reason.group(1) if reason else _one_line(e)})"
                              ) from None


def _pickled_globals(path: Path, limit: int = 1 << 26) -> list[str]:
    """The functions and classes a pickle (a bare one, a legacy torch file's pickles, or a torch zip's data.pkl)
    would import, found by reading its opcodes, never by running them."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            pkl = next((n for n in z.namelist() if n.endswith("data.pkl")), None)
            data = z.read(pkl)[:limit] if pkl else b""
    else:
        with open(path, "rb") as f:
            data = f.read(limit)
    stream, found, strings = io.BytesIO(data), [], []
    while stream.tell() < len(data):  # a legacy torch file is several pickles in a row
        try:
            for op, arg, _ in pickletools.genops(stream):
                if op.name == "GLOBAL":
                    found.append(str(arg).replace(" ", "."))
                elif isinstance(arg, str):
                    strings.append(arg)
                elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                    found.append(f"{strings[-2]}.{strings[-1]}")
        except Exception:  # not (or no longer) a pickle: what was read so far is all there is
            break
    return list(dict.fromkeys(found))


def _model_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """State-dict keys and shapes of a model built from cfg (built on the meta device: no memory, no init cost)."""
    with torch.device("meta"):
        return {k: tuple(v.shape) for k, v in VideoMAE(cfg).state_dict().items()}


def _model_keys(cfg: ModelConfig) -> list[str]:
    return list(_model_shapes(cfg))


def _read_tubelet_dir(path: Path, meta: dict[str, Any]) -> Checkpoint:
    version = meta.pop("format_version", None)
    meta.pop("format", None)
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{path}: unsupported tubelet format version {version!r} (this build reads "
                              f"{FORMAT_VERSION})")
    try:
        cfg = ModelConfig.from_dict(meta)  # every number in its sane range before anything is built from it
    except (TubeletError, TypeError) as e:
        raise CheckpointError(f"{path / CONFIG_FILE}: {e}") from None
    sd = _read_safetensors(_require(path / WEIGHTS_FILE))
    _check_fit(_model_shapes(cfg), sd, (), f"{path}: {CONFIG_FILE} does not match {WEIGHTS_FILE}")
    return Checkpoint(cfg, sd, FORMAT_NAME)


def _read_weights(path: Path) -> StateDict:
    """model.safetensors, else pytorch_model.bin (read with weights_only=True)."""
    if (path / WEIGHTS_FILE).is_file():
        return _read_safetensors(path / WEIGHTS_FILE)
    if (path / HF_BIN_FILE).is_file():
        return state_dict_of(_load_pth(path / HF_BIN_FILE), str(path / HF_BIN_FILE))
    raise CheckpointError(f"{path}: no {WEIGHTS_FILE} or {HF_BIN_FILE}")


def _read_transformers_dir(path: Path, meta: dict[str, Any]) -> Checkpoint:
    sd = _read_weights(path)
    cfg = config_from_transformers(meta, sd, str(path))
    return Checkpoint(cfg, from_transformers(sd, _model_keys(cfg), str(path)), "transformers")


def run_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """A run's model checkpoints (RUN_DIR/checkpoints/step_NNNNNNNN/ with config and weights), oldest first; the
    temp directories of an interrupted save are not among them."""
    root = Path(run_dir) / RUN_CHECKPOINTS
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if re.fullmatch(r"step_\d{8}", p.name)
             and (p / CONFIG_FILE).is_file() and (p / WEIGHTS_FILE).is_file()]
    return sorted(found, key=lambda p: p.name)


def resolve_run_dir(path: Path) -> Path:
    """A training run's directory means its latest checkpoint; any other path means itself."""
    if not (path.is_dir() and not (path / CONFIG_FILE).exists() and (path / RUN_CHECKPOINTS).is_dir()):
        return path
    found = run_checkpoints(path)
    if not found:
        raise CheckpointError(f"{path}: a run directory without a complete checkpoint yet")
    return found[-1]


def read_checkpoint(src: str | os.PathLike, hints: dict[str, Any] | None = None) -> Checkpoint:
    """Read a checkpoint directory (tubelet, transformers or OpenGVLab VideoMAE v2 Hub layout), file (official
    .pth, bare state dict in .pth or .safetensors) or Hub model id (`owner/name[@revision]`, downloaded into the
    Hugging Face cache) into tubelet's layout, without building a model. `hints` (num_heads, decoder_heads,
    num_frames, image_size) help infer the architecture of files that carry no config."""
    if isinstance(src, str) and is_hub_id(src):
        src = download(src)[0]
    path = Path(src)
    if not path.exists():
        raise CheckpointError(f"{path}: no such file or directory")
    path = resolve_run_dir(path)
    if path.is_dir():
        meta = _read_json(_require(path / CONFIG_FILE))
        if meta.get("format") == FORMAT_NAME:
            return _read_tubelet_dir(path, meta)
        if meta.get("model_type") == "videomae":
            return _read_transformers_dir(path, meta)
        if isinstance(meta.get("model_config"), dict):
            return Checkpoint(*from_hub_v2(meta["model_config"], _read_weights(path), str(path)), "videomae-v2")
        raise CheckpointError(f"{path}: config.json is neither a tubelet, a transformers VideoMAE nor a VideoMAE v2 "
                              f"Hub config")
    obj = _read_safetensors(path) if path.suffix == ".safetensors" else _load_pth(path)
    cfg, sd = from_official(obj, str(path), hints or {})
    return Checkpoint(cfg, sd, "official")


# ---- adapting weights to config overrides ---------------------------------------------------------

def _drop(sd: StateDict, prefixes: tuple[str, ...]) -> StateDict:
    return {k: v for k, v in sd.items() if not k.startswith(prefixes)}


def adapt_state_dict(sd: StateDict, old: ModelConfig, new: ModelConfig) -> StateDict:
    """Weights of a model built from `old`, made to fit one built from `new` (same encoder width and depth).

    A model without a decoder drops decoder weights; a mean-pooling classifier drops the encoder's final norm
    (official fine-tuning convention); a head of another size is dropped (initialised fresh); learnable position
    tables are resampled to the new token grid (fixed sinusoid tables are recomputed by the model).
    """
    if not new.is_pretraining:
        sd = _drop(sd, ("decoder.", "encoder_to_decoder.", "mask_token"))
    if not new.has_encoder_norm:
        sd = _drop(sd, ("encoder.norm.",))
    if not new.is_classifier:
        sd = _drop(sd, ("head.",) if new.norm_after_pool else ("head.", "fc_norm."))
    elif "head.weight" in sd and sd["head.weight"].shape[0] != new.num_classes:
        sd = _drop(sd, ("head.",))
    if not new.use_mean_pooling:
        sd = _drop(sd, ("fc_norm.",))
    if "encoder.pos_embed" in sd and new.learnable_pos_emb and old.grid != new.grid:
        sd = {**sd, "encoder.pos_embed": interpolate_pos_embed(sd["encoder.pos_embed"], old.grid, new.grid)}
    return sd


def _fresh_ok(old: ModelConfig, new: ModelConfig) -> tuple[str, ...]:
    """Key prefixes allowed to stay at their fresh initialisation: a new classification head."""
    if not new.is_classifier:
        return ()
    if old.is_classifier and old.num_classes == new.num_classes and old.use_mean_pooling == new.use_mean_pooling:
        return ()
    return ("head.", "fc_norm.")


def _apply_overrides(cfg: ModelConfig, overrides: dict[str, Any]) -> ModelConfig:
    overrides = dict(overrides)
    classes = overrides.get("num_classes", 0)
    if isinstance(classes, int) and classes > 0 and "decoder_depth" not in overrides:
        overrides["decoder_depth"] = 0  # a classifier built from a pretraining checkpoint drops the decoder
    if "num_classes" in overrides and "class_names" not in overrides and overrides["num_classes"] != cfg.num_classes:
        overrides["class_names"] = []
    return cfg.replace(**overrides)


def _check_fit(own: dict[str, tuple[int, ...]], sd: StateDict, fresh_ok: tuple[str, ...], where: str) -> None:
    """The weights `sd` are exactly those of a model with state-dict shapes `own` (keys under `fresh_ok` may be
    missing); CheckpointError naming the first difference otherwise."""
    unexpected = sorted(set(sd) - set(own))
    missing = sorted(k for k in set(own) - set(sd) if not k.startswith(fresh_ok))
    if unexpected:
        raise CheckpointError(f"{where}: unexpected key(s) {_few(unexpected)}")
    if missing:
        raise CheckpointError(f"{where}: missing key(s) {_few(missing)}")
    for k, v in sd.items():
        if tuple(v.shape) != own[k]:
            raise CheckpointError(f"{where}: {k} has shape {list(v.shape)}, the model expects {list(own[k])}")


def _load_into(model: VideoMAE, sd: StateDict, fresh_ok: tuple[str, ...], where: str) -> None:
    _check_fit({k: tuple(v.shape) for k, v in model.state_dict().items()}, sd, fresh_ok, where)
    model.load_state_dict(sd, strict=False)


def _few(keys: list[str], n: int = 4) -> str:
    more = f" and {len(keys) - n} more" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


def load_model(src: str | os.PathLike, **overrides: Any) -> VideoMAE:
    """A VideoMAE from a preset name (random init), a checkpoint (tubelet dir, transformers dir, official .pth) or a
    Hub model id (`MCG-NJU/videomae-base`, `OpenGVLab/VideoMAEv2-Base@<commit>`).

    Overrides are ModelConfig fields, e.g. load_model("ckpt/", num_classes=10) builds a classifier on a
    pretrained encoder; num_frames / image_size change the token grid (learnable position tables are resampled).
    """
    if isinstance(src, str) and src in PRESETS and not Path(src).exists():
        return VideoMAE(preset(src, **overrides))
    ckpt = read_checkpoint(src, overrides)
    try:
        cfg = _apply_overrides(ckpt.config, overrides)
    except TubeletError as e:
        raise CheckpointError(f"{src}: {e}") from None
    sd = adapt_state_dict(ckpt.state_dict, ckpt.config, cfg)
    model = VideoMAE(cfg)
    _load_into(model, sd, _fresh_ok(ckpt.config, cfg), str(src))
    return model


# ---- writing --------------------------------------------------------------------------------------

def _tensors(model: VideoMAE) -> StateDict:
    return {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}


def _tubelet_files(model: VideoMAE) -> tuple[dict[str, Any], StateDict]:
    return {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, **model.config.to_dict()}, _tensors(model)


def _transformers_files(model: VideoMAE) -> tuple[dict[str, Any], StateDict]:
    return to_transformers(model.config, _tensors(model))


def _write_files(folder: Path, config: dict[str, Any], tensors: StateDict) -> None:
    """Weights, then config, each replaced atomically; other files in `folder` (a trainer state) are kept."""
    atomic_write(folder / WEIGHTS_FILE, save(tensors, metadata={"format": "pt"}))
    atomic_write(folder / CONFIG_FILE, json.dumps(config, indent=2) + "\n")


def _write_atomic(path: Path, config: dict[str, Any], tensors: StateDict) -> None:
    """A new directory appears whole; in an existing one each file is replaced atomically."""
    if path.is_dir():
        _write_files(path, config, tensors)
        return
    with atomic_dir(path) as tmp:
        _write_files(tmp, config, tensors)


def save_model(model: VideoMAE, path: str | os.PathLike, format: str = FORMAT_NAME) -> Path:
    """Write `model` to directory `path` as config.json + model.safetensors ("tubelet" or "transformers")."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise CheckpointError(f"{path}: exists and is not a directory")
    writers = {FORMAT_NAME: _tubelet_files, "transformers": _transformers_files}
    if format not in writers:
        raise CheckpointError(f"{path}: unknown checkpoint format {format!r}; choose one of {', '.join(writers)}")
    try:
        config, tensors = writers[format](model)  # fails before anything is written if the format cannot hold it
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from None
    _write_atomic(path, config, tensors)
    return path


__all__ = ["Checkpoint", "adapt_state_dict", "load_model", "read_checkpoint", "save_model"]
