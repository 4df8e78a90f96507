"""LoadUnlabeledMasks: SA-1B-style per-image JSON (COCO RLE) -> packed, possibly overlapping masks."""
import json
from typing import Optional

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

from mmseg_ovs.utils.mask_bits import RLEMaskStack, pack_masks, unpack_masks

__all__ = ['LoadUnlabeledMasks', 'pack_masks', 'unpack_masks']

_CHUNK = 64  # masks decoded at once (a multiple of 8 keeps the bit planes aligned)


def rle_string_counts(counts: bytes) -> np.ndarray:
    """COCO compressed RLE ``counts`` string -> run lengths (int64), as pycocotools' ``rleFrString``
    reads them (6-bit chars from '0', 5 data bits + continuation bit, sign bit on the last char,
    runs from the 4th on stored as the difference to the run two before). ``ValueError`` if the
    string is malformed (a character out of range or a truncated last run)."""
    c = np.frombuffer(counts, dtype=np.uint8).astype(np.int64) - 48
    if c.size == 0:
        return np.zeros(0, np.int64)
    if c.min() < 0 or c.max() > 63:
        raise ValueError('character outside the RLE alphabet')
    more = (c & 0x20) != 0
    if more[-1]:
        raise ValueError('truncated run length')
    ends = np.flatnonzero(~more)
    starts = np.concatenate(([0], ends[:-1] + 1))
    pos = np.arange(c.size) - np.repeat(starts, ends - starts + 1)
    if pos.max() > 11:
        raise ValueError('run length with too many digits')
    x = np.add.reduceat((c & 0x1f) << (5 * pos), starts)
    neg = (c[ends] & 0x10) != 0
    x[neg] |= -1 << (5 * (pos[ends][neg] + 1))
    cnts = x.copy()
    cnts[1::2] = np.cumsum(x[1::2])  # m > 2: cnts[m] = x[m] + cnts[m - 2]
    cnts[2::2] = np.cumsum(x[2::2])
    return cnts


def check_rle(seg: dict, h: int, w: int, where: str):
    """Validate one COCO RLE against the image size; returns (the RLE in pycocotools' compressed
    form, its run lengths). Accepts compressed (str/bytes counts) and uncompressed (list counts) RLE;
    runs must be non-negative and cover exactly h * w pixels (otherwise pycocotools would decode
    garbage or write past the mask)."""
    counts = seg['counts']
    if isinstance(counts, list):
        runs = np.asarray(counts)
        if runs.ndim != 1 or (runs.size and (runs.dtype.kind not in 'iu' or runs.min() < 0)):
            raise ValueError(f'{where}: uncompressed RLE counts must be non-negative integers')
        total = int(runs.sum())
    else:
        if isinstance(counts, str):
            counts = counts.encode('ascii', errors='replace')
        if not isinstance(counts, bytes):
            raise ValueError(f'{where}: RLE counts must be a string or a list, got {type(counts).__name__}')
        try:
            runs = rle_string_counts(counts)
        except ValueError as err:
            raise ValueError(f'{where}: corrupt RLE counts ({err})') from err
        if runs.size and runs.min() < 0:
            raise ValueError(f'{where}: corrupt RLE counts (negative run length)')
        total = int(runs.sum())
    if total != h * w:
        raise ValueError(f'{where}: RLE runs cover {total} pixels but the mask is {h}x{w} = {h * w}')
    if isinstance(counts, list):
        from pycocotools import mask as mask_utils
        return mask_utils.frPyObjects(dict(size=[h, w], counts=[int(v) for v in counts]), h, w), runs
    return dict(size=[h, w], counts=counts), runs


@TRANSFORMS.register_module()
class LoadUnlabeledMasks(BaseTransform):
    """Load the unlabeled masks of one image (SA-1B annotations, or SAM/DINO masks from data_prep).

    The file is SA-1B's per-image JSON: ``{"annotations": [{"segmentation": {"size": [h, w],
    "counts": str}, ...}, ...]}``. Masks are decoded in chunks with pycocotools and immediately packed
    to bit planes, so 100+ masks per image cost n/8 bytes per pixel; every mask stays separate
    (overlaps are kept, no id map). Geometric transforms that list ``unlabeled_masks`` in
    ``seg_fields`` treat the planes as pixels (nearest resize, crop, flip are exact on packed bits).

    Added keys: ``unlabeled_masks`` (H, W, ceil(n/8)) uint8, ``num_unlabeled_masks`` (int).

    Every RLE is validated first (runs must cover exactly H x W; uncompressed list counts are
    accepted): a bad one raises ``ValueError`` naming the file and mask.

    With ``lazy=True`` the masks stay run lengths (:class:`~mmseg_ovs.utils.mask_bits.RLEMaskStack`)
    until :class:`ResizeCropFlipWithMasks` decodes and packs only the crop it keeps (the same bits,
    a fraction of the work); any other consumer must come after that transform.

    Args:
        min_area (int): drop masks with fewer pixels (0 keeps all, as the official code).
        max_masks (int, optional): keep at most this many, largest first (official: no limit).
        lazy (bool): keep the masks as run lengths for a later crop (see above). Default False.
    """

    def __init__(self, min_area: int = 0, max_masks: Optional[int] = None, lazy: bool = False):
        self.min_area = min_area
        self.max_masks = max_masks
        self.lazy = lazy

    def _read(self, path: str) -> list:
        try:
            with open(path) as f:
                data = json.load(f)
        except FileNotFoundError:
            raise FileNotFoundError(f'unlabeled-mask file not found: {path}')
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f'corrupt mask JSON {path}: {err}') from err
        anns = data.get('annotations') if isinstance(data, dict) else None
        if not isinstance(anns, list):
            raise ValueError(f'{path}: expected a dict with an "annotations" list (SA-1B format)')
        return anns

    def transform(self, results: dict) -> dict:
        from pycocotools import mask as mask_utils
        path = results['mask_path']
        h, w = results['img_shape'][:2] if 'img_shape' in results else results['img'].shape[:2]
        anns = self._read(path)
        rles, runs = [], []
        for i, ann in enumerate(anns):
            seg = ann.get('segmentation') if isinstance(ann, dict) else None
            if not isinstance(seg, dict) or 'counts' not in seg or 'size' not in seg:
                raise ValueError(f'{path}: annotation {i} has no COCO RLE "segmentation"')
            if tuple(seg['size']) != (h, w):
                raise ValueError(f'{path}: mask {i} is {tuple(seg["size"])} but the image is {(h, w)} '
                                 f'(resize masks together with images, see data_prep/)')
            rle, run = check_rle(seg, h, w, f'{path}: mask {i}')
            rles.append(rle)
            runs.append(run)
        if rles and (self.min_area or self.max_masks):
            areas = np.array([int(r[1::2].sum()) for r in runs])
            order = np.argsort(-areas, kind='stable')
            order = [j for j in order if areas[j] >= self.min_area][:self.max_masks]
            rles = [rles[j] for j in sorted(order)]
            runs = [runs[j] for j in sorted(order)]
        results['num_unlabeled_masks'] = len(rles)
        results.setdefault('seg_fields', [])
        if 'unlabeled_masks' not in results['seg_fields']:
            results['seg_fields'].append('unlabeled_masks')
        if self.lazy:
            results['unlabeled_masks'] = RLEMaskStack(runs, h, w)
            return results
        planes = []
        for start in range(0, len(rles), _CHUNK):
            try:
                dec = mask_utils.decode(rles[start:start + _CHUNK])
            except Exception as err:  # noqa: BLE001
                raise ValueError(f'{path}: corrupt RLE in masks {start}..{start + _CHUNK - 1}: {err}') from err
            planes.append(pack_masks(dec))
        packed = (np.concatenate(planes, axis=2) if planes
                  else np.zeros((h, w, 0), dtype=np.uint8))
        results['unlabeled_masks'] = np.ascontiguousarray(packed)
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(min_area={self.min_area}, max_masks={self.max_masks}, '
                f'lazy={self.lazy})')
