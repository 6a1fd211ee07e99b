"""The command starts light: `tubelet --help` lists every command without loading torch (the package's names load
on first use and each command imports what it runs)."""

import subprocess
import sys
from pathlib import Path

import tubelet

EXE = Path(sys.executable).parent / "tubelet"


def test_help_lists_commands_without_loading_torch():
    code = "import sys, tubelet.cli; print(sorted(m for m in ('torch', 'av', 'sklearn') if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
    out = subprocess.run([str(EXE), "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("pretrain", "finetune", "distill", "index", "originality", "analyze", "serve", "anomaly"):
        assert command in out


def test_package_names_load_on_first_use():
    assert set(tubelet.__all__) <= set(dir(tubelet))
    assert tubelet.Catalog.__name__ == "Catalog" and tubelet.preset("vit_tiny").depth == 12
    try:
        tubelet.not_a_name  # noqa: B018
    except AttributeError as e:
        assert "not_a_name" in str(e)
    else:
        raise AssertionError("an unknown name must raise AttributeError")
