"""tubelet.atomic: a file or directory appears whole or not at all."""

import pytest

from tubelet.atomic import atomic_dir, atomic_open, atomic_write
from tubelet.errors import TubeletError


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    p = tmp_path / "sub" / "a.json"
    atomic_write(p, "one")
    atomic_write(p, b"two")
    assert p.read_text() == "two"
    assert [x.name for x in p.parent.iterdir()] == ["a.json"]


def test_failed_write_keeps_the_old_content(tmp_path):
    p = tmp_path / "a.txt"
    atomic_write(p, "old")
    with pytest.raises(RuntimeError), atomic_open(p) as f:
        f.write("half")
        raise RuntimeError("killed")
    assert p.read_text() == "old"
    assert [x.name for x in tmp_path.iterdir()] == ["a.txt"]


def test_atomic_dir_swaps_whole(tmp_path):
    d = tmp_path / "ckpt"
    with atomic_dir(d) as t:
        (t / "x").write_text("1")
    with atomic_dir(d) as t:
        (t / "y").write_text("2")
    assert sorted(x.name for x in d.iterdir()) == ["y"]
    with pytest.raises(RuntimeError), atomic_dir(d) as t:
        (t / "z").write_text("3")
        raise RuntimeError("killed")
    assert sorted(x.name for x in d.iterdir()) == ["y"]
    assert sorted(x.name for x in tmp_path.iterdir()) == ["ckpt"]


def test_a_directory_in_the_way_is_a_one_line_error(tmp_path):
    (tmp_path / "out").mkdir()
    with pytest.raises(TubeletError, match="is a directory"):
        atomic_write(tmp_path / "out", "x")
