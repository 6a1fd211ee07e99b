"""Label manifests, class lists and train/val splits for downstream tasks.

A manifest lists one clip per row with its label, as
- CSV with a header naming `path` and `label` (optional `start_s`, `end_s`, `split`),
- headerless `path label` rows separated by a comma or whitespace (the official VideoMAE list files),
- JSON Lines with the same keys.
Labels are class names or integer ids. The class list is a text file (one name per line, line i = id i) or a
JSON list / {name: id} map; without one, the classes are the sorted distinct names (or ids 0..max when every
label is an integer).
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from tubelet.data import list_videos
from tubelet.errors import TubeletError

SPLITS = ("train", "val", "test")
_INT = re.compile(r"^-?\d+$")


@dataclass(frozen=True)
class Example:
    """One labelled clip: a video file, a class id, an optional time span and split name."""

    path: str
    label: int
    start_s: float | None = None
    end_s: float | None = None
    split: str = ""


@dataclass
class LabelSet:
    """Examples with their class list; `missing` holds manifest paths that were not found on disk."""

    classes: list[str]
    examples: list[Example]
    missing: list[str] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def subset(self, split: str) -> LabelSet:
        return LabelSet(self.classes, [e for e in self.examples if e.split == split], self.missing)

    def counts(self) -> list[int]:
        """Examples per class id."""
        out = [0] * self.num_classes
        for e in self.examples:
            out[e.label] += 1
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
    Path(path).write_text("".join(f"{c}\n" for c in classes), encoding="utf-8")


# ---- manifests ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Row:
    path: str
    label: str
    start_s: float | None
    end_s: float | None
    split: str
    line: int


def _float_or_none(value: object, where: str) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise TubeletError(f"{where}: {value!r} is not a number of seconds") from None


def _row(d: dict, where: str, line: int) -> _Row:
    path, label = d.get("path"), d.get("label")
    if path is None or str(path).strip() == "" or label is None or str(label).strip() == "":
        raise TubeletError(f"{where}: row needs a path and a label")
    split = str(d.get("split") or "").strip().lower()
    if split and split not in SPLITS:
        raise TubeletError(f"{where}: split {split!r} is not one of {', '.join(SPLITS)}")
    start, end = _float_or_none(d.get("start_s"), where), _float_or_none(d.get("end_s"), where)
    if start is not None and end is not None and end <= start:
        raise TubeletError(f"{where}: end_s {end} is not after start_s {start}")
    return _Row(str(path).strip(), str(label).strip(), start, end, split, line)


def _read_jsonl(text: str, path: Path) -> list[_Row]:
    rows = []
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
        except json.JSONDecodeError as e:
            raise TubeletError(f"{path}:{i}: not valid JSON ({e.msg})") from None
        if not isinstance(d, dict):
            raise TubeletError(f"{path}:{i}: expected a JSON object")
        rows.append(_row(d, f"{path}:{i}", i))
    return rows


def _read_delimited(text: str, path: Path) -> list[_Row]:
    lines = [(i, ln) for i, ln in enumerate(text.splitlines(), 1) if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        return []
    first = lines[0][1]
    if "," in first:
        table = [(i, next(csv.reader(io.StringIO(ln)))) for i, ln in lines]
    else:  # official list files: `path label`, whitespace-separated (a path with spaces keeps all but the last)
        table = [(i, ln.rsplit(None, 1)) for i, ln in lines]
    header = [c.strip().lower() for c in table[0][1]]
    if "path" in header and "label" in header:
        return [_row(dict(zip(header, cells, strict=False)), f"{path}:{i}", i) for i, cells in table[1:]]
    rows = []
    for i, cells in table:
        if len(cells) < 2:
            raise TubeletError(f"{path}:{i}: expected `path,label` (or a header naming path and label)")
        rows.append(_row({"path": cells[0], "label": cells[1]}, f"{path}:{i}", i))
    return rows


def _resolve_labels(rows: list[_Row], classes: list[str] | None, where: Path) -> tuple[list[str], list[int]]:
    if classes is None:
        if all(_INT.match(r.label) for r in rows):
            ids = [int(r.label) for r in rows]
            if min(ids) < 0:
                raise TubeletError(f"{where}: negative class id {min(ids)}")
            return [str(i) for i in range(max(ids) + 1)], ids
        classes = sorted({r.label for r in rows})
    index = {name: i for i, name in enumerate(classes)}
    ids = []
    for r in rows:
        if r.label in index:
            ids.append(index[r.label])
        elif _INT.match(r.label) and 0 <= int(r.label) < len(classes):
            ids.append(int(r.label))
        else:
            raise TubeletError(f"{where}:{r.line}: label {r.label!r} is not in the class list "
                               f"({len(classes)} classes)")
    return classes, ids


def read_manifest(path: str | Path, root: str | Path | None = None,
                  classes: list[str] | None = None) -> LabelSet:
    """Read a labelled manifest; relative paths are resolved against `root` (default: the manifest's folder).

    Rows whose file does not exist are left out and listed in `missing`; none found at all is an error.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise TubeletError(f"{path}: cannot read manifest ({getattr(e, 'strerror', None) or e})") from None
    rows = _read_jsonl(text, path) if path.suffix == ".jsonl" else _read_delimited(text, path)
    if not rows:
        raise TubeletError(f"{path}: manifest lists no clips")
    classes, ids = _resolve_labels(rows, classes, path)
    base = Path(root) if root is not None and Path(root).is_dir() else path.parent
    examples, missing = [], []
    for r, label in zip(rows, ids, strict=True):
        file = Path(r.path) if Path(r.path).is_absolute() else base / r.path
        if not file.is_file():
            missing.append(str(file))
            continue
        examples.append(Example(str(file), label, r.start_s, r.end_s, r.split))
    if not examples:
        raise TubeletError(f"{path}: none of the {len(rows)} listed files exist (first: {missing[0]})")
    return LabelSet(classes, examples, missing)


def write_manifest(examples: list[Example], classes: list[str], path: str | Path) -> None:
    """A CSV manifest with a header (path, label name, start_s, end_s, split)."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "start_s", "end_s", "split"])
        for e in examples:
            w.writerow([e.path, classes[e.label], "" if e.start_s is None else e.start_s,
                        "" if e.end_s is None else e.end_s, e.split])


def labels_of_videos(data: str, classes: list[str] | None = None) -> LabelSet:
    """Labels the data layer reads off a source itself: class sub-folders of a folder, label columns of its
    manifests."""
    items = list_videos(data)
    unlabelled = [it.name for it in items if it.label is None]
    if unlabelled:
        raise TubeletError(f"{data}: {len(unlabelled)} video(s) without a label (e.g. {unlabelled[0]}); "
                           "give a labels manifest")
    names = classes or sorted({str(it.label) for it in items})
    index = {n: i for i, n in enumerate(names)}
    unknown = sorted({str(it.label) for it in items} - set(index))
    if unknown:
        raise TubeletError(f"{data}: label(s) not in the class list: {', '.join(unknown[:5])}")
    if any(it.member for it in items):
        raise TubeletError(f"{data}: fine-tuning from tar shards needs a manifest of loose files (--labels)")
    return LabelSet(names, [Example(it.path, index[str(it.label)], it.start_s, it.end_s) for it in items])


def load_labels(data: str | None, manifest: str | None, classes: list[str] | None = None) -> LabelSet:
    """A manifest's labels (relative paths from `data`), or without a manifest the labels `data` carries."""
    if manifest:
        return read_manifest(manifest, data or None, classes)
    if not data:
        raise TubeletError("give the labelled videos: a folder with class sub-folders, or a labels manifest")
    return labels_of_videos(data, classes)


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
    by_class: dict[int, list[Example]] = defaultdict(list)
    for e in labels.examples:
        by_class[e.label].append(e)
    rng = random.Random(seed)
    train, val = [], []
    for label in sorted(by_class):
        group = by_class[label][:]
        rng.shuffle(group)
        n_val = round(val_frac * len(group))
        if val_frac > 0 and n_val == 0 and len(group) >= 2:
            n_val = 1
        val += [_with_split(e, "val") for e in group[:n_val]]
        train += [_with_split(e, "train") for e in group[n_val:]]
    return LabelSet(labels.classes, train, labels.missing), LabelSet(labels.classes, val, labels.missing)


def _with_split(e: Example, split: str) -> Example:
    return Example(e.path, e.label, e.start_s, e.end_s, split)


__all__ = ["Example", "LabelSet", "SPLITS", "labels_of_videos", "load_labels", "read_class_list", "read_manifest",
           "split_train_val", "write_class_list", "write_manifest"]
