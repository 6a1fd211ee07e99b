"""Labelled sources, class lists and train/val splits for downstream tasks.

Manifests, folders and shards are listed by `tubelet.data.sources` (`path,label[,start_s,end_s][,split]` rows,
official `path label` lists, JSON Lines, class sub-folders); this module turns their labels into classes.
Labels are class names or integer ids. The class list is a text file (one name per line, line i = id i) or a
JSON list / {name: id} map; without one, the classes are the sorted distinct names (or ids 0..max when every
label is an integer).
"""

from __future__ import annotations

import csv
import json
import os
import random
import re
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

from tubelet.atomic import atomic_open, atomic_write
from tubelet.data.sources import Source, list_sources
from tubelet.errors import TubeletError

_INT = re.compile(r"^-?\d+$")


@dataclass
class LabelSet:
    """Labelled sources (each label one of `classes`) with their class list; `missing` holds listed paths that
    were not found on disk."""

    classes: list[str]
    examples: list[Source]
    missing: list[str] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def ids(self) -> list[int]:
        """Each example's class id."""
        index = {c: i for i, c in enumerate(self.classes)}
        return [index[str(e.label)] for e in self.examples]

    def subset(self, split: str) -> LabelSet:
        return LabelSet(self.classes, [e for e in self.examples if e.split == split], self.missing)

    def counts(self) -> list[int]:
        """Examples per class id."""
        out = [0] * self.num_classes
        for i in self.ids():
            out[i] += 1
        return out


# ---- class lists ----------------------------------------------------------------------------------

def read_class_list(path: str | Path) -> list[str]:
    """Class names in id order from a text file (one per line) or JSON (a list, or a {name: id} map)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise TubeletError(f"{path}: cannot read class list ({getattr(e, 'strerror', None) or e})") from None
    if path.suffix == ".json":
        return _classes_from_json(text, path)
    names = [line.strip() for line in text.splitlines() if line.strip()]
    if not names:
        raise TubeletError(f"{path}: class list is empty")
    _check_unique(names, path)
    return names


def _classes_from_json(text: str, path: Path) -> list[str]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise TubeletError(f"{path}: not valid JSON ({e.msg}, line {e.lineno})") from None
    if isinstance(data, list) and data and all(isinstance(n, str) for n in data):
        names = [n.strip() for n in data]
    elif isinstance(data, dict) and data and all(isinstance(v, int) for v in data.values()):
        ids = sorted(data.values())
        if ids != list(range(len(ids))):
            raise TubeletError(f"{path}: class ids must be 0..{len(ids) - 1}, each once")
        names = [name for name, _ in sorted(data.items(), key=lambda kv: kv[1])]
    else:
        raise TubeletError(f"{path}: expected a JSON list of class names or a {{name: id}} object")
    _check_unique(names, path)
    return names


def _check_unique(names: list[str], path: Path) -> None:
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise TubeletError(f"{path}: class {n!r} listed twice")
        seen.add(n)


def write_class_list(classes: list[str], path: str | Path) -> None:
    atomic_write(path, "".join(f"{c}\n" for c in classes))


# ---- labelled sources -----------------------------------------------------------------------------

def _resolve_labels(sources: list[Source], classes: list[str] | None, where: str) -> tuple[list[str], list[Source]]:
    """The class list and every source's label as one of its names (integer labels are ids into the list)."""
    unlabelled = [s.name for s in sources if s.label is None]
    if unlabelled:
        raise TubeletError(f"{where}: {len(unlabelled)} video(s) without a label (e.g. {unlabelled[0]}); "
                           "expected `path,label` rows, class sub-folders or a labels manifest")
    names = [str(s.label) for s in sources]
    if classes is None:
        if all(_INT.match(n) for n in names):
            ids = [int(n) for n in names]
            if min(ids) < 0:
                raise TubeletError(f"{where}: negative class id {min(ids)}")
            classes = [str(i) for i in range(max(ids) + 1)]
        else:
            classes = sorted(set(names))
    known = set(classes)
    out = []
    for s, n in zip(sources, names, strict=True):
        if n not in known:
            if not (_INT.match(n) and 0 <= int(n) < len(classes)):
                raise TubeletError(f"{where}: {s.name}: label {n!r} is not in the class list ({len(classes)} classes)")
            n = classes[int(n)]
        out.append(replace(s, label=n))
    return classes, out


def read_labels(source: str | Path, root: str | Path | None = None, classes: list[str] | None = None) -> LabelSet:
    """The labelled videos of a manifest, a folder with class sub-folders or labelled shards; relative manifest
    paths start from `root` (default: the manifest's folder). Listed files that do not exist are left out and
    named in `missing`; none found at all is an error."""
    sources = list_sources(source, root)
    classes, sources = _resolve_labels(sources, classes, str(source))
    missing = [s.path for s in sources if s.member is None and not os.path.isfile(s.path)]
    present = [s for s in sources if s.member is not None or os.path.isfile(s.path)]
    if not present:
        raise TubeletError(f"{source}: none of the {len(sources)} listed files exist (first: {missing[0]})")
    return LabelSet(classes, present, missing)


def write_manifest(examples: list[Source], path: str | Path) -> None:
    """A CSV manifest with a header (path, label, start_s, end_s, split, then the metadata columns), atomically."""
    extra = sorted({k for e in examples for k in e.meta})
    with atomic_open(path, "w") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "start_s", "end_s", "split", *extra])
        for e in examples:
            w.writerow([e.path, e.label or "", "" if e.start_s is None else e.start_s,
                        "" if e.end_s is None else e.end_s, e.split, *(e.meta.get(k, "") for k in extra)])


def load_labels(data: str | None, manifest: str | None, classes: list[str] | None = None) -> LabelSet:
    """A manifest's labels (relative paths from `data`), or without a manifest the labels `data` carries."""
    if manifest:
        return read_labels(manifest, data or None, classes)
    if not data:
        raise TubeletError("give the labelled videos: a folder with class sub-folders, or a labels manifest")
    return read_labels(data, None, classes)


# ---- splits ---------------------------------------------------------------------------------------

def split_train_val(labels: LabelSet, val_frac: float, seed: int = 0) -> tuple[LabelSet, LabelSet]:
    """(train, val): the manifest's own `split` column when it has one, else a stratified random split that
    puts round(val_frac × n) clips of each class (at least one when the class has two or more) in val."""
    if any(e.split for e in labels.examples):
        train, val = labels.subset("train"), labels.subset("val")
        if not train.examples:
            raise TubeletError("the manifest's split column marks no clip as train")
        return train, val
    if not 0.0 <= val_frac < 1.0:
        raise TubeletError(f"val fraction must be in [0, 1), got {val_frac}")
    by_class: dict[int, list[Source]] = defaultdict(list)
    for e, i in zip(labels.examples, labels.ids(), strict=True):
        by_class[i].append(e)
    rng = random.Random(seed)
    train, val = [], []
    for label in sorted(by_class):
        group = by_class[label][:]
        rng.shuffle(group)
        n_val = round(val_frac * len(group))
        if val_frac > 0 and n_val == 0 and len(group) >= 2:
            n_val = 1
        val += [replace(e, split="val") for e in group[:n_val]]
        train += [replace(e, split="train") for e in group[n_val:]]
    return LabelSet(labels.classes, train, labels.missing), LabelSet(labels.classes, val, labels.missing)


__all__ = ["LabelSet", "load_labels", "read_class_list", "read_labels", "split_train_val", "write_class_list",
           "write_manifest"]
