"""The `tubelet` command: one typer app; each command module registers its commands on it."""

from __future__ import annotations

import os
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
from tubelet.cli import export_cmds  # noqa: E402, F401
from tubelet.cli import anomaly_cmds  # noqa: E402, F401
from tubelet.cli import serve_cmds  # noqa: E402, F401
from tubelet.cli import insights_cmds  # noqa: E402, F401


def main() -> None:
    """Console entry point: every failure is one line `error: <what>: <why>` on stderr and exit ≠ 0 (TubeletError,
    file-system errors, usage errors; anything else is a bug, reported in one line unless TUBELET_DEBUG is set)."""
    import click

    try:
        app(standalone_mode=False)
    except TubeletError as e:
        _fail(str(e), 1)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except SystemExit:
        raise
    except (click.exceptions.ClickException, typer.TyperException) as e:  # usage errors (typer's own click too)
        message = e.format_message() if hasattr(e, "format_message") else str(e)
        _fail(f"{message} (see `{_command_line()} --help`)", getattr(e, "exit_code", 2))
    except (click.exceptions.Abort, typer.Abort):
        sys.exit(1)
    except OSError as e:  # unreadable input, read-only output folder, a directory where a file was meant, …
        why = (e.strerror or str(e)).lower() + (f" ({e.filename2})" if e.filename2 else "")
        _fail(f"{e.filename}: {why}" if e.filename else why, 1)
    except Exception as e:
        if os.environ.get("TUBELET_DEBUG"):
            raise
        _fail(f"internal error: {type(e).__name__}: {str(e).strip() or 'no message'} (set TUBELET_DEBUG=1 for the "
              f"traceback, and please report it)", 2)


def _command_line() -> str:
    """`tubelet` and the sub-command words of this call (up to its first option or argument value)."""
    commands = typer.main.get_command(app)
    words = ["tubelet"]
    for arg in sys.argv[1:]:
        sub = getattr(commands, "commands", {}).get(arg)
        if sub is None:
            break
        words.append(arg)
        commands = sub
    return " ".join(words)


def _fail(message: str, code: int) -> None:
    """Print `error: <the message's first line>` and exit; an error raised again from a DataLoader worker carries
    the worker's traceback in its message, and its last line is the reason."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith("Caught ") and "worker" in lines[0]:
        lines = [lines[-1].split(": ", 1)[-1]]
    print(f"error: {lines[0] if lines else 'failed'}", file=sys.stderr)
    sys.exit(code)
