"""Layer-wise learning-rate decay for fine-tuning: deeper blocks learn faster than the patch embedding.

Layer ids follow the official recipe: 0 for the patch embedding and position table, i + 1 for block i,
depth + 1 for everything after the blocks (norms, head). A parameter in layer l gets
lr × decay ** (depth + 1 − l). Biases, 1-D tensors and the position table get no weight decay.
"""

from __future__ import annotations

import re

from torch import nn

from tubelet.train.optim import decays

_BLOCK = re.compile(r"(?:^|\.)blocks\.(\d+)\.")


def layer_id(name: str, depth: int) -> int:
    """0 for patch_embed / pos_embed, i + 1 for encoder block i, depth + 1 for the rest (norms, head)."""
    if name.startswith(("encoder.patch_embed.", "encoder.pos_embed")):
        return 0
    m = _BLOCK.search(name)
    if name.startswith("encoder.") and m:
        return int(m.group(1)) + 1
    return depth + 1


def layer_decay_groups(model: nn.Module, weight_decay: float, decay: float, depth: int) -> list[dict]:
    """AdamW parameter groups, one per (layer, decayed or not), each with an `lr_scale`."""
    groups: dict[tuple[int, bool], dict] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        lid, wd = layer_id(name, depth), decays(name, p)
        group = groups.setdefault((lid, wd), {
            "params": [], "weight_decay": weight_decay if wd else 0.0, "lr_scale": decay ** (depth + 1 - lid),
            "layer_id": lid,
        })
        group["params"].append(p)
    return [groups[k] for k in sorted(groups)]


__all__ = ["layer_decay_groups", "layer_id"]
