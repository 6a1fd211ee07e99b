"""Models by Hugging Face Hub id: `owner/name[@revision]` → a verified local snapshot in the standard HF cache.

huggingface_hub does the downloading, caching, revision resolution and offline mode (`HF_HUB_OFFLINE=1`, or no
network: the cached snapshot is used); `HF_ENDPOINT` points it at another Hub. Only weights and configs are
fetched (`*.json`, `*.safetensors`, `pytorch_model*.bin`): a repository's Python code is never downloaded, let
alone run. Every file of the snapshot is then checked against the hash it is stored under (the sha256 of an LFS
file, the git blob id of a small one), so a truncated or altered cache entry is caught before it is loaded.

The known-good models are listed here too, for `tubelet models`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tubelet.config import ModelConfig, preset
from tubelet.errors import CheckpointError

HUB_ID = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*)(?:@(?P<revision>[\w./-]+))?$")
WEIGHT_PATTERNS = ["*.json", "*.safetensors", "pytorch_model*.bin"]


@dataclass(frozen=True)
class HubModel:
    """A model on the Hub that tubelet loads as it is, and what it is good for (from its model card)."""

    repo: str
    job: str  # "embed" (pretrained encoder: search, copies, anomalies) | "classify" (fine-tuned classifier)
    preset: str  # the encoder architecture
    kind: str  # "pretraining" (with decoder) | "encoder" (VideoMAE v2 Hub: norm after pooling) | "classifier"
    trained_on: str
    num_classes: int = 0

    def config(self) -> ModelConfig:
        """The architecture as published (decoder or head included), for the parameter count."""
        if self.kind == "pretraining":
            return preset(self.preset)
        extra = {"num_classes": self.num_classes} if self.kind == "classifier" else {"norm_after_pool": True}
        return preset(self.preset, decoder_depth=0, **extra)


_K400 = "Kinetics-400 (240k clips), self-supervised"
KNOWN_MODELS: list[HubModel] = [
    HubModel("MCG-NJU/videomae-base", "embed", "vit_base", "pretraining", f"{_K400}, 1600 epochs"),
    HubModel("MCG-NJU/videomae-base-short", "embed", "vit_base", "pretraining", f"{_K400}, 800 epochs"),
    HubModel("MCG-NJU/videomae-large", "embed", "vit_large", "pretraining", f"{_K400}, 1600 epochs"),
    HubModel("OpenGVLab/VideoMAEv2-Base", "embed", "vit_base", "encoder",
             "UnlabeledHybrid-1M, self-supervised (VideoMAE v2)"),
    HubModel("OpenGVLab/VideoMAEv2-Large", "embed", "vit_large", "encoder",
             "UnlabeledHybrid-1M, self-supervised (VideoMAE v2)"),
    HubModel("OpenGVLab/VideoMAEv2-Huge", "embed", "vit_huge", "encoder",
             "UnlabeledHybrid-1M, self-supervised, 1200 epochs (VideoMAE v2)"),
    HubModel("OpenGVLab/VideoMAEv2-giant", "embed", "vit_giant", "encoder",
             "UnlabeledHybrid-1M, self-supervised, 800 epochs (VideoMAE v2)"),
    HubModel("MCG-NJU/videomae-small-finetuned-kinetics", "classify", "vit_small", "classifier",
             f"{_K400}, then fine-tuned on its 400 actions", 400),
    HubModel("MCG-NJU/videomae-base-finetuned-kinetics", "classify", "vit_base", "classifier",
             f"{_K400}, then fine-tuned on its 400 actions", 400),
    HubModel("MCG-NJU/videomae-large-finetuned-kinetics", "classify", "vit_large", "classifier",
             f"{_K400}, then fine-tuned on its 400 actions", 400),
    HubModel("MCG-NJU/videomae-huge-finetuned-kinetics", "classify", "vit_huge", "classifier",
             f"{_K400}, then fine-tuned on its 400 actions", 400),
    HubModel("MCG-NJU/videomae-base-finetuned-ssv2", "classify", "vit_base", "classifier",
             "Something-Something v2 (169k clips), self-supervised, then fine-tuned on its 174 actions", 174),
]


def parse_hub_id(src: str) -> tuple[str, str | None] | None:
    """(repo id, revision or None) when `src` is written like a Hub id (`owner/name[@revision]`), else None."""
    m = HUB_ID.match(src)
    return (m["repo"], m["revision"]) if m else None


def is_hub_id(src: str) -> bool:
    """True for `owner/name[@revision]` that is not an existing local path."""
    return parse_hub_id(src) is not None and not Path(src).exists()


def _one_line(e: BaseException) -> str:
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return lines[0] if lines else type(e).__name__


def download(src: str) -> tuple[Path, str]:
    """The verified local snapshot of Hub model `src` (`owner/name[@revision]`) and its commit hash.

    Raises CheckpointError with one line when the model is neither cached nor reachable, the repository or revision
    does not exist, or a cached file does not match its hash.
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    parsed = parse_hub_id(src)
    if parsed is None:
        raise CheckpointError(f"{src}: not a Hub model id (owner/name[@revision])")
    repo, revision = parsed
    try:
        folder = Path(snapshot_download(repo, revision=revision, allow_patterns=WEIGHT_PATTERNS))
    except RevisionNotFoundError:
        raise CheckpointError(f"{src}: the Hub has no revision {revision!r} of {repo}") from None
    except RepositoryNotFoundError:
        raise CheckpointError(f"{src}: no such file or directory, and no such model on the Hub (or it is private)"
                              ) from None
    except LocalEntryNotFoundError:
        raise CheckpointError(f"{src}: not a local path, not in the Hugging Face cache, and the Hub cannot be "
                              f"reached (offline or no network)") from None
    except (HfHubHTTPError, OSError) as e:
        raise CheckpointError(f"{src}: download failed ({_one_line(e)})") from None
    verify_snapshot(folder, src)
    if not any(folder.glob("*.safetensors")) and not any(folder.glob("pytorch_model*.bin")):
        raise CheckpointError(f"{src}: the repository has no weights (model.safetensors or pytorch_model.bin)")
    return folder, folder.name


def verify_snapshot(folder: Path, where: str) -> None:
    """Check every file of a cached snapshot against the hash its blob is stored under (sha256 or git blob id)."""
    from huggingface_hub.utils.sha import git_hash, sha_fileobj

    for link in sorted(folder.iterdir()):
        blob = link.resolve()
        expected = blob.name
        if len(expected) == 64:
            with open(blob, "rb") as f:
                actual = sha_fileobj(f).hex()
        elif len(expected) == 40:
            actual = git_hash(blob.read_bytes())
        else:
            continue  # not a content-addressed blob (a local copy): nothing to check against
        if actual != expected:
            raise CheckpointError(f"{where}: cached {link.name} is corrupt (its hash is {actual[:12]}…, expected "
                                  f"{expected[:12]}…); delete it from the Hugging Face cache and load again")


def cached_revisions(repo: str) -> list[str]:
    """Commit hashes of `repo` in the local Hugging Face cache (no network)."""
    from huggingface_hub import constants

    snapshots = Path(constants.HF_HUB_CACHE) / f"models--{repo.replace('/', '--')}" / "snapshots"
    return sorted(p.name for p in snapshots.iterdir() if p.is_dir()) if snapshots.is_dir() else []


__all__ = ["KNOWN_MODELS", "HubModel", "cached_revisions", "download", "is_hub_id", "parse_hub_id",
           "verify_snapshot"]
