"""The one source lister: folders, manifests (with metadata and checked times), tar shards."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tubelet.data.sources import VIDEO_EXTENSIONS, Source, list_sources, write_shards
from tubelet.errors import TubeletError


def _touch(*paths: Path) -> None:
    for p in paths:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")


def test_folder_one_extension_list_sorted_and_symlink_loops_listed_once(tmp_path: Path) -> None:
    _touch(tmp_path / "b" / "2.m2ts", tmp_path / "a" / "1.OGG", tmp_path / "a" / "0.gif", tmp_path / "top.mp4",
           tmp_path / "a" / "notes.txt", tmp_path / "a" / ".hidden.mp4")
    os.symlink(tmp_path, tmp_path / "a" / "loop")  # a link back to the top: a cycle
    found = list_sources(tmp_path)
    assert [Path(s.path).relative_to(tmp_path).as_posix() for s in found] == ["top.mp4", "a/0.gif", "a/1.OGG",
                                                                           "b/2.m2ts"]
    assert [s.label for s in found] == [None, "a", "a", "b"]
    assert {".ogg", ".m2ts", ".gif", ".mp4"} <= VIDEO_EXTENSIONS


def test_manifest_columns_metadata_relative_paths_and_root(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "a.csv").write_text("path,label,start_s,end_s,split,channel,views\n"
                                          "v/x.mp4,run,1,2.5,Train,news,12\n/abs/y.mp4,,,,,,\n")
    x, y = list_sources(tmp_path / "m" / "a.csv")
    meta = {"channel": "news", "views": "12"}
    assert x == Source(str(tmp_path / "m" / "v" / "x.mp4"), "run", 1.0, 2.5, "train", meta)
    assert y.path == "/abs/y.mp4" and y.label is None and y.start_s is None and y.meta == {"channel": "", "views": ""}
    assert list_sources(tmp_path / "m" / "a.csv", root=tmp_path)[0].path == str(tmp_path / "v" / "x.mp4")
    (tmp_path / "b.csv").write_text("x.mp4,walk,0,3,val\nz.mp4,1.5,4\nmy clip.mp4\n")
    rows = list_sources(tmp_path / "b.csv")
    assert [(r.label, r.start_s, r.end_s, r.split) for r in rows] == [("walk", 0.0, 3.0, "val"), (None, 1.5, 4.0, ""),
                                                                        (None, None, None, "")]
    assert rows[2].path.endswith("my clip.mp4")
    (tmp_path / "list.txt").write_text("x.avi 3\ny.avi jump\n")  # the official VideoMAE lists
    assert [r.label for r in list_sources(tmp_path / "list.txt")] == ["3", "jump"]
    (tmp_path / "c.jsonl").write_text(json.dumps({"path": "x.mp4", "label": 2, "start_s": 0.5, "tags": ["a"]}) + "\n")
    (j,) = list_sources(tmp_path / "c.jsonl")
    assert j.label == "2" and j.start_s == 0.5 and j.meta == {"tags": '["a"]'}


@pytest.mark.parametrize("row, match", [
    ("a.mp4,run,3,1", "b.csv:2: end_s 1.0 is not after start_s 3.0"),
    ("a.mp4,run,nan,4", "b.csv:2: start_s 'nan' must be a finite"),
    ("a.mp4,run,-1,4", "b.csv:2: start_s '-1' must be a finite, non-negative"),
    ("a.mp4,run,1,inf", "b.csv:2: end_s 'inf' must be a finite"),
    ("a.mp4,run,x,4", "b.csv:2: start_s 'x' is not a number"),
    ("a.mp4,run,1,4,holdout", "b.csv:2: split 'holdout'"),
    (",run,1,4", "b.csv:2: empty path"),
    ("a,b,c,d,e,f", "b.csv:2: expected path"),
])
def test_bad_rows_are_one_line_errors_naming_file_and_row(tmp_path: Path, row: str, match: str) -> None:
    (tmp_path / "b.csv").write_text("ok.mp4,run\n" + row + "\n")
    with pytest.raises(TubeletError, match=match) as e:
        list_sources(tmp_path / "b.csv")
    assert "\n" not in str(e.value)


def test_shards_keep_times_split_and_metadata(tmp_path: Path) -> None:
    _touch(tmp_path / "x.mp4", tmp_path / "y.webm")
    src = [Source(str(tmp_path / "x.mp4"), "run", 1.0, 2.0, "val", {"channel": "news"}),
           Source(str(tmp_path / "y.webm"))]
    (shard,) = write_shards(src, tmp_path / "shards")
    back = list_sources(tmp_path / "shards")
    assert [(b.label, b.start_s, b.end_s, b.split) for b in back] == [("run", 1.0, 2.0, "val"), (None, None, None, "")]
    assert back[0].meta == {"channel": "news", "source": str(tmp_path / "x.mp4")}
    assert back[0].name == f"{shard}:000000000.mp4" and back[1].input() == b"x"
    assert not list(tmp_path.glob("shards/.*"))  # no temp file left behind


def test_missing_and_unknown_inputs(tmp_path: Path) -> None:
    with pytest.raises(TubeletError, match="no such file"):
        list_sources(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(TubeletError, match="no video files"):
        list_sources(tmp_path / "empty")
    (tmp_path / "e.csv").write_text("# only a comment\n")
    with pytest.raises(TubeletError, match="e.csv: manifest lists no videos"):
        list_sources(tmp_path / "e.csv")
    with pytest.raises(TubeletError, match="no files match"):
        list_sources(str(tmp_path / "*.tar"))
