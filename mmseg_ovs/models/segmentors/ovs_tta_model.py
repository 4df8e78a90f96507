"""Test-time augmentation for open-vocabulary segmentors (``tools/test.py --tta``)."""
from typing import List

import torch
from mmengine.structures import PixelData
from mmseg.models import SegTTAModel
from mmseg.registry import MODELS
from mmseg.utils import SampleList


@MODELS.register_module()
class OVSTTAModel(SegTTAModel):
    """mmseg's ``SegTTAModel`` for any vocabulary size: the mean of the views' softmaxes, then argmax.

    ``SegTTAModel`` treats a one-channel output as a binary head (sigmoid, then
    ``decode_head.threshold``); an open-vocabulary segmentor with a one-class vocabulary has no decode
    head and no threshold, and its one channel means "that class everywhere" exactly as without TTA.
    So every channel count takes the softmax path here; for C > 1 the result equals ``SegTTAModel``'s.
    """

    def merge_preds(self, data_samples_list: List[SampleList]) -> SampleList:
        """Views of each image (each ``(C, H, W)`` ``seg_logits`` at the original size) -> one prediction."""
        predictions = []
        for data_samples in data_samples_list:
            probs = torch.stack([ds.seg_logits.data.softmax(dim=0) for ds in data_samples]).mean(0)
            merged = data_samples[0].new()
            merged.set_data(dict(seg_logits=PixelData(data=probs),
                                 pred_sem_seg=PixelData(data=probs.argmax(dim=0, keepdim=True))))
            if hasattr(data_samples[0], 'gt_sem_seg'):
                merged.set_data(dict(gt_sem_seg=data_samples[0].gt_sem_seg))
            predictions.append(merged)
        return predictions
