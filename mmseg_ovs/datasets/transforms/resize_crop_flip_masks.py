"""PixelCLIP's weak geometric augmentation on an image and its packed unlabeled masks."""
from typing import Sequence, Union

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

from mmseg_ovs.utils.mask_bits import RLEMaskStack

__all__ = ['ResizeCropFlipWithMasks']


@TRANSFORMS.register_module()
class ResizeCropFlipWithMasks(BaseTransform):
    """ResizeShortestEdge(choice) -> random crop -> horizontal flip, applied to ``img`` (bilinear) and
    to every key in ``seg_fields`` (nearest; packed mask bit planes are exact under these ops).

    detectron2 recipe of PixelCLIP: short side 1024 (``'choice'`` among ``short_edges``), long side
    <= 1333, random 640x640 crop (padding with 0 when the image is smaller), flip p = 0.5.

    Masks given lazily (:class:`~mmseg_ovs.utils.mask_bits.RLEMaskStack`, ``LoadUnlabeledMasks(lazy=
    True)``) are decoded and packed only over the kept crop, in one gather; the bits are the same.

    Args:
        short_edges (int | list[int]): candidate short-side lengths (one is chosen at random).
        max_size (int): cap on the long side.
        crop_size (tuple): (h, w).
        flip_prob (float): horizontal-flip probability.
    """

    def __init__(self, short_edges: Union[int, Sequence[int]] = 1024, max_size: int = 1333,
                 crop_size: Sequence[int] = (640, 640), flip_prob: float = 0.5):
        self.short_edges = [short_edges] if isinstance(short_edges, int) else list(short_edges)
        self.max_size = max_size
        self.crop_size = tuple(crop_size)
        self.flip_prob = flip_prob

    @staticmethod
    def _target_size(h, w, short, max_size):
        scale = short / min(h, w)
        nh, nw = h * scale, w * scale
        if max(nh, nw) > max_size:
            scale = max_size / max(nh, nw)
            nh, nw = nh * scale, nw * scale
        return int(nh + 0.5), int(nw + 0.5)

    def transform(self, results: dict) -> dict:
        img = results['img']
        h, w = img.shape[:2]
        short = self.short_edges[np.random.randint(len(self.short_edges))]
        nh, nw = self._target_size(h, w, short, self.max_size)
        keys = list(results.get('seg_fields', []))
        lazy = [k for k in keys if isinstance(results[k], RLEMaskStack)]
        keys = [k for k in keys if k not in lazy]
        if (nh, nw) != (h, w):
            img = mmcv.imresize(img, (nw, nh), interpolation='bilinear')
            for key in keys:
                results[key] = self._resize_nearest(results[key], nh, nw)
        ch, cw = self.crop_size
        y0 = np.random.randint(0, max(nh - ch, 0) + 1)
        x0 = np.random.randint(0, max(nw - cw, 0) + 1)
        img = self._crop_pad(img, y0, x0, ch, cw)
        for key in keys:
            results[key] = self._crop_pad(results[key], y0, x0, ch, cw)
        flip = np.random.rand() < self.flip_prob
        if flip:
            img = img[:, ::-1]
            for key in keys:
                results[key] = results[key][:, ::-1]
        for key in lazy:  # decode + pack only the kept crop: one gather = resize, crop and flip
            results[key] = self._crop_lazy(results[key], nh, nw, y0, x0, ch, cw, flip)
        results['img'] = np.ascontiguousarray(img)
        for key in keys:
            results[key] = np.ascontiguousarray(results[key])
        results['img_shape'] = results['img'].shape[:2]
        results['flip'] = bool(flip)
        results['flip_direction'] = 'horizontal' if flip else None
        return results

    @staticmethod
    def _nearest_index(n_in, n_out):
        """Source index of every output pixel of the nearest resize (as :meth:`_resize_nearest`)."""
        return np.minimum((np.arange(n_out) * (n_in / n_out)).astype(np.int64), n_in - 1)

    def _crop_lazy(self, stack, nh, nw, y0, x0, ch, cw, flip):
        rows = self._nearest_index(stack.h, nh)[y0:y0 + ch]
        cols = self._nearest_index(stack.w, nw)[x0:x0 + cw]
        if len(rows) == ch and len(cols) == cw:
            return stack.packed(rows, cols[::-1] if flip else cols)  # planes-first memory, no copy
        out = self._crop_pad(stack.packed(rows, cols), 0, 0, ch, cw)
        return np.ascontiguousarray(out[:, ::-1] if flip else out)

    @staticmethod
    def _resize_nearest(arr, nh, nw):
        """Index-based nearest resize (any channel count, exact on bit planes)."""
        h, w = arr.shape[:2]
        ys = ResizeCropFlipWithMasks._nearest_index(h, nh)
        xs = ResizeCropFlipWithMasks._nearest_index(w, nw)
        return arr[ys][:, xs]

    @staticmethod
    def _crop_pad(arr, y0, x0, ch, cw):
        out = arr[y0:y0 + ch, x0:x0 + cw]
        if out.shape[:2] != (ch, cw):  # smaller than the crop: pad with zeros (black / no mask)
            pad = np.zeros((ch, cw) + out.shape[2:], dtype=out.dtype)
            pad[:out.shape[0], :out.shape[1]] = out
            out = pad
        return out

    def __repr__(self):
        return (f'{self.__class__.__name__}(short_edges={self.short_edges}, max_size={self.max_size}, '
                f'crop_size={self.crop_size}, flip_prob={self.flip_prob})')
