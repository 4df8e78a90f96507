"""CLIPPretrainer: contrastive image-text training of an open_clip CLIP through the MMEngine runner."""
from typing import Dict, List, Optional

import torch
from mmengine.model import BaseModel
from mmseg.registry import MODELS
from torch import Tensor

__all__ = ['CLIPPretrainer', 'export_clip_state_dict']


def export_clip_state_dict(state_dict: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """An mmseg_ovs state dict (``backbone.visual.*``, ``text_encoder.*``) -> open_clip CLIP names.

    The result loads with ``pretrained=`` into any mmseg_ovs encoder (an OpenCLIP checkpoint file).
    """
    out = {}
    for key, value in state_dict.items():
        if key.startswith('backbone.visual.'):
            out[key[len('backbone.'):]] = value
        elif key.startswith('text_encoder.') and not key.startswith('text_encoder.class_embeddings'):
            out[key[len('text_encoder.'):]] = value
    if not any(k.startswith('visual.') for k in out) or 'token_embedding.weight' not in out:
        raise KeyError('state dict has no backbone.visual.* / text_encoder.* CLIP weights')
    return out


@MODELS.register_module()
class CLIPPretrainer(BaseModel):
    """CLIP contrastive training: pooled image embedding vs end-of-text caption embedding.

    Args:
        backbone: an image tower with ``encode_image`` (e.g. :class:`OpenCLIPViT`).
        text_encoder: :class:`OpenCLIPTextEncoder` (its ``logit_scale`` is CLIP's temperature,
            clamped at ``logit_scale_max``).
        loss_contrastive: e.g. ``dict(type='ContrastiveLoss')`` (gathered across ranks).
        caption_length: caption token length (32, as SegCLIP).
        data_preprocessor: e.g. mmseg's ``SegDataPreProcessor`` with CLIP mean/std.

    Training samples carry ``caption_tokens`` (or ``caption``) in their metainfo, as packed by
    ``TokenizeCaption`` + ``PackSegInputs(meta_keys=(..., 'caption_tokens'))``.
    """

    def __init__(self, backbone: dict, text_encoder: dict, loss_contrastive: dict,
                 caption_length: int = 32, logit_scale_max: float = 100.0,
                 data_preprocessor: Optional[dict] = None, init_cfg=None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        backbone = dict(backbone)
        backbone.setdefault('freeze_unused', False)  # trained through encode_image (ln_post, proj)
        self.backbone = MODELS.build(backbone)
        self.text_encoder = MODELS.build(text_encoder)
        self.loss_contrastive = MODELS.build(loss_contrastive)
        self.caption_length = caption_length
        self.logit_scale_max = logit_scale_max

    def init_weights(self):
        self.backbone.init_weights()
        self.text_encoder.init_weights()

    def _caption_tokens(self, data_samples: List) -> Tensor:
        tokens = [ds.metainfo.get('caption_tokens') for ds in data_samples]
        if all(t is not None for t in tokens):
            return torch.stack([torch.as_tensor(t) for t in tokens])
        captions = [ds.metainfo.get('caption') for ds in data_samples]
        if any(c is None for c in captions):
            raise KeyError('CLIPPretrainer samples need `caption_tokens` or `caption` in their metainfo')
        return self.text_encoder.tokenize(captions, self.caption_length)

    def loss(self, inputs: Tensor, data_samples: List) -> Dict[str, Tensor]:
        with torch.no_grad():
            self.text_encoder.logit_scale.clamp_(max=float(torch.log(torch.tensor(self.logit_scale_max))))
        tokens = self._caption_tokens(data_samples).to(inputs.device)
        image = self.backbone.encode_image(inputs)
        text = self.text_encoder.encode_tokens(tokens)
        loss = self.loss_contrastive(image, text, self.text_encoder.logit_scale.exp())
        if not torch.isfinite(loss):
            raise FloatingPointError(f'contrastive loss is {loss.item()}')
        return {'loss_contrastive': loss, 'logit_scale': self.text_encoder.logit_scale.exp().detach()}

    def forward(self, inputs: Tensor, data_samples: Optional[List] = None, mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'tensor':
            return self.backbone.encode_image(inputs)
        raise ValueError(f'CLIPPretrainer supports modes "loss" and "tensor", not {mode!r}')
