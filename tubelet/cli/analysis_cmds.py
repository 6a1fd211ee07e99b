"""`tubelet analyze`: a pre-publish report on one video (a fix list, shots and transitions, pacing, dead stretches,
the opening, and against a catalog: repeats, distinctiveness over time, originality, pacing percentiles), as HTML
with pictures and JSON."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from tubelet.cli import app
from tubelet.errors import TubeletError


@app.command()
def analyze(
    video: Path = typer.Argument(..., help="The video file to analyse."),
    catalog: Path = typer.Option(None, "--catalog",
                                 help="Compare with this catalog: repeats, distinctiveness, originality."),
    out: Path = typer.Option(None, "--out", help="Report directory (default: <video name>.report beside it)."),
    threshold: float = typer.Option(None, "--threshold",
                                    help="Segment similarity that counts as the same content (default: "
                                         "calibrated on the catalog)."),
    engine: str = typer.Option(None, "--engine", help="What runs the catalog's model: torch or onnx (default: the "
                               "catalog's own)."),
    int8: bool = typer.Option(False, "--int8", help="With --engine onnx: int8 weights (must match the catalog)."),
    shots: str = typer.Option(None, "--shots",
                              help="Shot detector: fast (tubelet's, ~20× real time per CPU second here), cascade "
                                   "(fast, with TransNetV2's second opinion on a short window around each doubtful "
                                   "cut: whip pans, flashes, shake; the default where the shots extra is installed) "
                                   "or transnetv2 (the TransNetV2 model on every frame, about 0.3× real time on 2 "
                                   "cores)."),
    as_json: bool = typer.Option(False, "--json", help="Print the analysis as JSON on stdout."),
) -> None:
    """Pre-publish report: a fix list, shots and transitions (cuts, dissolves, fades, wipes), pacing, black/still
    stretches, the opening; against a catalog: repeats, distinctiveness over time, originality and pacing
    percentiles; report.html (pictures) and report.json."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from tubelet.analysis import analyze as run
    from tubelet.analysis import detector, to_json, write_report
    from tubelet.catalog.store import Catalog
    from tubelet.cli.catalog_cmds import engine_of
    from tubelet.data import probe

    if out is not None and out.exists() and not out.is_dir():
        raise TubeletError(f"{out}: exists and is not a directory; --out takes the report's directory")
    det = detector(shots)
    cat = Catalog.open(catalog) if catalog is not None else None
    total = probe(video).duration_s
    columns = [TextColumn("decoding {task.description}"), BarColumn(),
               TextColumn("{task.completed:.1f}/{task.total:.1f} s {task.fields[rate]}"), TextColumn("ETA"),
               TimeRemainingColumn()]
    with Progress(*columns, console=Console(stderr=True), disable=as_json) as bar:
        task = bar.add_task(video.name, total=total or None, rate="")
        started = time.perf_counter()

        def on_frame(t: float) -> None:
            bar.update(task, completed=t, rate=f"({t / max(time.perf_counter() - started, 1e-3):.1f}× real time)")

        videos = None

        def on_catalog_video(done: int, total_videos: int) -> None:  # catalog pacing, measured once and cached
            nonlocal videos
            if videos is None:
                videos = bar.add_task("catalog pacing", total=total_videos, rate="")
            bar.update(videos, completed=done)

        analysis, sig = run(video, cat, threshold, det, on_frame=on_frame, on_catalog_video=on_catalog_video,
                            engine=engine_of(engine, int8))
    out_dir = out or video.with_name(f"{video.name}.report")
    json_path, html_path = write_report(analysis, sig, out_dir)
    if as_json:
        typer.echo(json.dumps({**to_json(analysis), "report_html": str(html_path), "report_json": str(json_path)},
                              indent=2))
        return
    if analysis.fixes:
        typer.echo("Fix first:")
        for i, f in enumerate(analysis.fixes, 1):
            typer.echo(f"{i}. {f.start_s:.1f}–{f.end_s:.1f} s  {f.kind}: {f.reason}")
    for line in analysis.findings:
        typer.echo(f"- {line}")
    typer.echo(f"report: {html_path} (and {json_path.name})")
