"""DINO k-means masks (PixelCLIP's "DINO" variant), offline, as SA-1B-style JSON (COCO RLE).

DINO ViT-S/16 is built with timm (``vit_small_patch16_224``, dynamic image size) and loaded from a
LOCAL DINO checkpoint (``dino_deitsmall16_pretrain.pth``; no torch.hub). Per image: ImageNet
normalisation, sides floored to multiples of 16, last-layer normed patch tokens, k-means (16 clusters,
k-means++ init, seeded, deterministic), one mask per non-empty cluster, nearest-upsampled to the image.
Resumable, atomic writes, progress bar.

    python data_prep/dino_masks.py IMG_DIR OUT_DIR --checkpoint dino_deitsmall16_pretrain.pth
"""
import argparse

import numpy as np
import torch
import torch.nn.functional as F

try:
    from pixelclip_mask_io import masks_for_folder
except ImportError:
    from data_prep.pixelclip_mask_io import masks_for_folder

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def build_dino(checkpoint=None, arch='vit_small_patch16_224', device='cpu'):
    """The frozen DINO ViT of the online mask source (one builder for both), on ``device``."""
    from mmseg_ovs.models.data_preprocessors.online_dino_masks import build_dino_vit
    return build_dino_vit(checkpoint, arch).to(device)


def kmeans(x: torch.Tensor, k: int, iters: int = 100, tol: float = 1e-4, seed: int = 0) -> torch.Tensor:
    """Euclidean k-means (k-means++ init) on (N, C) -> labels (N,)."""
    gen = torch.Generator(device='cpu').manual_seed(seed)
    n = x.shape[0]
    k = min(k, n)
    centers = [x[torch.randint(n, (1,), generator=gen).item()]]
    d2 = ((x - centers[0]) ** 2).sum(1)
    for _ in range(1, k):
        probs = (d2 / d2.sum().clamp_min(1e-12)).cpu()
        idx = torch.multinomial(probs, 1, generator=gen).item() if float(d2.sum()) > 0 else 0
        centers.append(x[idx])
        d2 = torch.minimum(d2, ((x - x[idx]) ** 2).sum(1))
    c = torch.stack(centers)
    for _ in range(iters):
        labels = torch.cdist(x, c).argmin(1)
        new = torch.zeros_like(c).index_add_(0, labels, x)
        cnt = torch.bincount(labels, minlength=k).unsqueeze(1).to(x.dtype)
        new = torch.where(cnt > 0, new / cnt.clamp_min(1), c)  # empty cluster keeps its centre
        shift = (new - c).norm(dim=1).max()
        c = new
        if shift < tol:
            break
    return torch.cdist(x, c).argmin(1)


@torch.no_grad()
def dino_masks(model, img: np.ndarray, n_clusters: int = 16, patch: int = 16, device='cpu', seed=0):
    """(H, W, 3) uint8 RGB -> (m, H, W) bool masks (m <= n_clusters, empty clusters dropped)."""
    h, w = img.shape[:2]
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float().div(255).to(device)
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
    x = (x - mean) / std
    gh, gw = max(h // patch, 1), max(w // patch, 1)
    x = F.interpolate(x, size=(gh * patch, gw * patch), mode='bilinear', align_corners=False)
    tokens = model.forward_features(x)[0, model.num_prefix_tokens:]  # (gh*gw, C), final norm applied
    labels = kmeans(tokens.float(), n_clusters, seed=seed).view(1, 1, gh, gw).float()
    labels = F.interpolate(labels, size=(h, w), mode='nearest')[0, 0].long()
    onehot = F.one_hot(labels, n_clusters).permute(2, 0, 1).bool()
    return onehot[onehot.flatten(1).any(1)].cpu().numpy()


def run(img_dir, out_dir, model, n_clusters=16, device='cpu', overwrite=False):
    """Write one JSON per image; returns (written, skipped_existing, failed)."""
    return masks_for_folder(img_dir, out_dir, lambda img: dino_masks(model, img, n_clusters, device=device),
                            'DINO masks', overwrite)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('img_dir')
    p.add_argument('out_dir')
    p.add_argument('--checkpoint', required=True, help='local DINO ViT-S/16 checkpoint')
    p.add_argument('--clusters', type=int, default=16)
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--overwrite', action='store_true')
    a = p.parse_args()
    model = build_dino(a.checkpoint, device=a.device)
    w, s, f = run(a.img_dir, a.out_dir, model, a.clusters, a.device, a.overwrite)
    print(f'written {w}, already done {s}, failed {len(f)}')


if __name__ == '__main__':
    main()
