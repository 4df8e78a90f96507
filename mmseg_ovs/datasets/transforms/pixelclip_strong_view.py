"""PixelCLIPStrongView: the student's strongly augmented view (+ cutout removed from the masks)."""
import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

__all__ = ['PixelCLIPStrongView']


@TRANSFORMS.register_module()
class PixelCLIPStrongView(BaseTransform):
    """Make ``img_strong`` from the (weak, already geometrically augmented) ``img``.

    Official recipe (``sa1b_dataset_mapper.py``): with p 0.8 ColorJitter(0.5, 0.5, 0.5, 0.25),
    RandomGrayscale(0.2), with p 0.5 Gaussian blur (PIL radius ~ U(0.1, 2.0)), then an always-on black
    cutout box. Box sides are ``int(H * U(0.1, 0.5))`` and ``int(W * U(0.1, 0.5))``, used as (x-size,
    y-size) as in the official code (H/W roles swapped), centre inside the image. The box is removed
    from every unlabeled mask (``unlabeled_masks`` bit planes), so it leaves the loss.

    Images are mmcv BGR uint8 (H, W, 3); torchvision's PIL transforms run on the RGB view.
    """

    def __init__(self, jitter_prob: float = 0.8, jitter=(0.5, 0.5, 0.5, 0.25), gray_prob: float = 0.2,
                 blur_prob: float = 0.5, blur_sigma=(0.1, 2.0), cutout_prob: float = 1.0,
                 cutout_scale=(0.1, 0.5), mask_key: str = 'unlabeled_masks'):
        from torchvision import transforms as T
        self.jitter = T.RandomApply([T.ColorJitter(*jitter)], p=jitter_prob)
        self.gray = T.RandomGrayscale(p=gray_prob)
        self.blur_prob, self.blur_sigma = blur_prob, tuple(blur_sigma)
        self.cutout_prob, self.cutout_scale = cutout_prob, tuple(cutout_scale)
        self.mask_key = mask_key

    def _cutout_box(self, h, w):
        lo, hi = self.cutout_scale
        size_x = int(h * np.random.uniform(lo, hi))  # official: H-based size used along x
        size_y = int(w * np.random.uniform(lo, hi))
        cx = np.random.randint(size_x // 2, max(w - size_x // 2, size_x // 2 + 1))
        cy = np.random.randint(size_y // 2, max(h - size_y // 2, size_y // 2 + 1))
        x0, y0 = max(cx - size_x // 2, 0), max(cy - size_y // 2, 0)
        return y0, min(y0 + size_y, h), x0, min(x0 + size_x, w)

    def transform(self, results: dict) -> dict:
        from PIL import Image, ImageFilter
        img = results['img']
        pil = Image.fromarray(np.ascontiguousarray(img[..., ::-1]))
        pil = self.gray(self.jitter(pil))
        if np.random.rand() < self.blur_prob:
            pil = pil.filter(ImageFilter.GaussianBlur(radius=np.random.uniform(*self.blur_sigma)))
        strong = np.ascontiguousarray(np.asarray(pil)[..., ::-1])
        if np.random.rand() < self.cutout_prob:
            y0, y1, x0, x1 = self._cutout_box(*strong.shape[:2])
            strong = strong.copy()
            strong[y0:y1, x0:x1] = 0
            if self.mask_key in results:
                masks = np.array(results[self.mask_key], order='K', copy=True)  # keeps its memory layout
                masks[y0:y1, x0:x1] = 0  # clears the box in every packed mask plane
                results[self.mask_key] = masks
            results['cutout_box'] = (y0, y1, x0, x1)
        results['img_strong'] = strong
        return results
