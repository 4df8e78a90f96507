"""OVSDataPreProcessor: mmseg's SegDataPreProcessor that also batches test images of different sizes."""
from typing import Any, Dict

import torch
import torch.nn.functional as F
from mmseg.models.data_preprocessor import SegDataPreProcessor
from mmseg.registry import MODELS

__all__ = ['OVSDataPreProcessor']


@MODELS.register_module()
class OVSDataPreProcessor(SegDataPreProcessor):
    """:class:`SegDataPreProcessor` whose test mode accepts images of different sizes.

    Training is mmseg's. At test time the images are padded right/bottom with ``pad_val`` to the
    largest one (or to ``test_cfg.size`` / a multiple of ``test_cfg.size_divisor``) and every data
    sample records ``padding_size`` (left, right, top, bottom), ``img_shape`` and ``pad_shape``;
    :class:`BaseOVSSegmentor` then infers each image on its own area, so a batch gives the
    batch-size-1 result. Same-size batches without ``test_cfg`` are stacked as in mmseg.
    """

    def forward(self, data: dict, training: bool = False) -> Dict[str, Any]:
        if training:
            return super().forward(data, training=True)
        data = self.cast_data(data)
        inputs = data['inputs']
        data_samples = data.get('data_samples', None)
        if self.channel_conversion and inputs[0].size(0) == 3:
            inputs = [x[[2, 1, 0], ...] for x in inputs]
        inputs = [x.float() for x in inputs]
        if self._enable_normalize:
            inputs = [(x - self.mean) / self.std for x in inputs]
        shapes = [tuple(x.shape[-2:]) for x in inputs]
        if len(set(shapes)) == 1 and not self.test_cfg:
            return dict(inputs=torch.stack(inputs, dim=0), data_samples=data_samples)
        H, W = max(h for h, _ in shapes), max(w for _, w in shapes)
        test_cfg = self.test_cfg or {}
        if test_cfg.get('size') is not None:
            H, W = max(H, test_cfg['size'][0]), max(W, test_cfg['size'][1])
        div = test_cfg.get('size_divisor')
        if div:
            H, W = -(-H // div) * div, -(-W // div) * div
        padded = []
        for i, (x, (h, w)) in enumerate(zip(inputs, shapes)):
            padding_size = (0, W - w, 0, H - h)
            padded.append(F.pad(x, padding_size, value=self.pad_val))
            if data_samples is not None:
                data_samples[i].set_metainfo(dict(img_shape=(h, w), pad_shape=(H, W),
                                                  padding_size=padding_size))
        return dict(inputs=torch.stack(padded, dim=0), data_samples=data_samples)
