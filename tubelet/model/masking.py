"""Token masks over the (t', h', w') grid, the model's second input in pretraining. True = masked (hidden from the
encoder, or dropped by the decoder).

`Masking` says how a run masks (kind, ratio, the optional v2 decoder mask) and is checked once, when made; it
then draws masks for as many clips as asked. Every clip gets its own mask with the same number of masked tokens,
so masked tensors reshape to [B, N_visible, D] without padding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from tubelet.errors import TubeletError

Grid = tuple[int, int, int]


def _random_rows(batch: int, n: int, n_masked: int, generator: torch.Generator | None) -> Tensor:
    """[batch, n] bool with exactly n_masked True per row, positions uniform at random."""
    noise = torch.rand(batch, n, generator=generator)
    idx = noise.argsort(dim=1)[:, :n_masked]
    return torch.zeros(batch, n, dtype=torch.bool).scatter_(1, idx, True)


def _tube(grid: Grid, ratio: float, batch: int, generator: torch.Generator | None) -> Tensor:
    t, h, w = grid
    spatial = _random_rows(batch, h * w, int(ratio * h * w), generator)  # [B, h·w]
    return spatial[:, None, :].expand(batch, t, h * w).reshape(batch, t * h * w)


def _random(grid: Grid, ratio: float, batch: int, generator: torch.Generator | None) -> Tensor:
    n = grid[0] * grid[1] * grid[2]
    return _random_rows(batch, n, int(ratio * n), generator)


def _check_running_cell(grid: Grid, ratio: float) -> None:
    if not 0 < int(4 * ratio) < 4:
        raise TubeletError(f"running-cell ratio must give 1–3 dropped slots of 4, got ratio {ratio}")
    if grid[1] % 2 or grid[2] % 2:
        raise TubeletError(f"running-cell masking needs an even token grid, got {grid[1]}×{grid[2]}")


def _running_cell(grid: Grid, ratio: float, batch: int, generator: torch.Generator | None) -> Tensor:
    t, h, w = grid
    n_drop = int(4 * ratio)
    queue = torch.tensor([True] * n_drop + [False] * (4 - n_drop))
    phase = torch.randint(0, 4, (batch,), generator=generator)  # [B]
    # slot s of the cell at time step i holds queue[(s + phase + i + 1) % 4]
    steps = torch.arange(t)[None, :, None] + phase[:, None, None] + 1 + torch.arange(4)[None, None, :]  # [B, t, 4]
    cells = queue[steps % 4].reshape(batch, t, 2, 2)
    tiled = cells.repeat(1, 1, h // 2, w // 2)  # [B, t, h, w]
    return tiled.reshape(batch, t * h * w)


MASKS = {"tube": _tube, "random": _random}
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


@dataclass(frozen=True)
class Masking:
    """How pretraining hides tokens: an encoder mask (`kind` 'tube' — one spatial mask of int(ratio·h'·w') cells
    shared by every t' — or 'random', int(ratio·N) tokens) and, with decoder_ratio > 0, VideoMAE v2's running-cell
    decoder mask (a 2×2 cell with int(4·decoder_ratio) dropped slots rotating one step per t', random phase)."""

    grid: Grid
    kind: str = "tube"
    ratio: float = 0.9
    decoder_ratio: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in MASKS:
            raise TubeletError(f"unknown mask type {self.kind!r}; choose one of {', '.join(MASKS)}")
        if not 0.0 <= self.ratio < 1.0:
            raise TubeletError(f"mask ratio must be in [0, 1), got {self.ratio}")
        if not 0.0 <= self.decoder_ratio < 1.0:
            raise TubeletError(f"decoder mask ratio must be in [0, 1), got {self.decoder_ratio}")
        if self.decoder_ratio:
            _check_running_cell(self.grid, self.decoder_ratio)

    @property
    def positions(self) -> int:
        """The positions one encoder mask chooses among: h'·w' cells for tubes, all N tokens for random masks."""
        t, h, w = self.grid
        return h * w if self.kind == "tube" else t * h * w

    def require_hidden(self) -> Masking:
        """Itself, if its masks hide at least one position (something to reconstruct); else a TubeletError."""
        if int(self.ratio * self.positions) < 1:
            raise TubeletError(f"mask ratio {self.ratio} hides none of the {self.positions} positions it masks: "
                               f"use at least {1 / self.positions:.3g}")
        return self

    def draw(self, batch: int, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """{"mask": [B, N]} and, with dual masking, {"decoder_mask": [B, N]}: the model's keyword inputs."""
        out = {"mask": MASKS[self.kind](self.grid, self.ratio, batch, generator)}
        if self.decoder_ratio:
            out["decoder_mask"] = _running_cell(self.grid, self.decoder_ratio, batch, generator)
        return out

    def fixed(self, seed: int) -> Tensor:
        """A reproducible encoder mask [N] for one clip (the reconstruction picture)."""
        return self.draw(1, torch.Generator().manual_seed(seed))["mask"][0]


def tube_mask(grid: Grid, ratio: float, batch: int = 1, generator: torch.Generator | None = None) -> Tensor:
    """Tube masking: one spatial mask of exactly int(ratio·h'·w') cells, shared by every t'. → [B, N]."""
    return Masking(grid, "tube", ratio).draw(batch, generator)["mask"]


def random_mask(grid: Grid, ratio: float, batch: int = 1, generator: torch.Generator | None = None) -> Tensor:
    """Independent per-token masking of exactly int(ratio·N) tokens. → [B, N]."""
    return Masking(grid, "random", ratio).draw(batch, generator)["mask"]


def running_cell_mask(grid: Grid, ratio: float = 0.5, batch: int = 1,
                      generator: torch.Generator | None = None) -> Tensor:
    """VideoMAE v2 decoder mask (see Masking). True = dropped by the decoder. → [B, N]."""
    _check_running_cell(grid, ratio)
    return _running_cell(grid, ratio, batch, generator)


__all__ = ["LATTICE_ORDER", "MASKS", "Masking", "lattice_mask", "random_mask", "running_cell_mask", "tube_mask"]
