"""Positional-embedding resizing for CLIP ViTs at arbitrary input sizes."""
import math
from typing import Tuple

import torch
import torch.nn.functional as F

__all__ = ['interpolate_pos_embed']


def interpolate_pos_embed(pos_embed: torch.Tensor, grid_hw: Tuple[int, int],
                          num_prefix_tokens: int = 1, antialias: bool = False) -> torch.Tensor:
    """Resize a ViT positional embedding to a new patch grid (bicubic, align_corners=False).

    Args:
        pos_embed: (P + N, C) with P prefix (CLS) rows followed by a square sqrt(N) x sqrt(N) grid in
            row-major order.
        grid_hw: target grid (h, w).
        antialias: torch's antialias flag; False matches SegCLIP/PixelCLIP, open_clip's checkpoint
            loading uses True (identical when upsampling).

    Returns:
        (P + h*w, C). The prefix rows are kept; the input is returned as is when the grid matches.
    """
    prefix, grid = pos_embed[:num_prefix_tokens], pos_embed[num_prefix_tokens:]
    side = int(math.isqrt(grid.shape[0]))
    if side * side != grid.shape[0]:
        raise ValueError(f'positional embedding grid of {grid.shape[0]} tokens is not square')
    h, w = grid_hw
    if (h, w) == (side, side):
        return pos_embed
    grid = grid.reshape(1, side, side, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(h, w), mode='bicubic', align_corners=False, antialias=antialias)
    grid = grid.permute(0, 2, 3, 1).reshape(h * w, -1)
    return torch.cat([prefix, grid.to(pos_embed.dtype)], dim=0)
