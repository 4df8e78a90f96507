"""Online DINO k-means masks (PixelCLIP's "DINO" variant, as the official ``get_dino_masks``)."""
import os.path as osp
from typing import Any, Dict, Optional

import torch
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor

from .ovs_data_preprocessor import OVSDataPreProcessor

__all__ = ['OnlineDINOMaskPreProcessor', 'batched_kmeans', 'build_dino_vit']

IMAGENET_MEAN_255 = (123.675, 116.28, 103.53)  # detectron2 PIXEL_MEAN / PIXEL_STD (RGB, 0-255)
IMAGENET_STD_255 = (58.395, 57.12, 57.375)


def build_dino_vit(checkpoint: Optional[str] = None, arch: str = 'vit_small_patch16_224', **timm_kwargs):
    """DINO ViT (timm, dynamic image size), weights from a LOCAL DINO file (``dino_deitsmall16_pretrain
    .pth`` or a DINO training checkpoint's ``teacher``); never downloads. Frozen, eval mode."""
    import timm
    model = timm.create_model(arch, pretrained=False, num_classes=0, dynamic_img_size=True, **timm_kwargs)
    if checkpoint:
        if not osp.isfile(checkpoint):
            raise FileNotFoundError(f'DINO checkpoint not found: {checkpoint}')
        from mmseg_ovs.utils.checkpoint import safe_torch_load
        sd = safe_torch_load(checkpoint)  # the one weights_only loader (closed allow-list)
        sd = sd.get('teacher', sd) if isinstance(sd, dict) else sd
        sd = {k.replace('module.', '').replace('backbone.', ''): v for k, v in sd.items()}
        missing, _ = model.load_state_dict(sd, strict=False)
        missing = [k for k in missing if not k.startswith('head')]
        if missing:
            raise RuntimeError(f'{checkpoint} does not fit {arch}: missing {missing[:5]}')
    model.requires_grad_(False)
    return model.eval()


@torch.no_grad()
def batched_kmeans(x: Tensor, k: int, max_iter: int = 100, tol: float = 1e-4,
                   generator: Optional[torch.Generator] = None) -> Tensor:
    """Euclidean k-means on every item of a batch at once: (B, N, C) -> labels (B, N).

    The algorithm of ``fast_pytorch_kmeans.KMeans(n_clusters=k)`` (the official choice, defaults):
    random init from k distinct points, nearest centroid by ``2 x.c - |c|^2``, centroid = mean of its
    points (an empty cluster's centroid becomes 0), stop when the summed squared centroid change is
    <= ``tol`` or after ``max_iter``; the labels are the last assignment (made before the last
    update). Each item stops on its own criterion (a converged item is frozen). With fewer than
    ``k`` points, ``k`` becomes the number of points.
    """
    B, N, C = x.shape
    k = min(k, N)  # fewer tokens than clusters (tiny crops): every token its own cluster
    x = x.float()
    rand = torch.rand(B, N, generator=generator, device='cpu' if generator is None else generator.device)
    init = rand.to(x.device).argsort(dim=1)[:, :k]
    centroids = torch.gather(x, 1, init.unsqueeze(-1).expand(B, k, C))
    active = torch.ones(B, dtype=torch.bool, device=x.device)
    labels = torch.zeros(B, N, dtype=torch.long, device=x.device)
    for _ in range(max_iter):
        sim = 2 * x @ centroids.transpose(1, 2) - (centroids ** 2).sum(-1).unsqueeze(1)
        closest = sim.argmax(-1)
        labels = torch.where(active.unsqueeze(1), closest, labels)
        onehot = F.one_hot(closest, k).to(x.dtype).transpose(1, 2)  # (B, k, N)
        new = (onehot @ x) / onehot.sum(-1, keepdim=True)
        new = torch.nan_to_num(new, nan=0.0)
        error = ((new - centroids) ** 2).sum(dim=(1, 2))
        centroids = torch.where(active.view(B, 1, 1), new, centroids)
        active = active & (error > tol)
        if not bool(active.any()):
            break
    return labels


@MODELS.register_module()
class OnlineDINOMaskPreProcessor(OVSDataPreProcessor):
    """:class:`OVSDataPreProcessor` that, in training, adds PixelCLIP's online DINO masks to every
    data sample (``data_sample.unlabeled_masks``: (k, H, W) bool), batched on the device.

    Per batch, as the official ``PixelCLIP.get_dino_masks``: the *weak* view (the first 3 channels of
    ``inputs``, 0-255) is normalised with the ImageNet mean/std, resized (bilinear) to sides floored to
    a multiple of 16, the frozen DINO ViT-S/16 gives the last block's normed patch tokens (CLS
    dropped), k-means with ``num_clusters`` = 16 runs per image (:func:`batched_kmeans`), and the
    one-hot labels are upsampled (nearest) to the crop as ``num_clusters`` masks (empty clusters give
    empty masks, dropped later by the head's > 1 pixel filter). The cutout is not removed (official).

    The DINO model is not a registered sub-module: it is frozen, not saved in checkpoints and is
    moved to the inputs' device at first use; its weights come from ``dino_checkpoint`` (a local file).

    Args:
        dino_checkpoint (str): local DINO ViT-S/16 weights; None only for tests (random weights).
        dino_arch (str): timm architecture. Default ``'vit_small_patch16_224'``.
        num_clusters (int): k. Default 16.
        patch_size (int): DINO patch size. Default 16.
        inputs_bgr (bool): the weak view is BGR (mmcv loading; the PixelCLIP configs). Default True.
        kmeans_max_iter, kmeans_tol: k-means stopping (official defaults 100, 1e-4).
        seed (int, optional): seed of the k-means initialisation (official: unseeded); None draws from
            torch's global RNG (saved/restored with the run's RNG state).
        dino_kwargs (dict, optional): extra timm kwargs (tests build a tiny DINO with them).
    """

    def __init__(self, *args, dino_checkpoint: Optional[str] = None, dino_arch: str = 'vit_small_patch16_224',
                 num_clusters: int = 16, patch_size: int = 16, inputs_bgr: bool = True,
                 kmeans_max_iter: int = 100, kmeans_tol: float = 1e-4, seed: Optional[int] = None,
                 dino_kwargs: Optional[dict] = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.dino_checkpoint, self.dino_arch = dino_checkpoint, dino_arch
        self.num_clusters, self.patch_size, self.inputs_bgr = num_clusters, patch_size, inputs_bgr
        self.kmeans_max_iter, self.kmeans_tol, self.seed = kmeans_max_iter, kmeans_tol, seed
        self.dino_kwargs = dino_kwargs or {}
        self.register_buffer('dino_mean', torch.tensor(IMAGENET_MEAN_255).view(1, 3, 1, 1), persistent=False)
        self.register_buffer('dino_std', torch.tensor(IMAGENET_STD_255).view(1, 3, 1, 1), persistent=False)
        self.__dict__['_dino'] = None  # deliberately not a sub-module
        self._generator = None

    @property
    def dino(self):
        if self.__dict__['_dino'] is None:
            self.__dict__['_dino'] = build_dino_vit(self.dino_checkpoint, self.dino_arch, **self.dino_kwargs)
        return self.__dict__['_dino']

    @torch.no_grad()
    def dino_masks(self, weak: Tensor) -> Tensor:
        """(B, 3, H, W) 0-255 weak views -> (B, k, H, W) bool masks."""
        dino = self.dino
        if next(dino.parameters()).device != weak.device:
            dino.to(weak.device)
        x = weak.float()
        if self.inputs_bgr:
            x = x.flip(1)
        x = (x - self.dino_mean.to(x.device)) / self.dino_std.to(x.device)
        H, W = x.shape[-2:]
        p = self.patch_size
        gh, gw = H // p, W // p
        x = F.interpolate(x, size=(gh * p, gw * p), mode='bilinear', align_corners=False)
        tokens = dino.forward_features(x)[:, dino.num_prefix_tokens:]  # final norm applied, CLS dropped
        if self.seed is not None and self._generator is None:
            self._generator = torch.Generator(device='cpu').manual_seed(self.seed)
        labels = batched_kmeans(tokens, self.num_clusters, self.kmeans_max_iter, self.kmeans_tol,
                                self._generator)
        onehot = F.one_hot(labels, self.num_clusters).transpose(1, 2).reshape(len(x), self.num_clusters, gh, gw)
        return F.interpolate(onehot.float(), size=(H, W), mode='nearest').bool()

    def forward(self, data: dict, training: bool = False) -> Dict[str, Any]:
        out = super().forward(data, training=training)
        if training:
            masks = self.dino_masks(out['inputs'][:, :3])
            for ds, m in zip(out['data_samples'], masks):
                if 'unlabeled_masks_packed' in ds:
                    del ds.unlabeled_masks_packed
                ds.unlabeled_masks = m
                ds.set_metainfo(dict(num_unlabeled_masks=self.num_clusters))
        return out
