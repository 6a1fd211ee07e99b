"""A bounded fuzz of every command's options (discovered from the typer app, so commands added later are covered):
NaN, infinities, negatives, zero, huge numbers and wrong types. Each call runs in a forked copy of this process
under a time limit, and must end with exit 0, or with one line `error: …` and exit ≠ 0 — never a traceback or a
hang. A sample runs by default; the whole sweep is slow."""

import contextlib
import io
import multiprocessing
import os
import random
import shutil
import sys
import time
from pathlib import Path

import pytest
import torch
import typer
from conftest import micro_model

from tubelet import VideoMAE, preset, save_model
from tubelet.catalog.embed import EmbedOptions
from tubelet.catalog.indexing import add_to_catalog
from tubelet.catalog.store import Catalog
from tubelet.cli import app
from tubelet.demo import bundled_clips

VALUES = ["nan", "inf", "-inf", "-1", "0", "1e308", "99999999999999999999", "abc", ""]
SET_VALUES = ["x", "=1", "num_frames=nan", "image_size=abc", "depth=1e9", "model.num_heads=0", "steps=inf"]
LIMIT_S = 120  # per call; a busy shared machine is slow, a hang is forever
# Commands whose quickest valid call is long: the demo pretrains, then indexes every bundled clip (~100 s busy)
LONG_LIMIT_S = {("demo",): 600}
CLIP = bundled_clips() / "houseplant_static_short.mp4"
SMALL = {"num_frames": 4, "image_size": 32, "depth": 1}
# Options whose huge valid values ask for that much work (train that long): sent only values that must be refused.
WORK = {("demo", "--steps"), ("demo", "--minutes"), ("pretrain", "--stop-after"), ("finetune", "--stop-after")}
# Servers run until stopped: reaching the time limit is their success (their output is still checked).
SERVERS = {("serve",)}
SERVED_S = 3


def commands() -> list[tuple[tuple[str, ...], object]]:
    """(words, click command) of every command of the app, sub-commands included."""
    out = []

    def walk(cmd, words):
        subs = getattr(cmd, "commands", None)
        if subs is None:
            out.append((words, cmd))
        for name, sub in (subs or {}).items():
            walk(sub, (*words, name))

    walk(typer.main.get_command(app), ())
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Files a valid call of each command needs: a clip, checkpoints, a catalog, labelled videos."""
    tmp = tmp_path_factory.mktemp("fuzz")
    save_model(micro_model(), tmp / "ckpt")
    save_model(VideoMAE(preset("vit_tiny", **SMALL, decoder_depth=0, num_classes=2, class_names=["a", "b"])),
               tmp / "cls")
    for label, names in (("a", ["houseplant_static_short.mp4", "cockatoo_closeup.mp4"]),
                         ("b", ["bottles_static_table.mp4", "flower_timelapse.mp4"])):
        (tmp / "data" / label).mkdir(parents=True)
        for name in names:
            (tmp / "data" / label / name).symlink_to(bundled_clips() / name)
    add_to_catalog(tmp / "catalog", [CLIP], "vit_tiny", EmbedOptions(), SMALL)
    return {"tmp": tmp, "id": next(iter(Catalog.open(tmp / "catalog").ids()))}


def baseline(words: tuple[str, ...], cmd, world, call_dir: Path) -> list[str]:
    """A call of `words` that is valid and quick: every required parameter filled, work kept to one step."""
    tmp = world["tmp"]
    catalog = call_dir / "catalog"
    shutil.copytree(tmp / "catalog", catalog)
    fill = {"checkpoint": tmp / "ckpt", "src": tmp / "ckpt", "dst": call_dir / "out", "video": CLIP, "query": CLIP,
            "paths": CLIP, "ids": world["id"], "catalog": catalog, "model": tmp / "ckpt",
            "out": call_dir / ("out.png" if words == ("reconstruct",) else "out.parquet" if words == ("embed",)
                               else "out"),
            "data": tmp / "data" if words in (("finetune",), ("evaluate",)) else CLIP, "target": tmp / "data"}
    extra = {("serve",): ["--port", "0"],
             ("pretrain",): ["--steps", "1", "--stop-after", "1", "--workers", "0", "--batch-size", "1"],
             ("finetune",): ["--init", tmp / "ckpt", "--steps", "1", "--stop-after", "1", "--workers", "0",
                             "--batch-size", "2", "--val-frac", "0.5"],
             ("evaluate",): ["--model", tmp / "cls", "--clips", "1", "--crops", "1"],
             ("probe",): ["--init", tmp / "ckpt"], ("demo",): ["--steps", "1"],
             ("embed",): ["--model", "vit_tiny", *[f"--set={k}={v}" for k, v in SMALL.items()]]}
    args, options = [], []
    for p in cmd.params:
        if not p.required and p.name != "out":  # an optional --out too: nothing is written beside the inputs
            continue
        value = fill.get(p.name, "x")
        if getattr(p, "param_type_name", "") == "option":
            if p.opts[0] not in extra.get(words, []):
                options += [p.opts[0], value]
        else:
            args.append(value)
    return [*words, *map(str, args), *map(str, options), *map(str, extra.get(words, []))]


def fuzz_calls() -> list[tuple[tuple[str, ...], str, str]]:
    """(command words, option, value) for every option that takes a value, and every bad value."""
    calls = []
    for words, cmd in commands():
        for p in cmd.params:
            if getattr(p, "param_type_name", "") != "option" or getattr(p, "is_flag", False):
                continue
            flag = p.opts[0]
            values = SET_VALUES if flag in ("--set", "--meta") else VALUES
            for value in values:
                if (words[0], flag) in WORK and value in ("1e308", "99999999999999999999"):
                    continue
                calls.append((words, flag, value))
    return calls


def _child(argv: list[str], out: str, err: str, cwd: str) -> None:
    """Run the CLI entry point with `argv` in `cwd` (a fuzzed relative path lands there, not in the repository),
    stdout/stderr to files; unexpected exceptions show as tracebacks."""
    from tubelet.cli import main

    os.chdir(cwd)
    os.environ["TUBELET_DEBUG"] = "1"
    torch.set_num_threads(1)
    code = 0
    with open(out, "w") as fo, open(err, "w") as fe, contextlib.redirect_stdout(fo), contextlib.redirect_stderr(fe):
        sys.argv = ["tubelet", *argv]
        sys.stdin = io.StringIO("")
        try:
            main()
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        except BaseException:
            import traceback

            traceback.print_exc()
            code = 99
        fo.flush()
        fe.flush()
    os._exit(code)


def run_call(argv: list[str], call_dir: Path, server: bool = False, limit_s: float = LIMIT_S) -> tuple[int | None, str]:
    """(exit code or None when it had to be stopped at the time limit, stderr). A server is stopped SERVED_S after
    it says it is serving (it has checked its options and bound its port by then)."""
    out, err = call_dir / "stdout", call_dir / "stderr"
    proc = multiprocessing.get_context("fork").Process(target=_child, args=(argv, str(out), str(err), str(call_dir)))
    proc.start()
    deadline = time.monotonic() + limit_s
    while proc.is_alive() and time.monotonic() < deadline:
        proc.join(0.2)
        if server and err.exists() and "serving " in err.read_text():
            deadline = min(deadline, time.monotonic() + SERVED_S)
    if proc.is_alive():
        proc.kill()
        proc.join()
        return None, err.read_text() if err.exists() else ""
    return proc.exitcode, err.read_text() if err.exists() else ""


def check(call, world, tmp_path) -> str | None:
    """None when the call behaved, else what went wrong."""
    words, flag, value = call
    call_dir = tmp_path / f"call-{abs(hash(call))}"
    call_dir.mkdir()
    cmd = dict(commands())[words]
    argv = baseline(words, cmd, world, call_dir) + [f"{flag}={value}"]
    limit_s = LONG_LIMIT_S.get(words, LIMIT_S)
    code, err = run_call(argv, call_dir, server=words in SERVERS, limit_s=limit_s)
    shown = " ".join(argv)
    if "Traceback" in err or code == 99:
        return f"{shown}: traceback\n{err[-1500:]}"
    if code is None:
        return None if words in SERVERS else f"{shown}: still running after {limit_s} s"
    if code != 0:
        lines = [line for line in err.strip().splitlines() if line.strip()]
        if not lines or not lines[-1].startswith("error: ") or sum(line.startswith("error:") for line in lines) != 1:
            return f"{shown}: exit {code} without one `error: …` line\n{err[-800:]}"
    return None


def sample(n: int) -> list:
    """n calls, every command at least once (seeded: the same sample every run)."""
    calls, rng = fuzz_calls(), random.Random(19)
    by_command: dict = {}
    for c in calls:
        by_command.setdefault(c[0], []).append(c)
    picked = [rng.choice(cs) for cs in by_command.values()]
    rest = [c for c in calls if c not in picked]
    return picked + rng.sample(rest, max(0, n - len(picked)))


def test_every_command_is_fuzzed():
    words = {w for w, _ in commands()}
    fuzzed = {c[0] for c in fuzz_calls()}
    assert {("search",), ("index", "add"), ("pretrain",), ("reconstruct",)} <= words
    assert words - fuzzed <= {("models",), ("info",), ("index", "ls"), ("index", "stats"), ("index", "rm")}, \
        words - fuzzed  # commands without value options have nothing to fuzz


@pytest.mark.timeout(1800)
def test_a_sample_of_bad_option_values_never_crashes_or_hangs(world, tmp_path):
    problems = [p for p in (check(c, world, tmp_path) for c in sample(0)) if p]  # one call of each command
    assert not problems, "\n\n".join(problems)


@pytest.mark.slow
@pytest.mark.timeout(6 * 3600)
def test_every_bad_option_value_never_crashes_or_hangs(world, tmp_path):
    problems = [p for p in (check(c, world, tmp_path) for c in fuzz_calls()) if p]
    assert not problems, f"{len(problems)} of {len(fuzz_calls())} calls:\n\n" + "\n\n".join(problems)
