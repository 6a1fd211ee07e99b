"""Classification metrics, the confusion picture and the linear-probe fit."""

from __future__ import annotations

import pytest
import torch

from tubelet.errors import TubeletError
from tubelet.train.accuracy import classification_report, format_report, save_confusion_png
from tubelet.train.linear_probe import fit_probe


def test_report_top1_top5_per_class_and_confusion():
    classes = ["a", "b", "c", "d", "e", "f"]
    scores = torch.tensor([
        [9, 1, 0, 0, 0, 0],  # a → a
        [1, 9, 0, 0, 0, 0],  # a → b (a second)
        [0, 9, 1, 0, 0, 0],  # b → b
        [0, 0, 9, 1, 0, 0],  # c → c
        [9, 8, 7, 6, 5, 0],  # f → a, f ranked last: not in the top 5
    ], dtype=torch.float32)
    labels = torch.tensor([0, 0, 1, 2, 5])
    r = classification_report(scores, labels, classes)
    assert r.top1 == pytest.approx(3 / 5)
    assert r.top5 == pytest.approx(4 / 5)
    assert r.per_class == [0.5, 1.0, 1.0, None, None, 0.0]
    assert r.mean_class_acc == pytest.approx((0.5 + 1 + 1 + 0) / 4)
    assert r.support == [2, 1, 1, 0, 0, 1]
    assert r.confusion[0] == [1, 1, 0, 0, 0, 0] and r.confusion[5][0] == 1
    d = r.to_dict()
    assert d["per_class"][3] == {"class": "d", "accuracy": None, "support": 0}
    text = format_report(r)
    assert "top-1 0.6000" in text and "f" in text.splitlines()[2]  # lowest accuracy first


def test_report_with_fewer_than_five_classes_and_bad_shapes():
    r = classification_report(torch.tensor([[0.2, 0.8], [0.9, 0.1]]), torch.tensor([0, 0]), ["x", "y"])
    assert r.top1 == 0.5 and r.top5 == 1.0
    with pytest.raises(TubeletError):
        classification_report(torch.zeros(2, 3), torch.zeros(2), ["x", "y"])
    with pytest.raises(TubeletError):
        classification_report(torch.zeros(0, 2), torch.zeros(0), ["x", "y"])


def test_confusion_png_is_written(tmp_path):
    r = classification_report(torch.eye(3), torch.tensor([0, 1, 1]), ["left", "right", "up"])
    path = save_confusion_png(r, tmp_path / "sub" / "confusion.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list((tmp_path / "sub").glob(".*tmp"))


def test_probe_separates_linearly_separable_features_and_picks_l2_on_holdout():
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(4, 16, generator=g) * 3 + 100  # far from zero: batch norm must centre them
    y = torch.arange(200) % 4
    x = centers[y] + torch.randn(200, 16, generator=g)
    fit = fit_probe(x[:160], y[:160], 4)
    assert set(fit.holdout_acc) == {1e-4, 1e-3, 1e-2, 1e-1} and fit.l2 in fit.holdout_acc
    with torch.no_grad():
        acc = (fit.probe.eval()(x[160:]).argmax(1) == y[160:]).float().mean().item()
    assert acc > 0.95


def test_probe_on_noise_is_near_chance_and_rejects_bad_labels():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(400, 32, generator=g), torch.randint(0, 4, (400,), generator=g)
    fit = fit_probe(x[:300], y[:300], 4)
    with torch.no_grad():
        acc = (fit.probe.eval()(x[300:]).argmax(1) == y[300:]).float().mean().item()
    assert acc < 0.45
    with pytest.raises(TubeletError, match="labels must be"):
        fit_probe(x, y + 4, 4)
