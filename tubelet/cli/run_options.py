"""The options every training command shares (run length, batch, optimiser, engine, checkpoints, resume), declared
once: `@run_options` adds them to a command, which receives them as one `run: RunOptions`."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from tubelet.errors import TubeletError

# parameter → (type, option, config key; None: not a config setting)
SHARED: dict[str, tuple[Any, Any, str | None]] = {
    "out": (Path, typer.Option(..., "--out", help="Run directory: resolved config, metrics, checkpoints."), None),
    "config": (Path, typer.Option(None, help="TOML or YAML file of settings (a run's saved RUN_DIR/*.yaml is one)."),
               None),
    "steps": (int, typer.Option(None, help="Optimizer steps to train."), "steps"),
    "epochs": (int, typer.Option(None, help="Epochs to train (instead of --steps)."), "epochs"),
    "resume": (bool, typer.Option(False, "--resume", help="Continue the run in --out from its last checkpoint."),
               None),
    "set_": (list[str], typer.Option(None, "--set", help="Override any setting: key=value, model.<field>=value."),
             None),
    "batch_size": (int, typer.Option(None, help="Clips per process per micro-step."), "batch_size"),
    "accum": (int, typer.Option(None, help="Micro-steps accumulated per optimizer step."), "accum_steps"),
    "lr": (float, typer.Option(None, help="Base learning rate (scaled by total batch / 256)."), "base_lr"),
    "clip_grad": (float, typer.Option(None, help="Max gradient norm (0 = off)."), "clip_grad"),
    "precision": (str, typer.Option(None, help="auto (bf16 on GPUs and CPUs with native bf16, else "
                                               "fp32), bf16, fp16 (grad scaler) or fp32."), "precision"),
    "workers": (int, typer.Option(None, help="Data-loading worker processes."), "workers"),
    "seed": (int, typer.Option(None, min=0, max=2**32 - 1), "seed"),
    "device": (str, typer.Option(None, help="auto, cpu, cuda or cuda:N."), "device"),
    "fsdp": (bool, typer.Option(None, "--fsdp", help="Shard the model with FSDP (under torchrun)."), "fsdp"),
    "compile_": (bool, typer.Option(None, "--compile", help="torch.compile the model."), "compile"),
    "deterministic": (bool, typer.Option(None, "--deterministic", help="Deterministic algorithms (reproducible)."),
                      "deterministic"),
    "save_every": (int, typer.Option(None, help="Steps between checkpoints (fine-tuning scores each on the "
                                                "validation clips)."), "save_every"),
    "keep": (int, typer.Option(None, help="Checkpoints kept."), "keep_last"),
    "stop_after": (int, typer.Option(0, help="End this session after N steps (checkpointed); --resume continues."),
                   None),
    "json_": (bool, typer.Option(False, "--json", help="Print a JSON summary on stdout."), None),
}


@dataclass
class RunOptions:
    """The shared options of one call: where the run goes, how it resumes, and the settings given."""

    out: Path
    config_file: Path | None
    resume: bool
    sets: list[str]
    stop_after: int
    json: bool
    settings: dict[str, Any]  # config key → value given on the command line (None: not given)

    def resolve(self, config_cls: Any, own: dict[str, Any], saved_name: str) -> Any:
        """The run's config: `config_cls.resolve` over the command's own settings and the shared ones, on top of
        the saved config of the run in --out when resuming."""
        base = self._saved(saved_name, config_cls.kind) if self.resume else None
        return config_cls.resolve({**own, **self.settings}, self.config_file, self.sets, base=base)

    def _saved(self, name: str, kind: str) -> dict[str, Any]:
        """The saved config to resume; a new --steps or --epochs replaces the saved run length."""
        from tubelet.train.config import read_config_file

        saved = self.out / name
        if not saved.is_file():
            raise TubeletError(f"{self.out}: not a {kind} run directory (no {name}); nothing to resume")
        base = read_config_file(saved)
        if self.settings["steps"] is not None:
            base["epochs"] = 0
        if self.settings["epochs"] is not None:
            base["steps"] = 0
        return base


def run_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give `command` (which takes `run: RunOptions` besides its own options) the shared options."""
    own = inspect.signature(command, eval_str=True)
    params = [p for p in own.parameters.values() if p.name != "run"]
    params += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=kind)
               for name, (kind, option, _) in SHARED.items()]

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> None:
        given = {name: kwargs.pop(name) for name in SHARED}
        run = RunOptions(given["out"], given["config"], given["resume"], given["set_"] or [], given["stop_after"],
                         given["json_"], {key: given[name] for name, (_, _, key) in SHARED.items() if key})
        command(**kwargs, run=run)

    wrapper.__signature__ = own.replace(parameters=params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    return wrapper


__all__ = ["RunOptions", "run_options"]
