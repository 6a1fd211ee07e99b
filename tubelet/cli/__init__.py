"""The `tubelet` command: one typer app; each command module registers its commands on it."""

from __future__ import annotations

import sys

import typer

from tubelet.errors import TubeletError

app = typer.Typer(
    name="tubelet",
    help="Video Masked Autoencoders: pretrain, fine-tune, embed, search.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Command modules attach themselves to `app` on import (one line each).
from tubelet.cli import model_cmds  # noqa: E402, F401, I001 (one line per module)
from tubelet.cli import train_cmds  # noqa: E402, F401
from tubelet.cli import catalog_cmds  # noqa: E402, F401
from tubelet.cli import downstream_cmds  # noqa: E402, F401
from tubelet.cli import analysis_cmds  # noqa: E402, F401
from tubelet.cli import serve_cmds  # noqa: E402, F401


def main() -> None:
    """Console entry point: run the app, turning TubeletError into `error: …` and exit 1."""
    try:
        app(standalone_mode=False)
    except TubeletError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except FileNotFoundError as e:
        print(f"error: {e.filename}: no such file", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as e:  # click usage errors arrive here in non-standalone mode
        import click

        if isinstance(e, click.exceptions.ClickException):
            e.show()
            sys.exit(e.exit_code)
        if isinstance(e, click.exceptions.Abort):
            sys.exit(1)
        raise
