"""DenseCLIPBaseline: training-free dense CLIP (the "CLIP" / MaskCLIP-style row of the benchmark tables)."""
from typing import List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType
from torch import Tensor, nn

from mmseg_ovs.datasets.class_names import Vocabulary
from .base_ovs_segmentor import BaseOVSSegmentor

__all__ = ['DenseCLIPBaseline']

DENSE_MODES = ('value', 'plain', 'pixelclip')


@MODELS.register_module()
class DenseCLIPBaseline(BaseOVSSegmentor):
    """Zero-shot dense CLIP segmentation without training.

    Per crop (or whole / squashed image): patch tokens of the CLIP ViT -> ``ln_post`` -> ``proj`` ->
    (optional resize to ``test_cfg.feature_size``) -> L2-normalise -> cosine with the class embeddings
    of the text encoder -> (optional) ``softmax(logit_scale * cos)`` and a constant background
    channel. The logits stay at the feature resolution; :class:`BaseOVSSegmentor` resizes them once
    (to the crop in slide mode, to the original image at the end).

    ``dense_mode`` selects the last block:

    - ``'value'`` (MaskCLIP): the last block's attention is replaced by its value path,
      ``out_proj(v(ln_1(x)))``, with no residual and no MLP.
    - ``'plain'``: the unmodified last block (dense tokens of a standard CLIP forward).
    - ``'pixelclip'``: PixelCLIP's ``forward_dense``: ``y = out_proj(v(ln_1(x))) + x_cls``;
      ``y + mlp(ln_2(y))`` (residual from the CLS *input* token), used for PixelCLIP's CLIP rows.

    Background: when ``bg_thresh`` is set and the first class is named ``background``, that class
    is not prompted; it scores the constant ``bg_thresh`` against the other classes' softmax
    probabilities, so a pixel is background when no class reaches the threshold (GroupViT/SegCLIP
    convention; ``logit_scale`` is the softmax temperature). Without ``bg_thresh`` the logits are
    the raw cosines (times ``logit_scale``); argmax is the same. Synonyms are averaged by the text
    encoder (mean of the normalised synonym embeddings), as in every segmentor.

    Args:
        backbone: :class:`OpenCLIPViT` config.
        text_encoder: :class:`OpenCLIPTextEncoder` config (its ``templates``/``frozen`` apply).
        class_names: any form of ``parse_vocabulary``: benchmark key (``'voc21'``), ``cls_*.txt``
            path, or a list (entries may be synonym lists or ``'a|b'`` strings).
        class_names_variant: e.g. ``'segclip'`` selects ``cls_voc21_segclip.txt``.
        templates: template-set name or list; overrides the text encoder's.
        dense_mode: see above.
        bg_thresh: background threshold on softmax probabilities, or None.
        logit_scale: temperature applied to the cosines.
        load_pretrained: load ``backbone.pretrained`` / ``text_encoder.pretrained`` at build time (a
            training-free model is tested without a checkpoint, so nothing else would load them).
        test_cfg: ``mode`` ``'whole'``, ``'squash'`` (``squash_size``) or ``'slide'``
            (``crop_size``/``stride``/``slide_batch``); ``feature_size`` (bilinearly resize the dense
            features to (h, w) before the cosine, PixelCLIP's 64x64).
    """

    def __init__(self,
                 backbone: ConfigType,
                 text_encoder: ConfigType,
                 class_names: Vocabulary = 'voc21',
                 class_names_variant: Optional[str] = None,
                 templates: Union[str, Sequence[str], None] = None,
                 dense_mode: str = 'value',
                 bg_thresh: Optional[float] = None,
                 logit_scale: float = 100.0,
                 load_pretrained: bool = True,
                 align_corners: bool = False,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg=None):
        super().__init__(test_cfg=test_cfg, data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if dense_mode not in DENSE_MODES:
            raise ValueError(f'dense_mode must be one of {DENSE_MODES}, got {dense_mode!r}')
        self.backbone = MODELS.build(backbone)
        text_encoder = dict(text_encoder)
        text_encoder.setdefault('frozen', True)
        self.text_encoder = MODELS.build(text_encoder)
        # The image tower keeps requires_grad=True although nothing is trained: MMEngine wraps the model
        # in DDP for multi-GPU evaluation, and DDP refuses a module without a trainable parameter.
        if load_pretrained:
            if getattr(self.backbone, 'pretrained', None):
                self.backbone.init_weights()
            if getattr(self.text_encoder, 'pretrained', None):
                self.text_encoder.init_weights()
        self.dense_mode = dense_mode
        self.bg_thresh = bg_thresh
        self.logit_scale = float(logit_scale)
        self.align_corners = align_corners
        self.set_vocabulary(class_names, templates=templates, variant=class_names_variant)

    @property
    def bg_thresh(self) -> Optional[float]:
        return self._bg_thresh

    @bg_thresh.setter
    def bg_thresh(self, value: Optional[float]) -> None:
        """With a threshold, a leading 'background' is thresholded instead of prompted."""
        self._bg_thresh = value
        self.text_encoder.background_class = 'background' if value is not None else None
        self.text_encoder.invalidate_cache()

    def check_vocabulary(self, vocabulary) -> None:
        """With ``bg_thresh`` the first class must be 'background' (thresholded, not prompted)."""
        if self.bg_thresh is not None:
            if vocabulary[0][0].strip().lower() != 'background':
                raise ValueError(f'bg_thresh={self.bg_thresh} needs "background" as the first class, '
                                 f'got {vocabulary[0]}')
            if len(vocabulary) < 2:
                raise ValueError('no class to prompt besides background')

    # ------------------------------------------------------------------ features
    def extract_feat(self, inputs: Tensor) -> Tensor:
        """(B, 3, H, W) -> L2-normalised dense features (B, E, h, w)."""
        bb = self.backbone
        h, w = bb.grid_size(inputs)
        x = bb.embed(inputs)
        if self.dense_mode == 'plain':
            x = bb.forward_blocks(x)
        else:
            x = bb.forward_blocks(x, 0, bb.num_layers - 1)
            x = self._dense_last_block(bb.blocks[-1], x)
        x = bb.project(x[:, 1:])
        x = x.transpose(1, 2).reshape(x.shape[0], -1, h, w)
        size = self.test_cfg.get('feature_size')
        if size is not None:
            x = F.interpolate(x, size=tuple(size), mode='bilinear', align_corners=False)
        return F.normalize(x, dim=1)

    def _dense_last_block(self, block, x: Tensor) -> Tensor:
        """Value-path last block on (B, L, C) tokens (``dense_mode`` 'value' or 'pixelclip')."""
        attn = block.attn
        c = x.shape[-1]
        v = F.linear(block.ln_1(x), attn.in_proj_weight[2 * c:], attn.in_proj_bias[2 * c:])
        v = attn.out_proj(v)
        ls_1 = getattr(block, 'ls_1', None) or nn.Identity()  # open_clip LayerScale (Identity for CLIP)
        ls_2 = getattr(block, 'ls_2', None) or nn.Identity()
        if self.dense_mode == 'value':
            return v
        y = ls_1(v) + x[:, :1]
        return y + ls_2(block.mlp(block.ln_2(y)))

    def class_logits(self, feats: Tensor) -> Tensor:
        """Dense features (B, E, h, w) -> class scores (B, num_classes, h, w)."""
        text = self.class_embeddings().to(feats.dtype)  # (num_prompted, E), cached, normalised
        logits = torch.einsum('behw,ne->bnhw', feats, text) * self.logit_scale
        if not self.has_background:
            return logits
        probs = logits.softmax(dim=1)
        bg = probs.new_full((probs.shape[0], 1) + probs.shape[2:], float(self.bg_thresh))
        return torch.cat([bg, probs], dim=1)

    def encode_decode(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """Class scores at the feature resolution: (B, num_classes, h, w)."""
        return self.class_logits(self.extract_feat(inputs))
