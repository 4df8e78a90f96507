"""RandomResizedCropWithSuperpixels: SegCLIP's joint image / superpixel random-resized crop."""
import math
import random

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS
from PIL import Image

from ..superpixel_labels import superpixel_patch_labels

__all__ = ['RandomResizedCropWithSuperpixels']


def check_superpixel_shape(map_shape, img_shape, results=None) -> None:
    """The (h, w) map must be the (H, W) image up to a uniform rescale (1 px rounding per side)."""
    h, w = map_shape[:2] if len(map_shape) >= 2 else (0, 0)
    H, W = img_shape
    ok = len(map_shape) == 2 and h > 0 and w > 0 and abs(h * W - w * H) <= max(H, W, h, w)
    if ok and (h, w) != (H, W):  # a rescale: the ratio must be the same along both axes
        ok = abs(h / H - w / W) <= 1.5 / min(H, W, h, w)
    if not ok:
        results = results or {}
        raise ValueError(f'superpixel map {tuple(map_shape)} does not fit image {(H, W)} '
                         f'({results.get("img_path")!r}, key {results.get("superpixel_key")!r}); '
                         f'recompute it with data_prep/segclip_superpixels.py on the training images')


@TRANSFORMS.register_module()
class RandomResizedCropWithSuperpixels(BaseTransform):
    """torchvision-style RandomResizedCrop of the image (PIL bicubic) and, with the same relative
    coordinates, of its superpixel map (legacy-nearest), reduced to per-patch labels.

    The crop ``(i, j, h, w)`` gives relative coordinates (float32, as officially)
    ``[j/(W-1), i/(H-1), (j+w-1)/(W-1), (i+h-1)/(H-1)]``; the superpixel map (possibly at another
    resolution) is cropped with them and turned into ``superpixel_labels`` (size/patch, size/patch)
    by :func:`superpixel_patch_labels` (truncated mean of ids per patch).

    The map must have the image's shape, or its short-side-resized shape (data_prep stores maps at
    short side 224): a map whose aspect ratio disagrees (e.g. transposed) raises ``ValueError`` naming
    the image, which the dataset counts as a broken sample.

    Args:
        size (int): output side. Default 224.
        scale, ratio: RandomResizedCrop ranges (SegCLIP: (0.5, 1.0), (3/4, 4/3)).
        patch_size (int): ViT patch size for the labels. Default 16.
    """

    def __init__(self, size: int = 224, scale=(0.5, 1.0), ratio=(3. / 4., 4. / 3.),
                 patch_size: int = 16):
        self.size, self.scale, self.ratio, self.patch_size = size, scale, ratio, patch_size

    def get_params(self, height: int, width: int):
        area = height * width
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target_area = random.uniform(*self.scale) * area
            aspect = math.exp(random.uniform(*log_ratio))
            w = int(round(math.sqrt(target_area * aspect)))
            h = int(round(math.sqrt(target_area / aspect)))
            if 0 < w <= width and 0 < h <= height:
                return random.randint(0, height - h), random.randint(0, width - w), h, w
        in_ratio = width / height
        if in_ratio < min(self.ratio):
            w, h = width, int(round(width / min(self.ratio)))
        elif in_ratio > max(self.ratio):
            h, w = height, int(round(height * max(self.ratio)))
        else:
            w, h = width, height
        return (height - h) // 2, (width - w) // 2, h, w

    def transform(self, results: dict) -> dict:
        img = results['img']
        H, W = img.shape[:2]
        i, j, h, w = self.get_params(H, W)
        pil = Image.fromarray(np.ascontiguousarray(img[..., ::-1]))  # BGR -> RGB for PIL
        pil = pil.crop((j, i, j + w, i + h)).resize((self.size, self.size), Image.BICUBIC)
        results['img'] = np.ascontiguousarray(np.asarray(pil)[..., ::-1])
        results['img_shape'] = (self.size, self.size)
        if W - 1 == 0 or H - 1 == 0:
            coord = np.zeros(4, np.float32)
        else:
            coord = np.array([j / (W - 1), i / (H - 1), (j + w - 1) / (W - 1),
                              (i + h - 1) / (H - 1)], np.float32)
        results['crop_coord'] = coord
        if 'superpixels' in results:
            check_superpixel_shape(results['superpixels'].shape, (H, W), results)
            results['superpixel_labels'] = superpixel_patch_labels(
                results['superpixels'], coord, self.size, self.patch_size).numpy()
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(size={self.size}, scale={self.scale}, '
                f'ratio={self.ratio}, patch_size={self.patch_size})')
