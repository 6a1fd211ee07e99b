"""Training-run settings: one validated dataclass per run kind, read from TOML/YAML plus `key=value` overrides.

`RunConfig` holds what every run sets (data, weights, optimisation, run length, engine, outputs) and its rules;
`PretrainConfig` adds masking and the model preset. Its defaults are the VideoMAE v1 recipe (AdamW β=(0.9, 0.95),
weight decay 0.05, base lr 1.5e-4 scaled by total batch / 256, 5 % warmup then cosine, tube masking 0.9);
`recipe()` applies the v2 recipe (dual masking, repeated augmentation, gradient clipping) for the v2 presets.
"""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml

from tubelet.atomic import atomic_write
from tubelet.config import PRESETS, ModelConfig, coerce, preset
from tubelet.errors import TubeletError
from tubelet.model.masking import Masking
from tubelet.settings import parse_set

PRECISIONS = ("auto", "bf16", "fp16", "fp32")
_MODEL_FIELDS = {f.name for f in dataclasses.fields(ModelConfig)}


@dataclass
class RunConfig:
    """The settings every training run shares, with their rules; subclasses add their recipe's fields and checks."""

    kind: ClassVar[str] = "run"  # names the run in error messages

    data: str = ""  # the videos: folder, csv/jsonl manifest or tar shards
    model: dict[str, Any] = field(default_factory=dict)  # ModelConfig overrides, e.g. {"num_frames": 8}
    init: str = ""  # start from these weights (checkpoint dir, transformers dir, official .pth)
    stride: int = 4  # frame sampling rate
    # optimisation
    batch_size: int = 8  # clips per process per micro-step
    accum_steps: int = 1
    base_lr: float = 1.5e-4  # lr = base_lr × total batch / 256, as are min_lr and warmup_lr
    min_lr: float = 1e-5
    warmup_lr: float = 1e-6
    warmup_frac: float = 0.05  # share of the run spent warming up (40 of 800 epochs)
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.95)
    clip_grad: float = 0.0  # max gradient norm; 0 = no clipping
    # run length: steps or epochs, and/or a CPU-time budget
    steps: int = 0  # optimizer steps
    epochs: int = 0
    cpu_minutes: float = 0.0  # end the session after this much CPU time (the schedule is fitted to it); 0 = off
    # engine
    precision: str = "auto"  # bf16 on GPUs and CPUs with native bf16 matmuls; fp32 on other CPUs
    compile: bool = False
    fsdp: bool = False
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    workers: int = 2
    seed: int = 0
    deterministic: bool = False
    # outputs
    save_every: int = 500  # steps between checkpoints (and one at the end)
    keep_last: int = 2
    log_every: int = 10

    def __post_init__(self) -> None:
        self.betas = tuple(float(b) for b in self.betas)  # type: ignore[assignment]
        self.validate()

    def checks(self) -> list[tuple[bool, str]]:
        """(holds, message) for every rule on the shared settings."""
        return [
            (1 <= self.stride <= 1024 and 1 <= self.batch_size <= 65536 and 1 <= self.accum_steps <= 65536,
             "stride (1–1024), batch_size and accum_steps (1–65536) out of range"),
            (self.base_lr > 0 and self.min_lr >= 0 and self.warmup_lr >= 0, "learning rates must be positive"),
            (0.0 <= self.warmup_frac < 1.0, f"warmup_frac must be in [0, 1), got {self.warmup_frac}"),
            (self.weight_decay >= 0 and self.clip_grad >= 0, "weight_decay and clip_grad must be >= 0"),
            (len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas), "betas must be two numbers in [0, 1)"),
            (self.steps >= 0 and self.epochs >= 0 and self.cpu_minutes >= 0,
             "steps, epochs and cpu_minutes must be >= 0"),
            (not (self.steps and self.epochs), "give steps or epochs, not both"),
            (self.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}"),
            (0 <= self.workers <= 256, f"workers must be in 0–256, got {self.workers}"),
            (0 <= self.seed < 2**32, f"seed must be in 0–{2**32 - 1}, got {self.seed}"),
            (self.save_every >= 1 and self.keep_last >= 1 and self.log_every >= 1,
             "save_every, keep_last and log_every must be >= 1"),
        ]

    def validate(self) -> None:
        """Raise TubeletError naming the first setting that makes no sense."""
        for ok, message in self.checks():
            if not ok:
                raise TubeletError(f"invalid {self.kind} config: {message}")
        bad = set(self.model) - _MODEL_FIELDS
        if bad:
            raise TubeletError(f"unknown model setting(s): {', '.join(sorted(bad))}")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        d["model"] = {k: list(v) if isinstance(v, tuple) else v for k, v in self.model.items()}
        return d

    def replace(self, **changes: Any) -> typing.Self:
        return self.from_dict({**self.to_dict(), **changes})

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> typing.Self:
        """A validated config from a plain dict (as read from TOML/YAML)."""
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise TubeletError(f"unknown {cls.kind} config key(s): {', '.join(sorted(unknown))}")
        if not isinstance(d.get("model", {}) or {}, dict):
            raise TubeletError("config key 'model' must be a table of model settings")
        return cls(**{k: cls._coerce(k, v) for k, v in d.items()})

    @classmethod
    def _coerce(cls, name: str, value: Any) -> Any:
        """A config value converted to its field's type, or TubeletError naming the key."""
        kind = typing.get_type_hints(cls)[name]
        try:
            if kind is bool:
                if isinstance(value, str):
                    if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                        raise ValueError(value)
                    return value.lower() in ("true", "1", "yes")
                return bool(value)
            if kind in (int, float):  # finite, and an int where one is meant (tubelet.config.coerce)
                if isinstance(value, str):
                    value = _number(value)
                return coerce(name, value, kind, f"invalid {cls.kind} config")
            if kind is str:
                return str(value)
            if kind == tuple[float, float]:
                return tuple(float(v) for v in value)
            if isinstance(value, dict):
                return dict(value)
            raise ValueError(value)
        except (TypeError, ValueError):
            raise TubeletError(f"config key {name!r}: cannot use {value!r} "
                               f"(expected {getattr(kind, '__name__', kind)})") from None

    @classmethod
    def defaults_for(cls, layers: list[dict[str, Any]]) -> dict[str, Any]:
        """Settings under all the given layers (a recipe); none by default."""
        return {}

    @classmethod
    def resolve(cls, cli: dict[str, Any], config_file: str | Path | None = None, sets: list[str] | None = None,
                base: dict[str, Any] | None = None) -> typing.Self:
        """Recipe ← base (e.g. a saved run) ← config file ← CLI options (None: not given) ← `--set` overrides."""
        file_layer = read_config_file(config_file) if config_file else {}
        cli = {k: v for k, v in cli.items() if v is not None}
        layers = [base or {}, file_layer, cli, parse_set(sets or [])]
        return cls.from_dict(merge(cls.defaults_for(layers), *layers))


@dataclass
class PretrainConfig(RunConfig):
    """Everything a pretraining run needs; saved resolved as RUN_DIR/pretrain.yaml."""

    kind: ClassVar[str] = "pretraining"

    preset: str = "vit_small"
    # clips and masking
    mask_type: str = "tube"
    mask_ratio: float = 0.9
    decoder_mask_ratio: float = 0.0  # > 0: VideoMAE v2 dual masking (running-cell decoder mask)
    repeats: int = 1  # repeated augmentation: views decoded once, masked R times (batch_size counts clips before)
    grad_checkpointing: bool = False

    def checks(self) -> list[tuple[bool, str]]:
        return [
            (self.preset in PRESETS, f"unknown preset {self.preset!r}; choose one of {', '.join(PRESETS)}"),
            (1 <= self.repeats <= 1024, f"repeats must be in 1–1024, got {self.repeats}"),
            *super().checks(),
        ]

    def validate(self) -> None:
        super().validate()
        self.masking(self.model_config().grid)  # inconsistent model overrides and masking fail here, once

    def masking(self, grid: tuple[int, int, int]) -> Masking:
        """How this run masks a model with token grid `grid` (checked when made)."""
        try:
            return Masking(grid, self.mask_type, self.mask_ratio, self.decoder_mask_ratio).require_hidden()
        except TubeletError as e:
            raise TubeletError(f"invalid {self.kind} config: {e}") from None

    def model_config(self) -> ModelConfig:
        """The model this run trains: the preset with `model` overrides (and gradient checkpointing)."""
        overrides = dict(self.model)
        if self.grad_checkpointing:
            overrides["grad_checkpointing"] = True
        cfg = preset(self.preset, **overrides)
        if not cfg.is_pretraining:
            raise TubeletError("invalid pretraining config: the model needs a decoder (model.decoder_depth > 0)")
        return cfg

    @classmethod
    def defaults_for(cls, layers: list[dict[str, Any]]) -> dict[str, Any]:
        """The recipe of the preset the layers choose."""
        name = next((lay["preset"] for lay in reversed(layers) if "preset" in lay), cls.preset)
        return recipe(str(name))


# ---- recipes --------------------------------------------------------------------------------------

# VideoMAE v2 pretraining scripts: dual masking 0.5, 4 repeats, 10 % warmup, checkpointed blocks; giant clips grads.
_V2 = {"decoder_mask_ratio": 0.5, "repeats": 4, "warmup_frac": 0.1, "grad_checkpointing": True}
RECIPES: dict[str, dict[str, Any]] = {
    "vit_huge": {"grad_checkpointing": True},
    "vit_huge_v2": {**_V2, "base_lr": 1e-3},
    "vit_giant": {**_V2, "base_lr": 6e-4, "clip_grad": 0.02},
}


def recipe(preset_name: str) -> dict[str, Any]:
    """The papers' recipe for a preset, as the fields that differ from the v1 defaults."""
    return {"preset": preset_name, **RECIPES.get(preset_name, {})}


# ---- parsing --------------------------------------------------------------------------------------

def read_config_file(path: str | Path) -> dict[str, Any]:
    """The settings in a TOML (.toml) or YAML (.yaml/.yml) file, as a dict."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise TubeletError(f"{path}: cannot read config file ({e.strerror})") from None
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as e:
        first = str(e).strip().splitlines()[0]
        raise TubeletError(f"{path}: not valid {'TOML' if path.suffix == '.toml' else 'YAML'} ({first})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise TubeletError(f"{path}: expected a mapping of settings at the top level")
    return data


def _number(text: str) -> int | float:
    """'8' → 8, '1e-4' → 0.0001 (YAML reads neither exponent nor NaN as a number); ValueError otherwise."""
    try:
        return int(text)
    except ValueError:
        return float(text)


def merge(*layers: dict[str, Any]) -> dict[str, Any]:
    """Later layers win; `model` tables merge key by key."""
    out: dict[str, Any] = {}
    for layer in layers:
        for k, v in layer.items():
            if k == "model" and isinstance(v, dict):
                out["model"] = {**out.get("model", {}), **v}
            else:
                out[k] = v
    return out


from_dict = PretrainConfig.from_dict
resolve = PretrainConfig.resolve


def save_config(cfg: RunConfig, path: str | Path) -> None:
    """Write the resolved config as YAML (readable back with --config)."""
    atomic_write(path, yaml.safe_dump(cfg.to_dict(), sort_keys=False))


__all__ = ["PretrainConfig", "RECIPES", "RunConfig", "from_dict", "merge", "read_config_file", "recipe", "resolve",
           "save_config"]
