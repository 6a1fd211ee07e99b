"""`tubelet distill`: a student learns the teacher's features on real clips and a classifier teacher's predictions on
a synthetic task; resume and the run directory through the engine."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import VIDEOS, run_cli

from tubelet import VideoMAE, load_model, preset, save_model
from tubelet.data import ClipDataset, Source, list_sources, make_loader
from tubelet.data.synthetic import write_video
from tubelet.model.masking import Masking
from tubelet.train.distill import PROJECTOR, Distiller, resample
from tubelet.train.metrics import read_metrics
from tubelet.train.run_state import latest_checkpoint, load_trainer_state

TEACHER = {"num_frames": 8, "image_size": 64, "depth": 4, "decoder_depth": 0}
# narrower, shallower, fewer frames, smaller clips: every way a student may differ
STUDENT = {"num_frames": 4, "image_size": 48, "depth": 2, "embed_dim": 96, "num_heads": 3, "mlp_dim": 384}
TEACHER_STEPS = 150
COLOURS = {"red": (200, 40, 40), "green": (40, 200, 40), "blue": (40, 40, 200)}


def _sets(model: dict) -> list[str]:
    return sum([["--set", f"model.{k}={v}"] for k, v in model.items()], [])


def _clips(sources: list, frames: int, size: int) -> torch.Tensor:
    """The centre clip (centre crop) of every source at the given geometry → [N, 3, T, S, S]."""
    ds = ClipDataset([Source(s.path, "x") for s in sources], num_frames=frames, stride=2, image_size=size,
                     train=False)
    return torch.cat([b["video"] for b in make_loader(ds, 8, workers=0, shuffle=False, drop_last=False)])


def _neighbours(x: torch.Tensor, k: int) -> torch.Tensor:
    """Indices [N, k] of each row's k nearest other rows by cosine."""
    x = F.normalize(x, dim=1)
    sim = x @ x.T
    sim.fill_diagonal_(-2)
    return sim.topk(k, dim=1).indices


def agreement(distiller: Distiller, teacher: VideoMAE, clips: torch.Tensor, k: int = 5) -> tuple[float, float]:
    """(mean cosine of the projected student features and the teacher's normed features, pooled per clip;
    nearest-neighbour overlap@k of the student's and the teacher's own clip embeddings)."""
    s = distiller.student.config
    with torch.no_grad():
        t_tokens = teacher.encode(clips)
        target = F.layer_norm(t_tokens, t_tokens.shape[-1:]).mean(1)
        small = resample(clips, s.num_frames, s.image_size[0])
        projected = distiller.eval()(small)[0].mean(1)
        cosine = F.cosine_similarity(projected, target).mean().item()
        nt, ns = _neighbours(teacher.embed(clips), k), _neighbours(distiller.student.embed(small), k)
    overlap = np.mean([len(set(a.tolist()) & set(b.tolist())) / k for a, b in zip(nt, ns, strict=True)])
    return cosine, float(overlap)


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory) -> Path:
    """A teacher that has learned something about the real clips: a vit_tiny pretrained (masked reconstruction,
    tube masks 0.75, raw pixels) on their centre clips, in memory, until its loss fell well below its start; its clip
    neighbourhoods are its own, not a random network's (a random teacher shares a random student's colour
    statistics, which made the nearest-neighbour check weak)."""
    torch.manual_seed(0)
    clips = _clips(list_sources(VIDEOS), TEACHER["num_frames"], TEACHER["image_size"])
    model = VideoMAE(preset("vit_tiny", **{**TEACHER, "decoder_depth": 1, "decoder_dim": 96, "decoder_heads": 3,
                                           "decoder_mlp_dim": 384, "norm_pix_loss": False}))
    masking = Masking(model.config.grid, "tube", 0.75)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.05)
    g = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(TEACHER_STEPS):
        video = clips[torch.randint(len(clips), (8,), generator=g)]
        flip = torch.rand(8, generator=g) < 0.5
        video = torch.where(flip[:, None, None, None, None], video.flip(-1), video)
        loss = model(video, **masking.draw(8, g)).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    first, last = np.mean(losses[:10]), np.mean(losses[-10:])
    assert last < 0.5 * first, f"the teacher did not learn: loss {first:.4f} → {last:.4f}"
    teacher = VideoMAE(preset("vit_tiny", **TEACHER))
    teacher.encoder.load_state_dict(model.encoder.state_dict())
    torch.manual_seed(0)
    untrained = VideoMAE(preset("vit_tiny", **TEACHER)).eval()
    with torch.no_grad():
        own = _neighbours(teacher.eval().embed(clips), 5), _neighbours(untrained.embed(clips), 5)
    shared = np.mean([len(set(a.tolist()) & set(b.tolist())) / 5 for a, b in zip(*own, strict=True)])
    assert shared < 0.8, f"the teacher's neighbourhoods are still a random network's ({shared:.2f} shared)"
    path = tmp_path_factory.mktemp("teacher") / "vit_tiny"
    save_model(teacher, path)
    return path


@pytest.mark.slow  # ~2.5 CPU minutes: the teacher (20 s), 60 distillation steps over every real clip, both models again
def test_distilled_student_agrees_with_the_teacher_better_than_its_init(teacher_dir, tmp_path, monkeypatch,
                                                                        capsys):
    """On the real clips (the shared set, or the bundled clips): cosine and nearest-neighbour overlap rise above
    the student's random initialisation; a stopped run resumes to the same end."""
    sources = list_sources(VIDEOS)
    data = tmp_path / "clips"
    data.mkdir()
    for s in sources:
        (data / Path(s.path).name).symlink_to(s.path)
    out = tmp_path / "run"
    args = ["distill", "--teacher", teacher_dir, "--student", "vit_tiny", data, "--out", out, "--steps", "60",
            "--batch-size", "8", "--lr", str(2e-3 * 256 / 8), "--workers", "0", "--stride", "2", "--precision", "fp32",
            "--save-every", "30", "--json", *_sets(STUDENT), "--set", "log_every=10"]
    code, stdout, err = run_cli(monkeypatch, capsys, *args, "--stop-after", "30")
    assert code == 0, err
    code, stdout, err = run_cli(monkeypatch, capsys, "distill", "--out", out, "--resume", "--json")
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["step"] == 60 and summary["finished"] and summary["last_loss"] < summary["first_loss"]
    assert [r["step"] for r in read_metrics(out) if "loss" in r] == [10, 20, 30, 40, 50, 60]
    assert "teacher:" in (out / "distill.yaml").read_text()

    teacher = load_model(teacher_dir).eval()
    ckpt = latest_checkpoint(out)
    student = load_model(ckpt)  # a plain model directory: deployable as it is
    assert student.config.depth == 2 and student.config.embed_dim == 96 and not student.config.is_pretraining
    trained = Distiller(student, teacher.config.embed_dim, teacher.config.grid)
    trained.projector.load_state_dict(load_trainer_state(ckpt)[PROJECTOR])
    torch.manual_seed(0)  # the run's seed: the same initial student and projection
    init = Distiller(load_model("vit_tiny", decoder_depth=0, **STUDENT), teacher.config.embed_dim, teacher.config.grid)
    clips = _clips(sources, 8, 64)
    cos_init, nn_init = agreement(init, teacher, clips)
    cos_trained, nn_trained = agreement(trained, teacher, clips)
    print(f"{len(sources)} clips: cosine {cos_init:.3f} → {cos_trained:.3f}, NN overlap@5 {nn_init:.3f} → "
          f"{nn_trained:.3f}")
    assert cos_trained > cos_init + 0.2 and cos_trained > 0.5
    assert nn_trained > nn_init


@pytest.fixture(scope="module")
def colour_task(tmp_path_factory) -> tuple[Path, Path]:
    """Clips whose class is their dominant colour, and a teacher classifier for it: a random vit_tiny encoder with a
    head fitted to its pooled features."""
    root = tmp_path_factory.mktemp("colours")
    rng = np.random.default_rng(1)
    (root / "clips").mkdir()
    for i in range(48):
        name = list(COLOURS)[i % 3]
        base = np.array(COLOURS[name], dtype=np.float64) * rng.uniform(0.6, 1.2)
        frames = base + rng.normal(0, 30, size=(8, 40, 48, 3))
        write_video(root / "clips" / f"{i:02d}.mp4", frames.clip(0, 255).astype(np.uint8))
    (root / "clips" / "labels.csv").write_text("path,label\n" + "".join(
        f"{i:02d}.mp4,{list(COLOURS)[i % 3]}\n" for i in range(48)))
    torch.manual_seed(0)
    teacher = VideoMAE(preset("vit_tiny", num_frames=4, image_size=32, depth=2, decoder_depth=0, num_classes=3,
                              class_names=sorted(COLOURS)))
    labelled = list_sources(root / "clips" / "labels.csv")
    clips = _clips(labelled, 4, 32)
    y = torch.tensor([sorted(COLOURS).index(s.label) for s in labelled])
    with torch.no_grad():
        feats = teacher.pool(teacher.encode(clips))
    opt = torch.optim.Adam(teacher.head.parameters(), lr=0.05)
    for _ in range(200):
        opt.zero_grad()
        F.cross_entropy(teacher.head(feats), y).backward()
        opt.step()
    assert (teacher.head(feats).argmax(1) == y).float().mean() > 0.9
    save_model(teacher, root / "teacher")
    return root / "clips", root / "teacher"


def test_classifier_student_reaches_the_teacher_predictions(colour_task, tmp_path, monkeypatch, capsys):
    """Without labels: the student's head learns the teacher's soft predictions (KL at τ=2) on unlabelled clips."""
    data, teacher_dir = colour_task
    (data / "labels.csv").rename(tmp_path / "labels.csv")  # unlabelled: only the teacher teaches
    out = tmp_path / "run"
    code, stdout, err = run_cli(monkeypatch, capsys, "distill", "--teacher", teacher_dir, "--student", "vit_tiny", data,
                                "--out", out, "--steps", "40", "--batch-size", "8", "--lr", str(2e-3 * 256 / 8),
                                "--workers", "0", "--stride", "2", "--precision", "fp32", "--json",
                                "--set", "temperature=2", *_sets({"depth": 1, "num_frames": 4, "image_size": 48}))
    (tmp_path / "labels.csv").rename(data / "labels.csv")
    assert code == 0, err
    teacher, student = load_model(teacher_dir).eval(), load_model(json.loads(stdout)["checkpoint"]).eval()
    assert student.config.class_names == sorted(COLOURS) and student.config.depth == 1
    torch.manual_seed(0)
    init = load_model("vit_tiny", decoder_depth=0, depth=1, num_frames=4, image_size=48, num_classes=3).eval()
    clips = _clips(list_sources(data), 4, 32)
    with torch.no_grad():
        want = teacher(clips).logits.argmax(1)
        small = resample(clips, 4, 48)
        before = (init(small).logits.argmax(1) == want).float().mean().item()
        after = (student(small).logits.argmax(1) == want).float().mean().item()
    print(f"agreement with the teacher's predictions: {before:.2f} → {after:.2f}")
    assert after >= 0.95 and after > before + 0.15


@pytest.mark.parametrize("args, fragment", [
    (["--student", "vit_tiny", "{data}", "--steps", "1"], "--teacher"),
    (["--teacher", "nowhere/model", "--student", "vit_tiny", "{data}", "--steps", "1"], "nowhere/model"),
    (["--teacher", "vit_tiny", "--student", "vit_tiny", "{data}", "--steps", "1", "--set", "temperature=0"],
     "temperature"),
])
def test_bad_distill_input_is_one_error_line(args, fragment, tmp_path, monkeypatch, capsys):
    args = [str(a).format(data=VIDEOS) for a in args]
    code, out, err = run_cli(monkeypatch, capsys, "distill", *args, "--out", tmp_path / "run")
    assert code == 1 and err.startswith("error:") and fragment in err and "Traceback" not in err, err
