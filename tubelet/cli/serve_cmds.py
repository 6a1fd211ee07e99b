"""`tubelet serve`: the HTTP API and web page over a catalog (FastAPI on uvicorn)."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

import typer

from tubelet.cli import app
from tubelet.errors import TubeletError


def is_loopback(host: str) -> bool:
    """True when `host` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(a[4][0]).is_loopback for a in socket.getaddrinfo(host, None))
        except OSError:
            return False


@app.command()
def serve(
    catalog: Path = typer.Option(..., "--catalog", help="Catalog directory (created empty with --model)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="Port (0: any free one)."),
    token: str = typer.Option(None, "--token", envvar="TUBELET_TOKEN", show_envvar=True,
                              help="Token that adding and removing videos need (without one, writes are off)."),
    public: bool = typer.Option(False, "--public", help="Allow a non-local --host without a token (read-only)."),
    model: str = typer.Option(None, "--model", help="Create the catalog with this model when it does not exist."),
    overrides: list[str] = typer.Option([], "--set", help="Model config override FIELD=VALUE (with --model)."),
    max_upload_mb: float = typer.Option(200.0, "--max-upload-mb", min=0.001, max=1e6,
                                        help="Largest upload accepted (up to 1e6 MB)."),
    readers: int = typer.Option(1, "--jobs", min=1, max=64, help="Upload jobs run at once (each uses the model)."),
    anomaly: Path = typer.Option(None, "--anomaly", help="A camera's normal model (`tubelet anomaly fit`): enables "
                                                         "POST /api/anomaly."),
) -> None:
    """Serve a catalog over HTTP: API (docs at /docs) and a web page at / to search, check originality and
    analyse uploads, and browse the catalog."""
    import uvicorn

    from tubelet.catalog.embed import EmbedOptions, load_embedder
    from tubelet.catalog.store import Catalog
    from tubelet.serve import ServeSettings, create_app
    from tubelet.settings import model_overrides

    if not token and not public and not is_loopback(host):
        raise TubeletError(f"refusing to listen on {host} without a token: anyone who can reach it could use it. "
                           "Give --token (or TUBELET_TOKEN), or --public to serve it read-only")
    if token is not None and len(token) < 8:
        raise TubeletError("--token must be at least 8 characters")
    if not Catalog.exists(catalog):
        if model is None:
            raise TubeletError(f"{catalog}: not a tubelet catalog; give --model to create an empty one")
        opts = EmbedOptions()
        Catalog.create(catalog, load_embedder(model, **model_overrides(overrides)).info(opts))
    application = create_app(ServeSettings(catalog, token or None, int(max_upload_mb * 2**20), readers,
                                           anomaly=anomaly))
    typer.echo(f"serving {catalog} on http://{host}:{port}/ (API docs at /docs; writes "
               f"{'need the token' if token else 'off'})", err=True)
    uvicorn.run(application, host=host, port=port, log_level="warning")
