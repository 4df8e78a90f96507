"""SegCLIP (Luo et al., ICML 2023): CLIP ViT with a semantic group module, trained on
image-text pairs, evaluated by zero-shot group-to-class scoring with sliding windows."""
import math
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType, OptMultiConfig, SampleList
from torch import Tensor

from mmseg_ovs.utils.precision import float32_region

from mmseg_ovs.datasets.class_names import Vocabulary
from .base_ovs_segmentor import BaseOVSSegmentor
from ..utils import SegCLIPReconstruction, freeze_by_patterns, random_masking


@MODELS.register_module()
class SegCLIP(BaseOVSSegmentor):
    """SegCLIP segmentor.

    Image encoder: CLIP ViT ``embed`` (CLS dropped after ``ln_pre``) -> blocks
    ``[0, first_stage_layers)`` on the patch tokens -> :class:`SemanticGroupNeck` ->
    remaining CLIP blocks on the L region tokens -> ``[max over regions; regions]`` ->
    ``ln_post`` -> ``proj``. Text encoder: CLIP EOT feature.

    Training (``loss``): symmetric InfoNCE (gathered across ranks) + superpixel KL on the
    hard assignment of the unmasked pass + masked reconstruction from a second pass;
    the logit scale is ``min(exp(logit_scale), 100)`` and the parameter is clamped to
    ``ln 100`` before every step (i.e. after the previous optimizer step).

    Inference (``predict``): per crop, the soft assignment is upsampled bilinearly and
    each pixel takes its argmax group; groups are scored against the class prompts
    (softmax over classes, times the softmax restricted to the image-level top-k
    classes); background where the pixel's best score < min(bg_thresh, max score).

    Args:
        backbone (dict): an ``OpenCLIPViT`` config.
        text_encoder (dict): an ``OpenCLIPTextEncoder`` config.
        neck (dict): a ``SemanticGroupNeck`` config (``in_channels`` / ``num_heads``
            default to the backbone's width and heads).
        first_stage_layers (int): CLIP blocks before the group module. Default 10.
        reconstruction (dict, optional): kwargs of :class:`SegCLIPReconstruction`
            (``None`` disables the branch), plus ``mask_ratio`` (0.75).
        loss_contrastive / loss_superpixel (dict, optional): loss configs.
        loss_reconstruction_weight (float): weight of the MSE. Default 1.0.
        logit_scale_max (float): clamp of exp(logit_scale). Default 100.
        caption_length (int): caption token length when captions are tokenised here.
        class_names (optional): test vocabulary in any form of ``parse_vocabulary`` (benchmark
            key, ``cls_*.txt`` path, list with synonyms); a leading 'background' is not prompted
            but predicted by the threshold.
        templates: prompt templates (``'single'`` = "a photo of a {}."); ensembled as the
            official code (mean of raw features, ``template_reduce='raw'``); synonyms: mean of
            the normalised synonym embeddings.
        bg_thresh (float): background threshold (VOC 0.80, Context 0.25, COCO-Object 0.65).
        topk (int): image-level class filter. Default 5.
        frozen_patterns (list[str]): regexes over parameter names to freeze (the recipe
            freezes token/positional embeddings, ``conv1`` and ``ln_pre``).
    """

    def __init__(self,
                 backbone: ConfigType,
                 text_encoder: ConfigType,
                 neck: ConfigType,
                 first_stage_layers: int = 10,
                 reconstruction: Optional[dict] = dict(mask_ratio=0.75),
                 loss_contrastive: OptConfigType = dict(type='ContrastiveLoss'),
                 loss_superpixel: OptConfigType = dict(type='SuperpixelKLLoss'),
                 loss_reconstruction_weight: float = 1.0,
                 logit_scale_max: float = 100.,
                 caption_length: int = 32,
                 class_names: Optional[Vocabulary] = None,
                 templates: Union[str, Sequence[str]] = 'single',
                 bg_thresh: Optional[float] = 0.8,
                 topk: int = 5,
                 frozen_patterns: Sequence[str] = (),
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None):
        super().__init__(test_cfg=test_cfg, data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        backbone = dict(backbone)
        # SegCLIP uses every CLIP block, ln_post and proj (none may be frozen as "unused")
        backbone.setdefault('out_dense_proj', True)
        self.backbone = MODELS.build(backbone)
        text_encoder = dict(text_encoder)
        text_encoder.setdefault('template_reduce', 'raw')  # official: normalize(mean of raw features)
        text_encoder['background_class'] = 'background'
        if isinstance(templates, str) and '{' in templates:
            templates = [templates]
        text_encoder['templates'] = templates
        self.text_encoder = MODELS.build(text_encoder)
        width = self.backbone.width
        heads = self.backbone.blocks[0].attn.num_heads
        neck = dict(neck)
        neck.setdefault('in_channels', width)
        neck.setdefault('num_heads', heads)
        self.neck = MODELS.build(neck)
        self.first_stage_layers = first_stage_layers
        self.num_centres = self.neck.num_centres
        self.reconstruction = None
        if reconstruction is not None:
            rec = dict(reconstruction)
            self.mask_ratio = rec.pop('mask_ratio', 0.75)
            grid = self.backbone.visual.grid_size
            rec.setdefault('num_patches', grid[0] * grid[1])
            rec.setdefault('patch_size', self.backbone.patch_size[0])
            rec.setdefault('num_centres', self.num_centres)
            rec.setdefault('num_heads', heads)
            self.reconstruction = SegCLIPReconstruction(width, **rec)
        self.loss_contrastive = MODELS.build(loss_contrastive) if loss_contrastive else None
        self.loss_superpixel = MODELS.build(loss_superpixel) if loss_superpixel else None
        self.loss_reconstruction_weight = loss_reconstruction_weight
        self.logit_scale_max = logit_scale_max
        self.caption_length = caption_length
        self.bg_thresh = bg_thresh
        self.topk = topk
        self.train_cfg = train_cfg
        if class_names is not None:
            self.set_vocabulary(class_names)
        self.frozen_parameters = freeze_by_patterns(self, frozen_patterns)

    # ------------------------------------------------------------------ weights
    def init_weights(self):
        """CLIP towers from their files; new modules N(0, 0.02) Linear init (official)."""
        super().init_weights()
        for mod in (self.neck, self.reconstruction):
            if mod is None:
                continue
            for m in mod.modules():
                if isinstance(m, nn.Linear):  # incl. attention out_proj, as officially
                    nn.init.normal_(m.weight, std=.02)
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)

    @property
    def logit_scale(self) -> Tensor:
        """s = min(exp(logit_scale), logit_scale_max)."""
        return self.text_encoder.logit_scale.exp().clamp(max=self.logit_scale_max)

    def clamp_logit_scale(self):
        with torch.no_grad():
            self.text_encoder.logit_scale.clamp_(max=math.log(self.logit_scale_max))

    # ------------------------------------------------------------------ encoders
    def encode_image(self, img: Tensor, gumbel_noise: Optional[Tensor] = None,
                     return_intermediates: bool = False,
                     tokens: Optional[Tensor] = None,
                     stage1: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """Image encoder.

        ``tokens`` (B, 1 + N, C): the ``embed`` output when already computed; ``stage1``
        (B, N, C): the patch tokens after the first ``first_stage_layers`` blocks, likewise.
        Returns a dict with ``image_feature`` (B, E), ``region_features`` (B, L, E),
        ``soft_assign`` / ``hard_assign`` / ``assign_logits`` (B, L, N), and, with
        ``return_intermediates``, the per-stage tokens.
        """
        if tokens is None:
            tokens = self.backbone.embed(img)
        h = stage1 if stage1 is not None else \
            self.backbone.forward_blocks(tokens[:, 1:], 0, self.first_stage_layers)
        g = self.neck(h, gumbel_noise=gumbel_noise, return_intermediates=return_intermediates)
        r = self.backbone.forward_blocks(g['group_tokens'], self.first_stage_layers)
        x = torch.cat([r.max(dim=1, keepdim=True)[0], r], dim=1)
        proj = self.backbone.project(x)
        out = dict(image_feature=proj[:, 0], region_features=proj[:, 1:],
                   soft_assign=g['soft_assign'], hard_assign=g['hard_assign'],
                   assign_logits=g['assign_logits'])
        if return_intermediates:
            out.update(tokens_after_ln_pre=tokens, tokens_after_stage1=h,
                       group_centres=g['centres'], group_region_features=g['group_tokens'],
                       tokens_after_stage3=r, tokens_before_ln_post=x,
                       tokens_after_ln_post=self.backbone.visual.ln_post(x), projected_tokens=proj,
                       group_intermediates=g['intermediates'])
        return out

    def encode_text(self, tokens: Tensor) -> Tensor:
        """(N, T) token ids -> (N, E) un-normalised EOT features."""
        return self.text_encoder.encode_tokens(tokens)

    # ------------------------------------------------------------------ training
    def reconstruction_loss(self, img: Tensor, mask_noise: Optional[Tensor] = None,
                            gumbel_noise: Optional[Tensor] = None,
                            intermediates: Optional[dict] = None,
                            tokens: Optional[Tensor] = None,
                            masking: Optional[tuple] = None,
                            stage1: Optional[Tensor] = None) -> Tensor:
        """Second, masked pass: keep int(197 * 0.25) tokens (CLS always), stage 1 and the
        group module (train mode) on the visible patches, then the reconstruction branch.
        ``tokens``: the ``embed`` output of ``img`` if already computed (it is not recomputed);
        ``masking``: the :func:`random_masking` output and ``stage1`` (B, K-1, C) the visible
        patches after stage 1, if already computed (``compute_losses`` runs both passes' stage 1
        together)."""
        if tokens is None:
            tokens = self.backbone.embed(img)
        if masking is None:
            masking = random_masking(tokens, self.mask_ratio, mask_noise)
        visible, mask, ids_restore, ids_keep = masking
        h = stage1 if stage1 is not None else \
            self.backbone.forward_blocks(visible[:, 1:], 0, self.first_stage_layers)
        g = self.neck(h, gumbel_noise=gumbel_noise)
        if intermediates is not None:
            intermediates.update(mask=mask, ids_restore=ids_restore, ids_keep=ids_keep,
                                 visible_tokens_after_ln_pre=visible,
                                 visible_tokens_after_stage1=h, group=g)
        return self.reconstruction(g['group_tokens'], g['hard_assign'], ids_restore, mask,
                                   img, intermediates)

    def compute_losses(self, img: Tensor, text_tokens: Tensor,
                       superpixel_labels: Optional[Tensor] = None,
                       gumbel_noise_main: Optional[Tensor] = None,
                       gumbel_noise_mae: Optional[Tensor] = None,
                       mask_noise: Optional[Tensor] = None,
                       extras: Optional[dict] = None) -> Dict[str, Tensor]:
        """All SegCLIP losses for a batch (noise may be injected for parity tests)."""
        text = self.encode_text(text_tokens)
        # patch embedding, positions and ln_pre once for both image passes
        tokens = self.backbone.embed(img)
        masking = stage1 = stage1_visible = None
        if self.reconstruction is not None:
            # stage 1 of both image passes at once (token-wise layers on all tokens, attention
            # per pass; equal up to float rounding). The masked pass's noise is drawn after the
            # unmasked pass's Gumbel noise, as when the passes run one after the other.
            if gumbel_noise_main is None and self.neck.training:
                B, N = tokens.shape[0], tokens.shape[1] - 1
                gumbel_noise_main = -torch.empty(B, self.num_centres, N, device=tokens.device,
                                                 dtype=torch.float32).exponential_().log()
            masking = random_masking(tokens, self.mask_ratio, mask_noise)
            stage1, stage1_visible = self.backbone.forward_blocks_joint(
                [tokens[:, 1:], masking[0][:, 1:]], 0, self.first_stage_layers)
        enc = self.encode_image(img, gumbel_noise=gumbel_noise_main, tokens=tokens,
                                stage1=stage1)
        losses = {}
        if self.loss_contrastive is not None:
            loss, logits = self.loss_contrastive(enc['image_feature'], text, self.logit_scale,
                                                 return_logits=True)
            losses[self.loss_contrastive.loss_name] = loss
            if extras is not None:
                extras.update(logits, text_feature=text, image_feature=enc['image_feature'],
                              encoder=enc)
        if self.loss_superpixel is not None:
            if superpixel_labels is None:
                raise ValueError('SegCLIP superpixel loss needs superpixel_labels per sample')
            losses[self.loss_superpixel.loss_name] = self.loss_superpixel(
                enc['hard_assign'], superpixel_labels)
        if self.reconstruction is not None:
            rec = {} if extras is not None else None
            losses['loss_reconstruction'] = self.loss_reconstruction_weight * \
                self.reconstruction_loss(img, mask_noise, gumbel_noise_mae, rec, tokens,
                                         masking, stage1_visible)
            if extras is not None:
                extras['reconstruction'] = rec
        return losses

    def _gather_text_tokens(self, data_samples: SampleList, device) -> Tensor:
        tokens = [ds.get('caption_tokens', ds.metainfo.get('caption_tokens'))
                  for ds in data_samples]
        if all(t is not None for t in tokens):
            return torch.stack([torch.as_tensor(t) for t in tokens]).to(device)
        captions = [ds.metainfo.get('caption') for ds in data_samples]
        if any(c is None for c in captions):
            raise KeyError('SegCLIP training samples need `caption_tokens` or a `caption`')
        return self.text_encoder.tokenize(captions, self.caption_length).to(device)

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """Image-text training step. Each data sample carries ``caption_tokens`` (or a
        ``caption`` in its metainfo) and ``superpixel_labels`` (h, w) patch labels."""
        self.clamp_logit_scale()
        tokens = self._gather_text_tokens(data_samples, inputs.device)
        sp = None
        if self.loss_superpixel is not None:
            sp = [ds.get('superpixel_labels', ds.metainfo.get('superpixel_labels'))
                  for ds in data_samples]
            if any(s is None for s in sp):
                raise KeyError('SegCLIP training samples need `superpixel_labels`')
            sp = torch.stack([torch.as_tensor(s) for s in sp]).to(inputs.device)
        losses = self.compute_losses(inputs, tokens, sp)
        for name, value in losses.items():
            if not torch.isfinite(value):
                raise FloatingPointError(f'SegCLIP {name} is {value.item()}')
        return losses

    # ------------------------------------------------------------------ inference
    def check_vocabulary(self, vocabulary) -> None:
        """A leading 'background' is thresholded, not prompted: it needs ``bg_thresh``."""
        if vocabulary[0][0].lower() == 'background' and self.bg_thresh is None:
            raise ValueError("'background' is predicted by thresholding: set bg_thresh")

    def group_class_scores(self, region: Tensor, image: Tensor, text: Tensor):
        """Group-to-class scores Q (B, L, C) with the image-level top-k filter.

        Args:
            region: (B, L, E), image: (B, E) features; text: (C, E) normalised.
        Computed in float32 (autocast disabled): softmaxes of logits at scale 100 and a top-k.
        """
        with float32_region(region.device.type):
            return self._group_class_scores(region.float(), image.float(), text.float())

    def _group_class_scores(self, region: Tensor, image: Tensor, text: Tensor):
        s = self.logit_scale
        region = F.normalize(region, dim=-1)
        image = F.normalize(image, dim=-1)
        affinity = s * region @ text.t()  # (B, L, C)
        pre = affinity.softmax(-1)
        img_prob = (s * image @ text.t()).softmax(-1)  # (B, C)
        k = min(self.topk, text.shape[0])
        keep = torch.zeros_like(img_prob).scatter(1, img_prob.topk(k, dim=-1).indices, 1.) > 0
        masked = affinity.masked_fill(~keep[:, None], float('-inf')).softmax(-1)
        return dict(pre_affinity_softmax=pre, image_class_softmax=img_prob,
                    masked_affinity_softmax=masked, group_class_scores=masked * pre)

    def encode_decode(self, inputs: Tensor, batch_img_metas: List[dict],
                      return_details: bool = False):
        """Per-crop dense logits (B, 1 + C or C, H, W) at the crop resolution (background first)."""
        B, _, H, W = inputs.shape
        enc = self.encode_image(inputs)
        text = self.class_embeddings().to(inputs.dtype)
        sc = self.group_class_scores(enc['region_features'], enc['image_feature'], text)
        q = sc['group_class_scores']  # (B, L, C)
        gh, gw = self.backbone.grid_size(inputs)
        soft = enc['soft_assign'].reshape(B, -1, gh, gw)
        soft = F.interpolate(soft, size=(H, W), mode='bilinear', align_corners=False)
        group_index = soft.argmax(1)  # (B, H, W), first index on ties
        fg = torch.gather(q, 1, group_index.flatten(1)[..., None].expand(-1, -1, q.shape[-1]))
        fg = fg.transpose(1, 2).reshape(B, -1, H, W)  # (B, C, H, W)
        logits = fg
        if self.has_background:
            thr = q.flatten(1).max(1)[0].clamp(max=self.bg_thresh)  # (B,)
            bg = (fg.max(1, keepdim=True)[0] < thr[:, None, None, None]).to(fg.dtype)
            logits = torch.cat([bg, fg], dim=1)
        if return_details:
            details = dict(enc, group_index=group_index, upsampled_soft=soft, **sc)
            if self.has_background:
                details['bg_thresh_used'] = thr
            return logits, details
        return logits

    def extract_feat(self, inputs: Tensor) -> Dict[str, Tensor]:
        return self.encode_image(inputs)
