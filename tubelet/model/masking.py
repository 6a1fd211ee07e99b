"""Token masks over the (t', h', w') grid. True = masked (hidden from the encoder, or dropped by the decoder).

Every sample in a batch gets its own mask with the same number of masked tokens, so masked tensors
reshape to [B, N_visible, D] without padding.
"""

from __future__ import annotations

import torch
from torch import Tensor

from tubelet.errors import TubeletError

Grid = tuple[int, int, int]


def _check_ratio(ratio: float) -> None:
    if not 0.0 <= ratio < 1.0:
        raise TubeletError(f"mask ratio must be in [0, 1), got {ratio}")


def _random_rows(batch: int, n: int, n_masked: int, generator: torch.Generator | None) -> Tensor:
    """[batch, n] bool with exactly n_masked True per row, positions uniform at random."""
    if n_masked < 1:
        raise TubeletError(f"this mask ratio hides none of the {n} positions it masks: use at least {1 / n:.3g}")
    noise = torch.rand(batch, n, generator=generator)
    idx = noise.argsort(dim=1)[:, :n_masked]
    return torch.zeros(batch, n, dtype=torch.bool).scatter_(1, idx, True)


def tube_mask(grid: Grid, ratio: float, batch: int = 1, generator: torch.Generator | None = None) -> Tensor:
    """Tube masking: one spatial mask of exactly int(ratio·h'·w') cells, shared by every t'. → [B, N]."""
    _check_ratio(ratio)
    t, h, w = grid
    spatial = _random_rows(batch, h * w, int(ratio * h * w), generator)  # [B, h·w]
    return spatial[:, None, :].expand(batch, t, h * w).reshape(batch, t * h * w)


def random_mask(grid: Grid, ratio: float, batch: int = 1, generator: torch.Generator | None = None) -> Tensor:
    """Independent per-token masking of exactly int(ratio·N) tokens. → [B, N]."""
    _check_ratio(ratio)
    n = grid[0] * grid[1] * grid[2]
    return _random_rows(batch, n, int(ratio * n), generator)


def running_cell_mask(grid: Grid, ratio: float = 0.5, batch: int = 1,
                      generator: torch.Generator | None = None) -> Tensor:
    """VideoMAE v2 decoder mask: a 2×2 cell with int(4·ratio) dropped slots that rotates one step per t'.

    Each sample starts the rotation at a random phase. True = dropped by the decoder. → [B, N].
    """
    t, h, w = grid
    n_drop = int(4 * ratio)
    if not 0 < n_drop < 4:
        raise TubeletError(f"running-cell ratio must give 1–3 dropped slots of 4, got ratio {ratio}")
    if h % 2 or w % 2:
        raise TubeletError(f"running-cell masking needs an even token grid, got {h}×{w}")
    queue = torch.tensor([True] * n_drop + [False] * (4 - n_drop))
    phase = torch.randint(0, 4, (batch,), generator=generator)  # [B]
    # slot s of the cell at time step i holds queue[(s + phase + i + 1) % 4]
    steps = torch.arange(t)[None, :, None] + phase[:, None, None] + 1 + torch.arange(4)[None, None, :]  # [B, t, 4]
    cells = queue[steps % 4].reshape(batch, t, 2, 2)
    tiled = cells.repeat(1, 1, h // 2, w // 2)  # [B, t, h, w]
    return tiled.reshape(batch, t * h * w)


LATTICE_ORDER = (0, 4, 2, 6, 1, 5, 3, 7)  # residues of (t' + h' + w') mod 8 in bit-reversed order: even spread


def lattice_mask(grid: Grid, keep: float) -> Tensor:
    """A fixed mask keeping round(8·keep)/8 of the tokens, spread evenly over space and time → [N] (True = hidden).

    Token (t', h', w') is kept when (t' + h' + w') mod 8 is among the first round(8·keep) residues of LATTICE_ORDER:
    keep=0.5 is a 3-D checkerboard, 0.25 every fourth diagonal; 1 hides nothing. For embedding from part of the
    tubes (the encoder runs on any subset of tokens, as in pretraining), with every sample alike."""
    if not 0.0 < keep <= 1.0:
        raise TubeletError(f"token fraction must be in (0, 1], got {keep}")
    n_kept = max(1, round(8 * keep))
    t, h, w = grid
    residue = (torch.arange(t)[:, None, None] + torch.arange(h)[None, :, None] + torch.arange(w)[None, None, :]) % 8
    kept = torch.isin(residue, torch.tensor(LATTICE_ORDER[:n_kept]))
    return ~kept.reshape(-1)


MASKS = {"tube": tube_mask, "random": random_mask}


def make_mask(kind: str, grid: Grid, ratio: float, batch: int = 1,
              generator: torch.Generator | None = None) -> Tensor:
    """An encoder mask by name: 'tube' or 'random'."""
    if kind not in MASKS:
        raise TubeletError(f"unknown mask type {kind!r}; choose one of {', '.join(MASKS)}")
    return MASKS[kind](grid, ratio, batch, generator)
