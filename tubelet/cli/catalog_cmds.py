"""`tubelet embed`, `tubelet index add|ls|rm|stats`, `tubelet search` and `tubelet originality`."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from tubelet.cli import app
from tubelet.errors import TubeletError

index_app = typer.Typer(help="A persistent catalog of videos for `tubelet search`.", no_args_is_help=True)
app.add_typer(index_app, name="index")

CATALOG = typer.Option(..., "--catalog", help="Catalog directory.")
JSON = typer.Option(False, "--json", help="Print machine-readable JSON on stdout.")
ADDRESS = typer.Option(None, "--address", help="Ray cluster to use with --engine ray ('auto': the one this machine "
                                               "belongs to; default: start a local one).")


def _echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2))


def _options(window: float | None, stride: float | None, layer: int | None, pool: str | None,
             batch_size: int, tokens: float | None = None) -> tuple[Any, dict[str, Any]]:
    """(EmbedOptions from the flags, defaults where not given; the segmenting flags that were given)."""
    from tubelet.catalog.embed import EmbedOptions

    given = {k: v for k, v in (("window_s", window), ("stride_s", stride), ("layer", layer), ("pool", pool),
                               ("tokens", tokens)) if v is not None}
    return EmbedOptions(**given, batch_size=batch_size), given


ENGINE_HELP = ("What runs the model: torch; onnx (ONNX Runtime on the exported graph, exported once into "
               "~/.cache/tubelet; fp32 vectors match torch within 1e-4)")
RAY_HELP = ("; or ray: torch on a Ray cluster with Ray Data (decode on CPU workers, model actors on GPUs when "
            "present).")
INT8_HELP = "With --engine onnx: int8 weights (cosine ≥ 0.99 to fp32; a catalog keeps int8 and fp32 apart)."
TOKENS_HELP = ("Fraction of the tubes the encoder sees, spread evenly (0.5 = a 3-D checkerboard): faster, and "
               "another embedding space (benchmarks/embed_speed.py measures the cosine to all tokens).")


def engine_of(engine: str | None, int8: bool, address: str | None = None, batch: bool = False) -> Any:
    """An embed.Engine from --engine/--int8/--address; None (the catalog's own) when none was given. `ray` only
    for the batch commands."""
    from tubelet.catalog.embed import Engine

    if engine == "ray" and not batch:
        raise TubeletError("--engine ray is for the batch commands (embed, index add); use torch or onnx here")
    if engine is None and not int8 and address is None:
        return None
    return Engine(engine or ("onnx" if int8 else "torch"), int8, address)


def _parse_meta(items: list[str]) -> dict[str, Any]:
    from tubelet.settings import parse_set

    return parse_set(items, "--meta", "KEY=VALUE", nested=False)


def _fail_if_nothing_worked(report: Any, what: str) -> None:
    """A batch in which every input failed did nothing useful: exit ≠ 0 (after the per-file report)."""
    if report.failed and not report.added and not report.skipped:
        raise TubeletError(f"{what}: none of the {len(report.failed)} input file(s) could be used")


@contextmanager
def _progress(label: str, quiet: bool) -> Iterator[tuple[Callable[[int], None], Callable[[Any], None]]]:
    """(set total, note one outcome) callbacks driving a rich progress bar on stderr with rate and ETA; the bar
    appears once the total is known, so set-up errors print alone."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]}"), TextColumn("ETA"), TimeRemainingColumn()]
    bar = Progress(*columns, console=console, disable=quiet)
    task = bar.add_task(label, total=None, rate="")
    started = []

    def total(n: int) -> None:
        bar.update(task, total=n)
        bar.start()
        started.append(True)

    def note(o: Any) -> None:
        if o.error:
            console.print(f"[yellow]skipped[/] {o.error}")
        bar.advance(task)
        speed = bar.tasks[task].speed
        bar.update(task, rate=f"{speed * 60:.1f} videos/min" if speed else "")

    try:
        yield total, note
    finally:
        if started:
            bar.stop()


def _summary(report: Any, what: str) -> None:
    typer.echo(f"{len(report.added)} {what}, {len(report.skipped)} already there, {len(report.failed)} failed",
               err=True)
    for f in report.failed:
        typer.echo(f"  failed: {f['error']}", err=True)


MODEL_HELP = "Model: preset name (random init, seeded) or checkpoint (tubelet dir, transformers dir, .pth)."
SET_HELP = "Model config override FIELD=VALUE, e.g. num_frames=8 image_size=112."


@app.command()
def embed(
    paths: list[Path] = typer.Argument(..., help="Video files or folders of videos."),
    model: str = typer.Option(..., "--model", help=MODEL_HELP),
    out: Path = typer.Option(..., "--out", help="Parquet file (created, or extended when it exists)."),
    window: float = typer.Option(None, help="Segment window in seconds (default 2.0; an existing file keeps its "
                                             "own)."),
    stride: float = typer.Option(None, help="Seconds between window starts (default 1.0)."),
    layer: int = typer.Option(None, help="Encoder block to pool (default -1: last, normed)."),
    pool: str = typer.Option(None, help="Token pooling: mean (default) or max."),
    batch_size: int = typer.Option(8, help="Windows per forward pass."),
    overrides: list[str] = typer.Option([], "--set", help=SET_HELP),
    tokens: float = typer.Option(None, "--tokens", help=TOKENS_HELP + " Default 1 (all)."),
    engine: str = typer.Option(None, "--engine", help=ENGINE_HELP + RAY_HELP + " Default torch."),
    int8: bool = typer.Option(False, "--int8", help=INT8_HELP),
    address: str = ADDRESS,
    as_json: bool = JSON,
) -> None:
    """Per-segment and per-video embeddings (L2-normalised) of video files, with the model's identity."""
    from tubelet.catalog.indexing import embed_to_file
    from tubelet.settings import model_overrides

    opts, given = _options(window, stride, layer, pool, batch_size, tokens)
    with _progress("embedding", as_json) as (total, note):
        report = embed_to_file(out, paths, model, opts, model_overrides(overrides), note, total, given,
                               engine=engine_of(engine, int8, address, batch=True))
    if as_json:
        _echo_json({"out": str(out), **report.to_dict()})
    else:
        _summary(report, f"embedded into {out}")
    _fail_if_nothing_worked(report, str(out))


@index_app.command("add")
def index_add(
    paths: list[Path] = typer.Argument(..., help="Video files, folders of videos, or manifests (.csv/.jsonl with a "
                                                 "`path` column; other columns, e.g. uploaded_at, become metadata)."),
    catalog: Path = CATALOG,
    model: str = typer.Option(None, "--model", help=MODEL_HELP + " Needed to create a catalog; an existing "
                                                                  "one uses its own."),
    window: float = typer.Option(None, help="Segment window in seconds (new catalog; default 2.0)."),
    stride: float = typer.Option(None, help="Seconds between window starts (new catalog; default 1.0)."),
    layer: int = typer.Option(None, help="Encoder block to pool (new catalog; default -1: last, normed)."),
    pool: str = typer.Option(None, help="Token pooling: mean (default) or max (new catalog)."),
    batch_size: int = typer.Option(8, help="Windows per forward pass."),
    overrides: list[str] = typer.Option([], "--set", help=SET_HELP),
    meta: list[str] = typer.Option([], "--meta", help="Metadata KEY=VALUE stored with each video (e.g. "
                                                      "uploaded_at=2026-11-30T08:00Z, creator=ana)."),
    commit_every: int = typer.Option(8, help="Videos per atomic write to the catalog (also at least every 30 s)."),
    tokens: float = typer.Option(None, "--tokens", help=TOKENS_HELP + " New catalog (default 1); an existing one "
                                                                       "keeps its own."),
    engine: str = typer.Option(None, "--engine", help=ENGINE_HELP + RAY_HELP + " Default: the catalog's "
                                                                  "own (torch when new)."),
    int8: bool = typer.Option(False, "--int8", help=INT8_HELP),
    address: str = ADDRESS,
    as_json: bool = JSON,
) -> None:
    """Embed videos and add them to a catalog (created on first use). Re-adding the same content is a no-op."""
    from tubelet.catalog.indexing import add_to_catalog
    from tubelet.settings import model_overrides

    opts, given = _options(window, stride, layer, pool, batch_size, tokens)
    with _progress("indexing", as_json) as (total, note):
        report = add_to_catalog(catalog, paths, model, opts, model_overrides(overrides), _parse_meta(meta),
                                batch_videos=commit_every, on_outcome=note, on_files=total, given=given,
                                engine=engine_of(engine, int8, address, batch=True))
    if as_json:
        _echo_json({"catalog": str(catalog), **report.to_dict()})
    else:
        _summary(report, f"added to {catalog}")
    _fail_if_nothing_worked(report, str(catalog))


@index_app.command("ls")
def index_ls(catalog: Path = CATALOG, as_json: bool = JSON) -> None:
    """List the videos in a catalog."""
    from rich.console import Console
    from rich.table import Table

    from tubelet.catalog.store import Catalog

    videos = Catalog.open(catalog).videos()
    if as_json:
        _echo_json([v.to_dict() for v in videos])
        return
    table = Table("id", "path", "duration s", "segments", "size", "added")
    table.columns[1].overflow = "fold"
    for v in videos:
        table.add_row(v.id, v.path, f"{v.duration_s:.2f}", str(v.num_segments), f"{v.width}x{v.height}",
                      v.added_at)
    Console().print(table)


@index_app.command("rm")
def index_rm(
    ids: list[str] = typer.Argument(..., help="Video ids (see `tubelet index ls`)."),
    catalog: Path = CATALOG,
    as_json: bool = JSON,
) -> None:
    """Remove videos from a catalog (one atomic change)."""
    from tubelet.catalog.store import Catalog

    cat = Catalog.open(catalog)
    unknown = sorted(set(ids) - cat.ids())
    if unknown:
        raise TubeletError(f"{catalog}: no video with id {', '.join(unknown)}")
    removed = cat.remove(ids)
    if as_json:
        _echo_json({"removed": removed})
    else:
        typer.echo(f"removed {len(removed)} video(s) from {catalog}", err=True)


@index_app.command("stats")
def index_stats(catalog: Path = CATALOG, as_json: bool = JSON) -> None:
    """Size, model and search mode of a catalog."""
    from tubelet.catalog.store import Catalog

    st = Catalog.open(catalog).stats()
    if as_json:
        _echo_json(st)
        return
    m = st["model"]
    for key, value in [("catalog", st["catalog"]), ("videos", st["videos"]), ("segments", st["segments"]),
                       ("hours", f"{st['duration_s'] / 3600:.3f}"), ("model", f"{m['id']} ({m['source']}, "
                       f"dim {m['dim']}, layer {m['layer']}, {m['pool']} pool)"),
                       ("windows", f"{m['window_s']} s every {m['stride_s']} s"),
                       ("search", f"{st['search']} ({st['indexed_segments']} segments in the HNSW index)"),
                       ("disk", f"{st['disk_bytes'] / 2**20:.1f} MiB in {st['fragments']} fragment(s)")]:
        typer.echo(f"{key:>9}: {value}")


@app.command()
def search(
    query: str = typer.Argument(..., help="A video file, or the id of a catalog video."),
    catalog: Path = CATALOG,
    k: int = typer.Option(10, "-k", "--top", help="Videos to return."),
    start: float = typer.Option(None, "--start", help="Search with the query from this second on."),
    end: float = typer.Option(None, "--end", help="Search with the query up to this second."),
    engine: str = typer.Option(None, "--engine", help=ENGINE_HELP + ". Default: the catalog's own."),
    int8: bool = typer.Option(False, "--int8", help=INT8_HELP + " Must match the catalog."),
    as_json: bool = JSON,
) -> None:
    """Videos in the catalog that look and move like the query, with where they match (seconds)."""
    from rich.console import Console
    from rich.table import Table

    from tubelet.catalog.search import make_query
    from tubelet.catalog.search import search as run
    from tubelet.catalog.store import Catalog

    cat = Catalog.open(catalog)
    q = make_query(cat, query, start, end, engine_of(engine, int8))
    hits = run(cat, q, k)
    if as_json:
        _echo_json({**q.to_dict(), "catalog": str(catalog),
                    "score": "cosine in the catalog's whitened space, clamped to [0, 1]",
                    "results": [h.to_dict() for h in hits]})
        return
    table = Table("#", "score", "video (id)", "query → video, s", "best pair, s (score)",
                  title=f"{len(hits)} most like {q.label} [{q.starts[0]:.1f}–{q.ends[-1]:.1f} s]")
    table.columns[2].overflow = "fold"
    for h in hits:
        m, p = h.match, h.pair
        table.add_row(str(h.rank), f"{h.score:.4f}", f"{Path(h.path).name} ({h.id})",
                      f"{m.query_start_s:.1f}–{m.query_end_s:.1f} → {m.start_s:.1f}–{m.end_s:.1f}",
                      f"{p.query_start_s:.1f}–{p.query_end_s:.1f} → {p.start_s:.1f}–{p.end_s:.1f} ({p.score:.3f})")
    Console().print(table)


@app.command()
def originality(
    query: str = typer.Argument(..., help="A video file, or the id of a catalog video (compared with the others)."),
    catalog: Path = CATALOG,
    threshold: float = typer.Option(None, "--threshold",
                                    help="Segment similarity reported as the copy threshold, which `analyze` "
                                         "finds repeats with (default: calibrated on the catalog)."),
    min_run: int = typer.Option(2, "--min-run", help="Matching frame fingerprints a copied span needs."),
    min_score: float = typer.Option(0.5, "--min-score", help="Score in [0, 1) a copied span needs (0.5: about 1 s "
                                                             "of perfectly matching frames)."),
    flag_at: float = typer.Option(0.7, "--flag-at", help="Flag the video when it shares this fraction or more."),
    engine: str = typer.Option(None, "--engine", help=ENGINE_HELP + ". Default: the catalog's own."),
    int8: bool = typer.Option(False, "--int8", help=INT8_HELP + " Must match the catalog."),
    as_json: bool = JSON,
) -> None:
    """How much of a video repeats indexed videos, even re-edited (cropped, graded, captioned, re-compressed,
    mirrored, sped up or slowed down, re-framed to 9:16): originality, flag, copied spans and sources."""
    from rich.console import Console
    from rich.table import Table

    from tubelet.catalog.copies import find_copies
    from tubelet.catalog.search import make_query
    from tubelet.catalog.store import Catalog

    cat = Catalog.open(catalog)
    report = find_copies(cat, make_query(cat, query, engine=engine_of(engine, int8)), threshold, min_run, flag_at,
                         min_score)
    if as_json:
        _echo_json({**report.to_dict(), "catalog": str(catalog)})
        return
    verdict = "FLAGGED: mostly copied" if report.flagged else "original enough"
    typer.echo(f"{report.query}: originality {report.originality:.2f} — shares {report.copied_s:.1f} of "
               f"{report.compared_s:.1f} s compared ({report.share:.0%}) with the catalog; {verdict} "
               f"(flag at {report.flag_at:.0%})")
    if report.spans:
        table = Table("query, s", "source (id)", "source, s", "speed", "mirrored", "score", title="copied spans")
        table.columns[1].overflow = "fold"
        for s in report.spans:
            table.add_row(f"{s.query_start_s:.1f}–{s.query_end_s:.1f}", f"{Path(s.path).name} ({s.id})",
                          f"{s.start_s:.1f}–{s.end_s:.1f}", f"{s.speed:.2f}×", "yes" if s.mirrored else "",
                          f"{s.score:.3f}")
        Console().print(table)
