"""Fault injection: `tubelet index add` and `tubelet index rm` killed (SIGKILL, via strace's syscall injection) on
entering each rename and fsync they make; after every kill the catalog opens, holds each video whole or not at all,
and running the same command again completes. The full sweep is slow; one point of each command runs by default."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tubelet.catalog.store import Catalog
from tubelet.demo import bundled_clips

SYSCALLS = ("rename", "renameat", "renameat2", "fsync", "fdatasync")
CLIPS = [bundled_clips() / name for name in ("houseplant_static_short.mp4", "cockatoo_closeup.mp4")]
MODEL = ["--model", "vit_tiny", "--set", "num_frames=4", "--set", "image_size=32", "--set", "depth=1"]
TUBELET = [sys.executable, "-c", "from tubelet.cli import main; main()"]
ENV = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}  # no .pyc renames of Python's own among the kill points


def strace_works() -> bool:
    if not shutil.which("strace"):
        return False
    return subprocess.run(["strace", "-qq", "-o", os.devnull, "true"], capture_output=True).returncode == 0


pytestmark = pytest.mark.skipif(not strace_works(), reason="strace missing or ptrace not permitted")


def add_args(root: Path) -> list[str]:
    return ["index", "add", *map(str, CLIPS), "--catalog", str(root), *MODEL, "--commit-every", "1"]


def run(args: list[str], inject: tuple[str, int] | None = None, trace: Path | None = None) -> int:
    """The CLI in a fresh process (main thread traced): killed on entering the n-th call of `inject`'s syscall, or
    every rename/fsync written to `trace`."""
    strace = ["strace", "-qq", "-o", str(trace or os.devnull)]
    if inject:
        name, n = inject
        strace += ["-e", f"trace={name}", "-e", f"inject={name}:signal=KILL:when={n}"]
    else:
        strace += ["-e", "trace=" + ",".join(SYSCALLS)]
    return subprocess.run(strace + TUBELET + args, env=ENV, capture_output=True, timeout=600).returncode


def kill_points(trace: Path) -> list[tuple[str, int]]:
    """(syscall, n) for every rename and fsync the traced run made, in order."""
    counts: dict[str, int] = {}
    points = []
    for line in trace.read_text().splitlines():
        m = re.match(r"(\w+)\(", line)
        if m and m.group(1) in SYSCALLS:
            counts[m.group(1)] = counts.get(m.group(1), 0) + 1
            points.append((m.group(1), counts[m.group(1)]))
    return points


def contents(root: Path) -> dict[str, tuple[int, np.ndarray]]:
    """Each video of the catalog: (segments listed, its segment vectors); opening it must work."""
    cat = Catalog.open(root)
    seg = cat.segments()
    owner = np.asarray(seg.ids)[seg.video] if len(seg.ids) else np.zeros(0, str)
    return {v.id: (v.num_segments, seg.vectors[owner == v.id]) for v in cat.videos()}


def assert_whole(root: Path, reference: dict[str, tuple[int, np.ndarray]], where: str) -> None:
    """Every video listed is one of the reference's, with all of its segments and their vectors."""
    for vid, (n, vecs) in contents(root).items():
        assert vid in reference, (where, vid)
        ref_n, ref_vecs = reference[vid]
        assert n == ref_n == len(vecs), (where, vid, n, len(vecs))
        np.testing.assert_allclose(vecs, ref_vecs, atol=1e-5, err_msg=where)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A clean traced `index add`: the catalog it makes, its videos and the rename/fsync points it passed."""
    tmp = tmp_path_factory.mktemp("faults")
    root, trace = tmp / "ref", tmp / "add.trace"
    assert run(add_args(root), trace=trace) == 0
    want = contents(root)
    assert len(want) == len(CLIPS)
    return root, want, kill_points(trace)


@pytest.fixture(scope="module")
def rm_points(reference, tmp_path_factory):
    """The rename/fsync points of a clean traced `index rm` of every video."""
    probe, trace = tmp_path_factory.mktemp("rm-probe") / "c", tmp_path_factory.mktemp("rm-trace") / "rm.trace"
    shutil.copytree(reference[0], probe)
    assert run(["index", "rm", *sorted(reference[1]), "--catalog", str(probe)], trace=trace) == 0
    return kill_points(trace)


def killed_add(tmp: Path, reference, point: tuple[str, int]) -> None:
    _, want, _ = reference
    root = tmp / f"add-{point[0]}-{point[1]}"
    code = run(add_args(root), inject=point)
    assert code != 0, f"{point}: the run was not killed"
    where = f"index add killed at {point[0]} #{point[1]}"
    if Catalog.exists(root):
        assert_whole(root, want, where)
    rerun = subprocess.run(TUBELET + add_args(root) + ["--json"], env=ENV, capture_output=True, text=True)
    assert rerun.returncode == 0, (where, rerun.stderr)
    got = contents(root)
    assert sorted(got) == sorted(want), where
    assert_whole(root, want, where)
    assert json.loads(rerun.stdout)["failed"] == []


def killed_rm(tmp: Path, reference, point: tuple[str, int]) -> None:
    ref_root, want, _ = reference
    root = tmp / f"rm-{point[0]}-{point[1]}"
    shutil.copytree(ref_root, root)
    ids = sorted(want)
    assert run(["index", "rm", *ids, "--catalog", str(root)], inject=point) != 0, f"{point}: not killed"
    where = f"index rm killed at {point[0]} #{point[1]}"
    assert_whole(root, want, where)
    left = sorted(contents(root))
    if left:
        rerun = subprocess.run(TUBELET + ["index", "rm", *left, "--catalog", str(root)], env=ENV, capture_output=True,
                               text=True)
        assert rerun.returncode == 0, (where, rerun.stderr)
    assert contents(root) == {}, where


def test_a_killed_index_add_and_rm_leave_whole_videos(reference, tmp_path):
    renames = [p for p in reference[2] if p[0].startswith("rename")]
    # creation; per commit a fragment and the manifest, and the normalisation once two videos are in
    assert len(renames) == 1 + len(CLIPS) * 2 + len(CLIPS) - 1
    killed_add(tmp_path, reference, renames[len(renames) // 2])  # between the two videos' commits
    killed_rm(tmp_path, reference, (renames[0][0], 1))  # before its commit's rename


@pytest.mark.slow
def test_index_add_killed_at_every_rename_and_fsync(reference, tmp_path):
    assert {name for name, _ in reference[2]} >= {"fsync"} and len(reference[2]) >= 3 * (1 + len(CLIPS))
    for point in reference[2]:
        killed_add(tmp_path, reference, point)


@pytest.mark.slow
def test_index_rm_killed_at_every_rename_and_fsync(reference, rm_points, tmp_path):
    assert any(name.startswith("rename") for name, _ in rm_points) and any(n == "fsync" for n, _ in rm_points)
    for point in rm_points:
        killed_rm(tmp_path, reference, point)
