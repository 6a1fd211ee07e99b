"""Bad values a user types or a file holds, on commands whose own tests are elsewhere: one line, exit ≠ 0, nothing
half-written (issue #19)."""

import json
import os
import re

import pytest
from conftest import micro_model, run_cli

from tubelet import save_model
from tubelet.anomaly.config import AnomalyConfig
from tubelet.anomaly.normal import NormalModel
from tubelet.data.datasets import PretrainDataset
from tubelet.data.sources import list_sources
from tubelet.demo import bundled_clips
from tubelet.errors import TubeletError

CLIP = bundled_clips() / "houseplant_static_short.mp4"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "model"
    save_model(micro_model(), path)
    return path


def one_line_error(code: int, err: str, fragment: str) -> None:
    assert code in (1, 2) and "Traceback" not in err and err.count("error: ") == 1, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and fragment in last, err


@pytest.mark.timeout(120)
def test_reconstruct_refuses_what_it_cannot_write_or_read(ckpt, tmp_path, monkeypatch, capsys):
    base = ["reconstruct", CLIP, "--model", ckpt]
    for out, fragment in ((tmp_path, "--out takes the path of a .png file"),
                          (tmp_path / "notes.txt", "--out takes the path of a .png file")):
        one_line_error(*run_cli(monkeypatch, capsys, *base, "--out", out)[::2], fragment)
    for start in ("nan", "inf", "-inf"):
        code, _, err = run_cli(monkeypatch, capsys, *base, "--out", tmp_path / "a.png", "--start", start)
        one_line_error(code, err, "not a finite number of seconds")
    code, _, err = run_cli(monkeypatch, capsys, *base, "--out", tmp_path / "a.png", "--seed", str(2**64))
    assert code == 2 and "--seed" in err.strip().splitlines()[-1] and "Traceback" not in err, err
    code, _, err = run_cli(monkeypatch, capsys, *base, "--out", tmp_path / "a.png", "--mask-ratio", "0.0")
    one_line_error(code, err, "hides none of the")
    assert not list(tmp_path.glob("*.png"))


def test_analyze_refuses_a_file_as_its_report_directory(tmp_path, monkeypatch, capsys):
    (tmp_path / "report").write_text("mine")
    code, _, err = run_cli(monkeypatch, capsys, "analyze", CLIP, "--out", tmp_path / "report")
    one_line_error(code, err, "exists and is not a directory")
    assert (tmp_path / "report").read_text() == "mine"


def test_pretraining_refuses_a_mask_that_hides_nothing(tmp_path, monkeypatch, capsys):
    code, _, err = run_cli(monkeypatch, capsys, "pretrain", CLIP, "--out", tmp_path / "run", "--preset", "vit_tiny",
                           "--set", "model.num_frames=4", "--set", "model.image_size=32", "--mask-ratio", "0.0",
                           "--steps", "1", "--workers", "0")
    one_line_error(code, err, "hides none of the")


def test_a_manifest_start_past_the_end_is_reported(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"{CLIP},500,502\n{bundled_clips() / 'cockatoo_closeup.mp4'},0.5,2\n")
    ds = PretrainDataset(list_sources(manifest), num_frames=4, stride=2, image_size=32)
    sample = ds[0]
    assert sample["index"] == 1  # the second row stood in for the first
    assert any("start_s 500 is beyond the end of the video" in s for s in sample["skipped"]), sample["skipped"]
    manifest.write_text(f"{CLIP},500,502\n")
    with pytest.raises(TubeletError, match="no video in the dataset could be decoded .* start_s 500 is beyond"):
        PretrainDataset(list_sources(manifest), num_frames=4, stride=2, image_size=32)[0]


def test_a_binary_manifest_is_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "m.csv").write_bytes(os.urandom(3000))
    code, _, err = run_cli(monkeypatch, capsys, "pretrain", tmp_path / "m.csv", "--out", tmp_path / "run",
                           "--preset", "vit_tiny", "--steps", "1")
    one_line_error(code, err, "m.csv: cannot read manifest")


@pytest.mark.parametrize("args,fragment", [
    (["--set", "steps=inf"], "steps must be an integer"), (["--set", "batch_size=nan"], "batch_size must be an int"),
    (["--set", "base_lr=nan"], "base_lr must be a finite number"), (["--lr", "inf"], "base_lr must be a finite"),
    (["--set", "workers=100000"], "workers must be in 0–256"), (["--set", "model.num_heads=0"], "num_heads=0"),
    (["--set", "model.image_size=abc"], "image_size must be an integer or a pair"),
    (["--set", "clip_grad=-inf"], "clip_grad must be a finite number"), (["--steps", "99999999999999999999"], None),
    (["--seed", "99999999999999999999"], "'--seed'"), (["--set", "seed=99999999999999999999"], "seed must be in"),
])
def test_run_settings_are_finite_and_in_range(tmp_path, monkeypatch, capsys, args, fragment):
    from tubelet.train.config import PretrainConfig

    if fragment is None:  # a huge but valid run length is taken as asked (--stop-after ends a session)
        assert PretrainConfig.resolve({"steps": 99999999999999999999, "data": "x"}).steps == 99999999999999999999
        return
    code, _, err = run_cli(monkeypatch, capsys, "pretrain", CLIP, "--out", tmp_path / "run", "--preset", "vit_tiny",
                           *args)
    one_line_error(code, err, fragment)
    assert not (tmp_path / "run").exists()


def test_a_dataset_where_nothing_decodes_is_one_line_from_workers_too(tmp_path, monkeypatch, capsys):
    (tmp_path / "bad").mkdir()
    for name in ("a.mp4", "b.mp4"):
        (tmp_path / "bad" / name).write_bytes(os.urandom(5000))
    code, _, err = run_cli(monkeypatch, capsys, "pretrain", tmp_path / "bad", "--out", tmp_path / "run",
                           "--preset", "vit_tiny", "--set", "model.num_frames=4", "--set", "model.image_size=32",
                           "--set", "model.depth=1", "--steps", "1", "--batch-size", "1", "--workers", "1")
    one_line_error(code, err, "no video in the dataset could be decoded (2 tried; first: ")


def test_windows_of_one_video_are_bounded():
    from tubelet.data.sampling import MAX_WINDOWS, sliding_windows

    assert len(sliding_windows(3600.0, 2.0, 0.1)) == 35981  # an hour every 0.1 s: fine
    with pytest.raises(TubeletError, match="would be over 100,000 windows; use a longer stride"):
        sliding_windows(36_000.0, 2.0, 0.1)
    with pytest.raises(TubeletError, match="finite positive"):
        sliding_windows(10.0, 2.0, float("nan"))
    assert MAX_WINDOWS == 100_000


def test_a_shard_row_with_a_nan_start_is_refused(tmp_path):
    import io
    import tarfile

    with tarfile.open(tmp_path / "s.tar", "w") as tar:
        for name, data in (("a.mp4", CLIP.read_bytes()), ("a.json", json.dumps({"start_s": float("nan")}).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(TubeletError, match="start_s .* must be a finite"):
        list_sources(tmp_path / "s.tar")


def test_an_unwritable_destination_is_one_line_for_analyze_reconstruct_and_pretrain(ckpt, tmp_path, monkeypatch,
                                                                                      capsys):
    from conftest import unwritable_dir

    ro = unwritable_dir(tmp_path)
    for args in (("analyze", CLIP, "--out", ro / "report"), ("analyze", CLIP, "--out", ro),
                 ("reconstruct", CLIP, "--model", ckpt, "--out", ro / "a.png"),
                 ("reconstruct", CLIP, "--model", ckpt, "--out", ro / "new" / "a.png"),
                 ("pretrain", CLIP, "--out", ro / "run", "--preset", "vit_tiny", "--set", "model.num_frames=4",
                  "--set", "model.image_size=32", "--steps", "1", "--workers", "0")):
        code, _, err = run_cli(monkeypatch, capsys, *args)
        one_line_error(code, err, f"error: {ro}")


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_a_jsonl_row_with_a_non_finite_start_is_refused(tmp_path, value):
    (tmp_path / "m.jsonl").write_text(f'{{"path": "{CLIP}", "start_s": 0}}\n{{"path": "{CLIP}", "start_s": {value}}}\n')
    with pytest.raises(TubeletError, match=r"m.jsonl:2: start_s .* must be a finite, non-negative") as e:
        list_sources(tmp_path / "m.jsonl")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("change,message", [
    (lambda m: m["config"].update(rate_hz=1e9), r"rate_hz must be in 0.1–240, got 1e\+09"),  # looped for ever
    (lambda m: m["config"].update(rate_hz=float("nan")), "rate_hz must be a finite number, got nan"),
    (lambda m: m["config"].update(bin_s=float("inf")), "bin_s must be a finite number, got inf"),
    (lambda m: m["config"].update(short_side="abc"), "short_side must be an integer, got 'abc'"),
    (lambda m: m["config"].update(cell=0), "cell must be in 1–1024, got 0"),
    (lambda m: m["config"].update(bank_cells=10**12), r"bank_cells must be in 1–1e\+06"),
    (lambda m: m.update(frame_size=[100000, 100000]), r"frame_size \[100000, 100000\] must be within"),  # 28 GiB
    (lambda m: m.update(frame_size=[1, 2, 3]), "frame_size must be an integer or a pair"),
    (lambda m: m.pop("config"), "config is missing"), (lambda m: m.update(config=None), "config is missing"),
    (lambda m: m.update(config=[1]), "config must be an object"),
    (lambda m: m.pop("calibration"), "calibration is missing"),
    (lambda m: m["calibration"].update(combined_p99=float("nan")), "combined_p99 must be a finite number"),
    (lambda m: m["calibration"]["scale"].update(frozen=0), "calibration scales must be positive"),
    (lambda m: m["calibration"].update(median="x"), "calibration.median must be an object of numbers"),
])
def test_an_edited_anomaly_model_is_refused_before_it_is_used(tmp_path, monkeypatch, capsys, change, message):
    """anomaly.json of a MODEL_DIR is a file anyone may edit: absurd values were loops that never ended, 28 GiB
    frames, or tracebacks (KeyError, ZeroDivisionError) in `anomaly score`."""
    model = NormalModel.fresh(AnomalyConfig(), (96, 176), None)
    model.calibration.scale["frozen"] = 0.3
    model.save(tmp_path / "cam")
    manifest = json.loads((tmp_path / "cam" / "anomaly.json").read_text())
    change(manifest)
    (tmp_path / "cam" / "anomaly.json").write_text(json.dumps(manifest))
    code, _, err = run_cli(monkeypatch, capsys, "anomaly", "score", CLIP, "--normal", tmp_path / "cam",
                           "--out", tmp_path / "report")
    one_line_error(code, err, f"error: {tmp_path / 'cam' / 'anomaly.json'}: ")
    assert re.search(message, err), err


@pytest.mark.parametrize("value", ["inf", "1e308", "nan", "99999999999999999999"])
def test_serve_refuses_an_unbounded_upload_size(tmp_path, monkeypatch, capsys, value):
    """inf and 1e308 MB were an OverflowError traceback (int(inf)); 1e20 MB was no limit at all."""
    code, _, err = run_cli(monkeypatch, capsys, "serve", "--catalog", tmp_path / "c", "--port", "0",
                           "--max-upload-mb", value)
    assert code == 2 and "Traceback" not in err and err.count("error: ") == 1, err
    assert "'--max-upload-mb'" in err.strip().splitlines()[-1], err
