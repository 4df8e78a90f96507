"""OpenCLIPConvNeXt: an open_clip timm ConvNeXt image tower (e.g. ``convnext_base_w_320``) as an mmseg
backbone with dense (un-pooled) projected features."""
from typing import Optional, Sequence, Tuple

import torch
from mmengine.model import BaseModule
from mmseg.registry import MODELS

from mmseg_ovs.models.utils.freeze import freeze_by_patterns
from mmseg_ovs.models.clip.builder import build_open_clip, load_clip_weights_into

__all__ = ['OpenCLIPConvNeXt']


@MODELS.register_module()
class OpenCLIPConvNeXt(BaseModule):
    """open_clip ConvNeXt (timm trunk + linear projection head).

    ``self.visual`` is open_clip's ``TimmModel``: ``visual.trunk`` (timm ConvNeXt) and ``visual.head.proj``.

    Args:
        model_name: open_clip architecture name (default ``convnext_base_w_320``, PixelCLIP's).
        model_cfg / pretrained / frozen_patterns: as :class:`OpenCLIPViT`.
        out_indices: trunk stages whose (B, C_i, H/2^(i+2), W/2^(i+2)) maps ``forward`` returns.
        out_dense_proj: append the dense projected map (B, E, H/32, W/32).
    """

    def __init__(self,
                 model_name: str = 'convnext_base_w_320',
                 model_cfg: Optional[dict] = None,
                 pretrained: Optional[str] = None,
                 out_indices: Sequence[int] = (),
                 out_dense_proj: bool = True,
                 frozen_patterns: Sequence[str] = (),
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.pretrained = pretrained
        self.visual = build_open_clip(model_name, model_cfg=model_cfg).visual
        if not hasattr(self.visual, 'trunk'):
            raise TypeError(f'{model_name} is not a timm (ConvNeXt) tower; use OpenCLIPViT')
        self.embed_dim = self.visual.head.proj.out_features
        self.out_indices = tuple(out_indices)
        self.out_dense_proj = out_dense_proj
        self.frozen_parameters = freeze_by_patterns(self, frozen_patterns)

    def init_weights(self):
        if self.pretrained:
            load_clip_weights_into(self, self.pretrained, prefixes=('visual.',))
        else:
            super().init_weights()

    def encode_image(self, img: torch.Tensor) -> torch.Tensor:
        """Pooled projection, equal to open_clip's ``encode_image``: (B, E)."""
        return self.visual(img)

    def project_dense(self, feats: torch.Tensor) -> torch.Tensor:
        """Trunk head LayerNorm + projection at every location: (B, C, h, w) -> (B, E, h, w)."""
        x = self.visual.trunk.head.norm(feats)
        x = self.visual.head(x.permute(0, 2, 3, 1))
        return x.permute(0, 3, 1, 2)

    def dense_features(self, img: torch.Tensor) -> torch.Tensor:
        """(B, E, H/32, W/32) un-pooled projected features (PixelCLIP's dense ConvNeXt output)."""
        return self.project_dense(self.visual.trunk.forward_features(img))

    def forward(self, img: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        trunk = self.visual.trunk
        x = trunk.stem(img)
        outs = []
        for i, stage in enumerate(trunk.stages):
            x = stage(x)
            if i in self.out_indices:
                outs.append(x)
        if self.out_dense_proj:
            outs.append(self.project_dense(trunk.norm_pre(x)))
        return tuple(outs)
