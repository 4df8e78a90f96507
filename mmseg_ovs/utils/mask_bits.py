"""Bit packing of stacks of binary masks (the one place that defines the layout).

Layout: ``n`` masks of (H, W) are stored as ``ceil(n / 8)`` uint8 planes, mask ``k`` in bit ``k % 8``
(little bit order) of plane ``k // 8``. The data pipeline keeps masks channel-last (H, W, planes) so
geometric transforms treat the planes as pixels; the packed sample tensor is (planes, H, W).

:class:`RLEMaskStack` keeps COCO RLE masks undecoded until a transform asks for the pixels it needs
(e.g. a resized crop), then decodes and packs only that region.
"""
from typing import Optional, Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = ['pack_masks', 'unpack_masks', 'unpack_mask_bits', 'pack_planes_first', 'RLEMaskStack']


def pack_planes_first(masks: np.ndarray) -> np.ndarray:
    """(n, H, W) bool/0-1 -> (ceil(n/8), H, W) uint8 bit planes (mask k -> bit k % 8 of plane k // 8)."""
    n = masks.shape[0]
    out = np.zeros((-(-n // 8),) + masks.shape[1:], dtype=np.uint8)
    for k in range(min(8, n)):
        src = masks[k::8]
        bits = src.view(np.uint8) if src.dtype == bool else (src != 0).view(np.uint8)
        out[:len(bits)] |= bits << np.uint8(k)
    return out


def pack_masks(masks: np.ndarray) -> np.ndarray:
    """(H, W, n) bool/uint8 -> (H, W, ceil(n/8)) uint8 bit planes (little bit order), C-contiguous."""
    return np.ascontiguousarray(pack_planes_first(masks.transpose(2, 0, 1)).transpose(1, 2, 0))


def unpack_masks(packed: np.ndarray, num: int) -> np.ndarray:
    """(H, W, nb) bit planes -> (H, W, num) bool."""
    return np.unpackbits(packed, axis=2, count=num, bitorder='little').astype(bool)


def unpack_mask_bits(packed: Tensor, num: int) -> Tensor:
    """(ceil(n/8), H, W) uint8 bit planes -> (n, H, W) bool, on ``packed``'s device (torch)."""
    shifts = torch.arange(8, device=packed.device, dtype=torch.uint8).view(1, 8, 1, 1)
    bits = (packed.unsqueeze(1) >> shifts) & 1
    return bits.reshape(-1, *packed.shape[-2:])[:num].bool()


class RLEMaskStack:
    """``n`` masks of an (h, w) image as COCO run lengths (column-major, first run = zeros), decoded
    lazily. ``shape`` is that of the packed array it stands for: (h, w, ceil(n/8)).

    :meth:`packed` returns the bit planes of ``mask[rows][:, cols]`` for index arrays ``rows``/``cols``
    (repeats and reversal allowed: a nearest resize, crop and flip in one gather), decoding only the
    columns spanned by ``cols`` (``np.repeat`` of the runs) and packing only the rows spanned by
    ``rows``. Identical to decoding everything, packing, then indexing.
    """

    def __init__(self, runs: Sequence[np.ndarray], h: int, w: int):
        self.runs = [np.asarray(r, dtype=np.int64) for r in runs]
        self.h, self.w, self.num = int(h), int(w), len(self.runs)

    @property
    def shape(self):
        return (self.h, self.w, -(-self.num // 8))

    def packed(self, rows: Optional[np.ndarray] = None, cols: Optional[np.ndarray] = None) -> np.ndarray:
        """(len(rows), len(cols), ceil(n/8)) uint8; the memory is planes-first (a transposed view of a
        C-contiguous (nb, len(rows), len(cols)) array, what the packed sample tensor needs)."""
        h, w = self.h, self.w
        rows = np.arange(h) if rows is None else np.asarray(rows, dtype=np.int64)
        cols = np.arange(w) if cols is None else np.asarray(cols, dtype=np.int64)
        nb = -(-self.num // 8)
        if self.num == 0 or len(rows) == 0 or len(cols) == 0:
            return np.zeros((nb, len(rows), len(cols)), np.uint8).transpose(1, 2, 0)
        c0, c1 = int(cols.min()), int(cols.max()) + 1
        seg0, seg_len = c0 * h, (c1 - c0) * h
        planes = np.empty((nb, seg_len), np.uint8)
        for b in range(nb):
            planes[b] = self._plane(self.runs[8 * b:8 * b + 8], seg0, seg_len)
        # planes are column-major (nb, cols, h): one gather with the flat index of every output pixel
        flat = (cols - c0)[None, :] * h + rows[:, None]
        out = np.take(planes, flat, axis=1)  # (nb, len(rows), len(cols)), C-contiguous
        return out.transpose(1, 2, 0)

    @staticmethod
    def _plane(group, seg0: int, seg_len: int) -> np.ndarray:
        """Bit plane of up to 8 masks over flat (column-major) pixels [seg0, seg0 + seg_len): each run
        boundary toggles its mask's bit; a cumulative XOR gives the byte of every piece between
        boundaries, and one ``np.repeat`` writes them (no per-mask byte image)."""
        init, positions, toggles = 0, [], []
        for k, runs in enumerate(group):
            ends = np.cumsum(runs)
            init |= (int(np.searchsorted(ends, seg0, side='right')) & 1) << k
            inside = ends[(ends > seg0) & (ends < seg0 + seg_len)] - seg0
            positions.append(inside)
            toggles.append(np.full(len(inside), 1 << k, np.uint8))
        pos = np.concatenate(positions)
        order = np.argsort(pos, kind='stable')
        pos = pos[order]
        values = np.empty(len(pos) + 1, np.uint8)
        values[0] = init
        np.bitwise_xor.accumulate(np.concatenate(toggles)[order], out=values[1:])
        values[1:] ^= np.uint8(init)
        lengths = np.diff(np.concatenate(([0], pos, [seg_len])))
        return np.repeat(values, lengths)

    def __repr__(self):
        return f'{type(self).__name__}(num={self.num}, h={self.h}, w={self.w})'
