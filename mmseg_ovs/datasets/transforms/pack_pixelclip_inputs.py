"""PackPixelCLIPInputs: weak + strong views and the unlabeled masks into ``inputs`` / data sample."""
import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS
from mmseg.structures import SegDataSample

__all__ = ['PackPixelCLIPInputs']


@TRANSFORMS.register_module()
class PackPixelCLIPInputs(BaseTransform):
    """``inputs``: (6, H, W) uint8 = weak (teacher) | strong (student) views, channel order unchanged
    (BGR from mmcv loading; the segmentor converts). Without ``img_strong`` it is (3, H, W).

    ``data_samples.unlabeled_masks_packed``: (ceil(n/8), H, W) uint8 bit planes (unpacked on the
    device by the segmentor), ``metainfo['num_unlabeled_masks'] = n``.
    """

    def __init__(self, meta_keys=('img_path', 'mask_path', 'ori_shape', 'img_shape', 'flip',
                                  'flip_direction', 'num_unlabeled_masks')):
        self.meta_keys = meta_keys

    def transform(self, results: dict) -> dict:
        views = [results['img']] + ([results['img_strong']] if 'img_strong' in results else [])
        views = [v if v.ndim == 3 else v[..., None] for v in views]
        img = np.empty((sum(v.shape[2] for v in views),) + views[0].shape[:2], dtype=views[0].dtype)
        c = 0
        for v in views:  # channels-first in one copy per view
            img[c:c + v.shape[2]] = v.transpose(2, 0, 1)
            c += v.shape[2]
        inputs = torch.from_numpy(img)
        sample = SegDataSample()
        if 'unlabeled_masks' in results:
            planes = np.ascontiguousarray(results['unlabeled_masks'].transpose(2, 0, 1))
            sample.unlabeled_masks_packed = torch.from_numpy(planes)
        sample.set_metainfo({k: results[k] for k in self.meta_keys if k in results})
        return dict(inputs=inputs, data_samples=sample)
