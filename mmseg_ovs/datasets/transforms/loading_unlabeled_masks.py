"""LoadUnlabeledMasks: SA-1B-style per-image JSON (COCO RLE) -> packed, possibly overlapping masks."""
import json
from typing import Optional

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

__all__ = ['LoadUnlabeledMasks', 'pack_masks', 'unpack_masks']

_CHUNK = 64  # masks decoded at once (a multiple of 8 keeps the bit planes aligned)


def pack_masks(masks: np.ndarray) -> np.ndarray:
    """(H, W, n) bool/uint8 -> (H, W, ceil(n/8)) uint8 bit planes (little bit order)."""
    return np.packbits(masks.astype(bool), axis=2, bitorder='little')


def unpack_masks(packed: np.ndarray, num: int) -> np.ndarray:
    """(H, W, nb) bit planes -> (H, W, num) bool."""
    return np.unpackbits(packed, axis=2, count=num, bitorder='little').astype(bool)


@TRANSFORMS.register_module()
class LoadUnlabeledMasks(BaseTransform):
    """Load the unlabeled masks of one image (SA-1B annotations, or SAM/DINO masks from data_prep).

    The file is SA-1B's per-image JSON: ``{"annotations": [{"segmentation": {"size": [h, w],
    "counts": str}, ...}, ...]}``. Masks are decoded in chunks with pycocotools and immediately packed
    to bit planes, so 100+ masks per image cost n/8 bytes per pixel; every mask stays separate
    (overlaps are kept, no id map). Geometric transforms that list ``unlabeled_masks`` in
    ``seg_fields`` treat the planes as pixels (nearest resize, crop, flip are exact on packed bits).

    Added keys: ``unlabeled_masks`` (H, W, ceil(n/8)) uint8, ``num_unlabeled_masks`` (int).

    Args:
        min_area (int): drop masks with fewer pixels (0 keeps all, as the official code).
        max_masks (int, optional): keep at most this many, largest first (official: no limit).
    """

    def __init__(self, min_area: int = 0, max_masks: Optional[int] = None):
        self.min_area = min_area
        self.max_masks = max_masks

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
        rles = []
        for i, ann in enumerate(anns):
            seg = ann.get('segmentation') if isinstance(ann, dict) else None
            if not isinstance(seg, dict) or 'counts' not in seg or 'size' not in seg:
                raise ValueError(f'{path}: annotation {i} has no COCO RLE "segmentation"')
            if tuple(seg['size']) != (h, w):
                raise ValueError(f'{path}: mask {i} is {tuple(seg["size"])} but the image is {(h, w)} '
                                 f'(resize masks together with images, see data_prep/)')
            if isinstance(seg['counts'], str):
                seg = dict(size=seg['size'], counts=seg['counts'].encode('ascii'))
            rles.append(seg)
        if rles and (self.min_area or self.max_masks):
            areas = mask_utils.area(rles)
            order = np.argsort(-areas, kind='stable')
            order = [j for j in order if areas[j] >= self.min_area][:self.max_masks]
            rles = [rles[j] for j in sorted(order)]
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
        results['num_unlabeled_masks'] = len(rles)
        results.setdefault('seg_fields', [])
        if 'unlabeled_masks' not in results['seg_fields']:
            results['seg_fields'].append('unlabeled_masks')
        return results

    def __repr__(self):
        return f'{self.__class__.__name__}(min_area={self.min_area}, max_masks={self.max_masks})'
