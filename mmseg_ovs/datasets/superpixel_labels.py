"""SegCLIP's per-patch superpixel labels (data side: used by the crop transform and the loss)."""
import math
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ['superpixel_patch_labels']


def superpixel_patch_labels(superpixels, crop_coord: Optional[Sequence[float]] = None,
                            img_size: int = 224, patch_size: int = 16) -> Tensor:
    """Per-patch superpixel labels exactly as SegCLIP derives them.

    1. crop the (H, W) id map with relative coords ``[x0, y0, x1, y1]`` (as produced by
       the joint RandomResizedCrop: ``[j/(W-1), i/(H-1), (j+w-1)/(W-1), (i+h-1)/(H-1)]``)
       using ``int(x0*W) : ceil(x1*W)`` (whole map if narrower than 2 px; reversed coords
       mean a flip);
    2. resize to ``img_size`` with PyTorch's legacy ``nearest`` (src = floor(dst*in/out));
    3. per ``patch_size`` patch, the arithmetic mean of the integer ids, truncated
       (not a majority vote).

    Args:
        superpixels: (H, W) integer ids (np.ndarray or Tensor).
        crop_coord: 4 relative coordinates or None (no crop).
    Returns:
        (img_size // patch_size, img_size // patch_size) int64 tensor.
    """
    sp = torch.as_tensor(np.asarray(superpixels))
    if sp.dim() != 2:
        raise ValueError(f'superpixel map must be (H, W), got {tuple(sp.shape)}')
    H, W = sp.shape
    if crop_coord is not None:
        x0, y0, x1, y1 = (float(c) for c in crop_coord)
        flip_h, flip_v = x0 > x1, y0 > y1
        x0, x1 = min(x0, x1), max(x0, x1)
        y0, y1 = min(y0, y1), max(y0, y1)
        x0, x1 = int(x0 * W), math.ceil(x1 * W)
        y0, y1 = int(y0 * H), math.ceil(y1 * H)
        if y1 - y0 >= 2 and x1 - x0 >= 2:
            sp = sp[y0:y1, x0:x1]
        if flip_h:
            sp = sp.flip(1)
        if flip_v:
            sp = sp.flip(0)
    sp = F.interpolate(sp[None, None].float(), size=img_size, mode='nearest')[0, 0].long()
    g = img_size // patch_size
    patches = sp.reshape(g, patch_size, g, patch_size).permute(0, 2, 1, 3).reshape(g, g, -1)
    return patches.double().mean(-1).long()
