"""`tubelet anomaly fit` and `tubelet anomaly score`: unusual events in a fixed camera's footage, learned from
normal footage only."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import typer

from tubelet.cli import app
from tubelet.errors import TubeletError

anomaly_app = typer.Typer(help="Unusual events in a fixed camera's footage, learned from normal footage only.",
                          no_args_is_help=True)
app.add_typer(anomaly_app, name="anomaly")


def _bar(quiet: bool):  # noqa: ANN202 (a rich Progress)
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    columns = [TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[what]}"), TextColumn("ETA"),
               TimeRemainingColumn()]
    return Progress(*columns, console=Console(stderr=True), disable=quiet)


def _duration(video: str) -> float | None:
    """The container's duration for the progress bar (None when it cannot tell)."""
    from tubelet.data import probe

    try:
        return probe(video).duration_s or None
    except TubeletError:
        return None  # scoring reports the reason


@anomaly_app.command("fit")
def fit(
    normal: list[Path] = typer.Argument(..., help="Normal footage of one camera: files or folders."),
    out: Path = typer.Option(..., "--out", help="MODEL_DIR to write (replaced whole if it exists)."),
    model: str = typer.Option("none", "--model",
                              help="Add the MAE detectors: a preset such as vit_tiny (fixed random init) or a "
                                   "pretraining checkpoint, adapted to the camera (default none: the frame detectors "
                                   "alone, which measured better; see the README)."),
    adapt_steps: int = typer.Option(None, "--adapt-steps", help="Adaptation steps on the normal footage "
                                                                "(default 100; 0 keeps the model as it is)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
) -> None:
    """Learn what normal looks like for one camera; everything the detectors need goes to MODEL_DIR."""
    from tubelet.anomaly.config import AnomalyConfig
    from tubelet.anomaly.fit import fit_normal
    from tubelet.anomaly.normal import NormalModel

    NormalModel.check_target(out)  # before the work, not after
    cfg = AnomalyConfig() if adapt_steps is None else AnomalyConfig(adapt_steps=adapt_steps)
    if cfg.adapt_steps < 0:
        raise TubeletError(f"--adapt-steps must be ≥ 0, got {cfg.adapt_steps}")
    started = time.perf_counter()
    with _bar(as_json) as bar:
        tasks: dict[str, int] = {}

        def progress(stage: str, done: float, total: float) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total, what="")
            rate = done / max(time.perf_counter() - started, 1e-3)
            what = f"{done:.0f}/{total:.0f} s of video" if stage == "reading" else f"{done:.0f}/{total:.0f}"
            bar.update(tasks[stage], completed=done, total=total, what=f"{what} ({rate:.1f}/s)")

        normal_model = fit_normal(normal, model, cfg, progress)
    normal_model.save(out)
    info = normal_model.info
    for line in info["fit"]["warnings"]:
        typer.echo(f"warning: {line}", err=True)
    summary = {"model_dir": str(out), "normal_s": round(sum(v["duration_s"] for v in info["normal"]), 2),
               "videos": len(info["normal"]), "detectors": normal_model.names, **info["fit"]}
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo(f"normal model: {out} ({summary['normal_s']:.0f} s of normal footage from {summary['videos']} "
               f"video(s); detectors: {', '.join(normal_model.names)}; {summary['seconds']:.0f} s)")


@anomaly_app.command("score")
def score(
    videos: list[str] = typer.Argument(..., help="Videos, growing files (with --follow) or rtsp:// / http:// URLs."),
    normal: Path = typer.Option(..., "--normal", help="MODEL_DIR written by `tubelet anomaly fit`."),
    out: Path = typer.Option(Path("anomaly-report"), "--out",
                             help="Directory for the timeline pictures and anomaly.json."),
    threshold: float = typer.Option(None, "--threshold",
                                    help="Event threshold on the calibrated score (1.0 = the normal footage's 99th "
                                         "percentile; default 1.5)."),
    follow: bool = typer.Option(False, "--follow", help="Files are still being written: wait at their end for more."),
    idle: float = typer.Option(5.0, "--idle", help="With --follow: a file that has not grown for this many seconds "
                                                   "has ended."),
    as_json: bool = typer.Option(False, "--json", help="Print the JSON document on stdout (events as they happen "
                                                       "go to stderr)."),
) -> None:
    """Score every segment of new footage and report unusual events (start, end, score, kind) as they happen,
    with a timeline picture per video."""
    from tubelet.anomaly.normal import NormalModel
    from tubelet.anomaly.score import score_source
    from tubelet.anomaly.timeline import draw_timeline
    from tubelet.atomic import atomic_write

    model = NormalModel.load(normal)
    thr = model.config.threshold if threshold is None else threshold
    if not 0 < thr < float("inf"):
        raise TubeletError(f"--threshold must be a positive number, got {thr}")
    if not 0 <= idle < float("inf"):
        raise TubeletError(f"--idle must be a non-negative number of seconds, got {idle}")
    say = (lambda line: print(line, file=sys.stderr, flush=True)) if as_json else \
        (lambda line: print(line, flush=True))
    docs, failed = [], []
    bar = _bar(as_json)
    bar.start()
    for video in videos:
        name = Path(video).name if "://" not in video else video
        live = follow or "://" in video
        task = bar.add_task(name, total=None if live else _duration(video), what="")
        began = time.perf_counter()

        def advance(seg, task=task, began=began) -> None:  # noqa: ANN001
            rate = seg.end_s / max(time.perf_counter() - began, 1e-3)
            bar.update(task, completed=seg.end_s, what=f"{seg.end_s:.0f} s ({rate:.1f}× real time)")

        def opened(e, name=name) -> None:  # noqa: ANN001
            say(f"{name}  {e.start_s:7.1f} s  {e.kind} started (score {e.score:.2f})")

        def closed(e, name=name) -> None:  # noqa: ANN001
            say(f"{name}  {e.start_s:7.1f}–{e.end_s:.1f} s  {e.kind}  score {e.score:.2f}")

        try:
            result = score_source(model, video, follow, idle, thr, opened, closed, advance)
        except TubeletError as e:
            print(f"error: {e}", file=sys.stderr)
            failed.append(video)
            continue
        finally:
            bar.remove_task(task)
        picture = draw_timeline(result, thr, out / f"{len(docs):02d}_{Path(name).stem}.timeline.png")
        docs.append({**result.to_dict(), "timeline": str(picture)})
        say(f"{name}: {len(result.events)} event(s) in {result.duration_s:.1f} s "
            f"({result.duration_s / max(result.seconds, 1e-9):.1f}× real time); timeline {picture}")
    bar.stop()
    document = {"videos": docs, "threshold": thr}
    atomic_write(out / "anomaly.json", json.dumps(document, indent=2) + "\n")
    if as_json:
        typer.echo(json.dumps(document, indent=2))
    if failed:
        raise TubeletError(f"{len(failed)} of {len(videos)} video(s) could not be scored (see above)")
