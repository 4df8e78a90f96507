"""DenseCLIPBaseline: training-free dense CLIP (the "CLIP" / MaskCLIP-style row of the benchmark tables)."""
from typing import List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmengine.config import ConfigDict
from mmseg.models.segmentors import BaseSegmentor
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType, OptSampleList, SampleList
from torch import Tensor, nn

from mmseg_ovs.datasets.class_names import load_class_names

__all__ = ['DenseCLIPBaseline']

DENSE_MODES = ('value', 'plain', 'pixelclip')


@MODELS.register_module()
class DenseCLIPBaseline(BaseSegmentor):
    """Zero-shot dense CLIP segmentation without training.

    Per crop (or whole image): patch tokens of the CLIP ViT -> ``ln_post`` -> ``proj`` ->
    L2-normalise -> cosine with the template-averaged class text embeddings -> (optional)
    ``softmax(logit_scale * cos)`` and a constant background channel -> upsample.

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
    the raw cosines (times ``logit_scale``); argmax is the same.

    Synonyms on one line of a class-name file are scored separately and max-pooled
    (``synonym_reduce='max'``, SCLIP) or averaged in embedding space (``'mean'``).

    Args:
        backbone: :class:`OpenCLIPViT` config.
        text_encoder: :class:`OpenCLIPTextEncoder` config (its ``templates``/``frozen`` apply).
        class_names: benchmark key (``'voc21'``), ``cls_*.txt`` path, or a list (entries may be
            synonym lists).
        class_names_variant: e.g. ``'segclip'`` selects ``cls_voc21_segclip.txt``.
        templates: template-set name or list; overrides the text encoder's.
        dense_mode: see above.
        bg_thresh: background threshold on softmax probabilities, or None.
        logit_scale: temperature applied to the cosines.
        synonym_reduce: ``'max'`` or ``'mean'``.
        load_pretrained: load ``backbone.pretrained`` / ``text_encoder.pretrained`` at build time (a
            training-free model is tested without a checkpoint, so nothing else would load them).
        test_cfg: ``mode`` ``'whole'`` or ``'slide'``; ``crop_size``/``stride`` (slide);
            ``slide_batch`` (crops per forward, default 16); ``squash_size`` (whole mode: resize the
            input to this (h, w) without keeping the aspect ratio, PixelCLIP); ``feature_size``
            (bilinearly resize the dense features to (h, w) before the cosine, PixelCLIP's 64x64).
    """

    def __init__(self,
                 backbone: ConfigType,
                 text_encoder: ConfigType,
                 class_names: Union[str, Sequence] = 'voc21',
                 class_names_variant: Optional[str] = None,
                 templates: Union[str, Sequence[str], None] = None,
                 dense_mode: str = 'value',
                 bg_thresh: Optional[float] = None,
                 logit_scale: float = 100.0,
                 synonym_reduce: str = 'max',
                 load_pretrained: bool = True,
                 align_corners: bool = False,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg=None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if dense_mode not in DENSE_MODES:
            raise ValueError(f'dense_mode must be one of {DENSE_MODES}, got {dense_mode!r}')
        if synonym_reduce not in ('max', 'mean'):
            raise ValueError(f"synonym_reduce must be 'max' or 'mean', got {synonym_reduce!r}")
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
        self.synonym_reduce = synonym_reduce
        self.align_corners = align_corners
        self.test_cfg = ConfigDict(test_cfg if test_cfg is not None else dict(mode='whole'))

        self.register_buffer('synonym_owner', torch.empty(0, dtype=torch.long), persistent=False)
        self.set_vocabulary(class_names, templates=templates, variant=class_names_variant)

    def set_vocabulary(self, class_names: Union[str, Sequence], templates=None,
                       variant: Optional[str] = None) -> None:
        """Set the classes: a benchmark key / ``cls_*.txt`` path, or names (an entry may be a list
        of synonyms). With ``bg_thresh`` the first class must be 'background' (thresholded, not
        prompted)."""
        if isinstance(class_names, str):
            classes = load_class_names(class_names, variant)
        else:
            classes = [[c] if isinstance(c, str) else list(c) for c in class_names]
        if not classes:
            raise ValueError('empty vocabulary')
        has_background = self.bg_thresh is not None
        if has_background and classes[0][0].strip().lower() != 'background':
            raise ValueError(f'bg_thresh={self.bg_thresh} needs "background" as the first class, '
                             f'got {classes[0]}')
        prompted = classes[1:] if has_background else classes
        if not prompted:
            raise ValueError('no class to prompt besides background')
        if self.synonym_reduce == 'max':
            flat = [n for names in prompted for n in names]
            owners = [i for i, names in enumerate(prompted) for _ in names]
        else:
            flat, owners = prompted, list(range(len(prompted)))
        self.class_names = classes
        self.num_classes = self.out_channels = len(classes)
        self.has_background = has_background
        self.text_encoder.set_vocabulary(flat, templates=templates)
        self.synonym_owner = torch.tensor(owners, device=self.synonym_owner.device)

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
            x = resize(x, size=tuple(size), mode='bilinear', align_corners=False)
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
        text = self.text_encoder().to(feats.dtype)  # (N_names, E), cached, normalised
        cos = torch.einsum('behw,ne->bnhw', feats, text)
        n = len(self.class_names) - int(self.has_background)
        if self.synonym_reduce == 'max' and cos.shape[1] != n:
            idx = self.synonym_owner.view(1, -1, 1, 1).expand_as(cos)
            cos = cos.new_full((cos.shape[0], n) + cos.shape[2:], -2.0).scatter_reduce(
                1, idx, cos, reduce='amax')
        logits = cos * self.logit_scale
        if not self.has_background:
            return logits
        probs = logits.softmax(dim=1)
        bg = probs.new_full((probs.shape[0], 1) + probs.shape[2:], float(self.bg_thresh))
        return torch.cat([bg, probs], dim=1)

    def encode_decode(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """Class scores at the input resolution: (B, num_classes, H, W)."""
        logits = self.class_logits(self.extract_feat(inputs))
        return resize(logits, size=inputs.shape[2:], mode='bilinear', align_corners=self.align_corners)

    # ------------------------------------------------------------------ inference
    def whole_inference(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        squash = self.test_cfg.get('squash_size')
        x = inputs if squash is None else resize(inputs, size=tuple(squash), mode='bilinear',
                                                 align_corners=False)
        logits = self.class_logits(self.extract_feat(x))
        return resize(logits, size=inputs.shape[2:], mode='bilinear', align_corners=self.align_corners)

    def slide_inference(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """mmseg's crop grid (last crop shifted to the border), crops batched ``slide_batch`` at a time."""
        h_stride, w_stride = self.test_cfg['stride']
        h_crop, w_crop = self.test_cfg['crop_size']
        chunk = int(self.test_cfg.get('slide_batch', 16))
        b, _, h_img, w_img = inputs.shape
        h_grids = max(h_img - h_crop + h_stride - 1, 0) // h_stride + 1
        w_grids = max(w_img - w_crop + w_stride - 1, 0) // w_stride + 1
        boxes = []
        for hi in range(h_grids):
            for wi in range(w_grids):
                y2, x2 = min(hi * h_stride + h_crop, h_img), min(wi * w_stride + w_crop, w_img)
                boxes.append((max(y2 - h_crop, 0), max(x2 - w_crop, 0), y2, x2))
        preds = inputs.new_zeros((b, self.out_channels, h_img, w_img))
        count = inputs.new_zeros((1, 1, h_img, w_img))
        for start in range(0, len(boxes), max(1, chunk // b)):
            group = boxes[start:start + max(1, chunk // b)]
            crops = torch.cat([inputs[:, :, y1:y2, x1:x2] for y1, x1, y2, x2 in group])
            out = self.encode_decode(crops, batch_img_metas).view(len(group), b, self.out_channels,
                                                                  *crops.shape[2:])
            for k, (y1, x1, y2, x2) in enumerate(group):
                preds[:, :, y1:y2, x1:x2] += out[k]
                count[:, :, y1:y2, x1:x2] += 1
        return preds / count

    def inference(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        mode = self.test_cfg.get('mode', 'whole')
        if mode == 'slide':
            return self.slide_inference(inputs, batch_img_metas)
        if mode == 'whole':
            return self.whole_inference(inputs, batch_img_metas)
        raise ValueError(f"test_cfg.mode must be 'slide' or 'whole', got {mode!r}")

    @torch.no_grad()
    def predict(self, inputs: Tensor, data_samples: OptSampleList = None) -> SampleList:
        if data_samples is not None:
            batch_img_metas = [s.metainfo for s in data_samples]
        else:
            batch_img_metas = [dict(ori_shape=inputs.shape[2:], img_shape=inputs.shape[2:],
                                    pad_shape=inputs.shape[2:], padding_size=[0, 0, 0, 0])] * inputs.shape[0]
        return self.postprocess_result(self.inference(inputs, batch_img_metas), data_samples)

    def _forward(self, inputs: Tensor, data_samples: OptSampleList = None) -> Tensor:
        return self.class_logits(self.extract_feat(inputs))

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        raise NotImplementedError('DenseCLIPBaseline is training-free; it has no loss')
