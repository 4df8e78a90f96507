"""SCLIPProtocolBaseline: the dense-CLIP baseline scored as the training-free family scores.

SCLIP (``clip_segmentor.py``, ``postprocess_result``), NACLIP, ClearCLIP and ProxyCLIP share one
post-processing, which differs from the GroupViT/SegCLIP background threshold:

1. every name of a class-name line is a query of its own (the background line of VOC21/COCO-Object
   is a word list: sky, wall, tree, ...); the per-query cosines are averaged over slide crops and
   resized to the original image;
2. ``softmax(logit_scale * cos)`` over **all queries** (synonyms included);
3. a class scores the **max** probability of its queries;
4. (VOC21 in SCLIP) ``area_thresh``: a foreground class whose argmax area is at most
   ``area_thresh`` x the total foreground area is zeroed;
5. argmax; pixels whose top probability is below ``prob_thresh`` become class 0.

Names may repeat across lines as published (SCLIP's COCO-Object background list holds ``bed``, also
a class): each occurrence is a query of its line, as in SCLIP (the text is encoded once per name).
"""
from typing import List, Optional, Sequence, Union

import torch
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.utils import OptSampleList, SampleList
from torch import Tensor

from mmseg_ovs.datasets.class_names import is_vocabulary_file_or_key, load_class_names, parse_vocabulary
from .dense_clip_baseline import DenseCLIPBaseline

__all__ = ['SCLIPProtocolBaseline', 'sclip_class_probs']


def sclip_class_probs(logits: Tensor, query_class: Tensor, num_classes: int) -> Tensor:
    """(Q, H, W) scaled query logits -> (num_classes, H, W) class probabilities: softmax over all
    queries, then the max probability of each class's queries (``query_class``: (Q,) class ids)."""
    probs = logits.softmax(0)
    out = probs.new_zeros((num_classes,) + probs.shape[1:])
    idx = query_class.view(-1, 1, 1).expand_as(probs)
    return out.scatter_reduce(0, idx, probs, reduce='amax', include_self=True)


@MODELS.register_module()
class SCLIPProtocolBaseline(DenseCLIPBaseline):
    """:class:`DenseCLIPBaseline` with the SCLIP-family scoring (see the module docstring).

    Args:
        prob_thresh (float): pixels whose top class probability is below it become class 0
            (SCLIP ``prob_thd``; 0 disables).
        area_thresh (float | None): SCLIP ``area_thd`` (VOC21: 0.1), or None.
        **kwargs: :class:`DenseCLIPBaseline` arguments; ``bg_thresh`` must stay None (background is
            prompted by its word list here).
    """

    def __init__(self, *args, prob_thresh: float = 0.0, area_thresh: Optional[float] = None, **kwargs):
        if kwargs.get('bg_thresh') is not None:
            raise ValueError('SCLIPProtocolBaseline prompts background by its words; use prob_thresh, '
                             'not bg_thresh')
        self.prob_thresh = float(prob_thresh)
        self.area_thresh = area_thresh
        self._classes = None
        super().__init__(*args, **kwargs)

    # ------------------------------------------------------------------ vocabulary
    def set_vocabulary(self, vocabulary, templates: Union[str, Sequence[str], None] = None,
                       variant: Optional[str] = None) -> None:
        """A shipped key / ``cls_*.txt`` file is read as published (names may repeat across lines);
        a list goes through :func:`parse_vocabulary`. Every name is prompted separately."""
        if isinstance(vocabulary, str) and is_vocabulary_file_or_key(vocabulary, variant):
            classes = load_class_names(vocabulary, None if variant is None else variant)
        else:
            classes = parse_vocabulary(vocabulary, variant)
        self.check_vocabulary(classes)
        unique, slot_name, slot_class = [], [], []
        for c, names in enumerate(classes):
            for name in names:
                keys = [u.lower() for u in unique]
                if name.lower() not in keys:
                    unique.append(name)
                    keys.append(name.lower())
                slot_name.append(keys.index(name.lower()))
                slot_class.append(c)
        self._classes = classes
        self.text_encoder.set_vocabulary([[n] for n in unique], templates=templates)
        # query slot -> its text embedding row / its class (buffers: follow the model's device)
        dev = next(self.parameters(), torch.empty(0)).device
        self.register_buffer('slot_name', torch.tensor(slot_name, device=dev), persistent=False)
        self.register_buffer('slot_class', torch.tensor(slot_class, device=dev), persistent=False)

    @property
    def vocabulary(self) -> Optional[List[List[str]]]:
        return self._classes

    @property
    def class_names(self) -> Optional[List[str]]:
        return None if self._classes is None else [names[0] for names in self._classes]

    @property
    def has_background(self) -> bool:
        return False

    @property
    def out_channels(self) -> int:
        """Channels of the logits through inference: one per query slot."""
        return len(self.slot_class)

    # ------------------------------------------------------------------ scores
    def class_logits(self, feats: Tensor) -> Tensor:
        """(B, E, h, w) -> scaled cosines of every query slot (B, Q, h, w)."""
        text = self.class_embeddings().to(feats.dtype)[self.slot_name]
        return torch.einsum('behw,ne->bnhw', feats, text) * self.logit_scale

    def postprocess_result(self, seg_logits: Union[Tensor, List[Tensor]],
                           data_samples: OptSampleList = None) -> SampleList:
        """Query logits at ``ori_shape`` -> class probabilities -> area/probability thresholds."""
        data_samples = super().postprocess_result(seg_logits, data_samples)
        n = self.num_classes
        for ds in data_samples:
            q = ds.seg_logits.data
            probs = sclip_class_probs(q, self.slot_class, n)
            if self.area_thresh is not None and n > 1:
                area = torch.bincount(probs.argmax(0).flatten(), minlength=n)[1:].to(probs.dtype)
                keep = (area > self.area_thresh * area.sum()).to(probs.dtype)
                probs = torch.cat([probs[:1], probs[1:] * keep.view(-1, 1, 1)])
            top, pred = probs.max(0, keepdim=True)
            pred[top < self.prob_thresh] = 0
            ds.set_data(dict(seg_logits=PixelData(data=probs), pred_sem_seg=PixelData(data=pred)))
        return data_samples

    def _forward(self, inputs: Tensor, data_samples: OptSampleList = None) -> Tensor:
        """Class probabilities (B, num_classes, h, w) (mmseg's 'tensor' mode)."""
        q = super()._forward(inputs, data_samples)
        return torch.stack([sclip_class_probs(x, self.slot_class, self.num_classes) for x in q])
