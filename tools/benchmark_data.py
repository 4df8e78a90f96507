"""Data-side throughput figures (prints figures; not a test).

    python tools/benchmark_data.py pixelclip-loader [--images 20] [--masks 100] [--size 750 1000]
    python tools/benchmark_data.py superpixels [--images 40] [--size 375 500]

* ``pixelclip-loader``: synthetic SA-1B-style images (half-size SA-1B: 750 x 1000 by default) with
  ``--masks`` overlapping COCO-RLE masks each, run through the PixelCLIP training pipeline of
  ``configs/pixelclip/pixelclip_vitb16_sa1b.py`` in this one process = one dataloader worker.
  Reports images/s per worker and the peak size of the packed masks.
* ``superpixels``: Felzenszwalb as data_prep/segclip_superpixels.py (pre-resize to short side 224,
  scale 224, sigma 0.9, min_size 224) on synthetic photos, one process = one core: images/s per core.
"""
import argparse
import json
import os
import os.path as osp
import sys
import tempfile
import time

import numpy as np
from PIL import Image

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)


def synthetic_photo(rng, h, w):
    """Smooth colour blobs plus noise: superpixel-friendly, JPEG-like content."""
    low = rng.integers(0, 255, size=(h // 32 + 2, w // 32 + 2, 3)).astype(np.uint8)
    img = np.asarray(Image.fromarray(low).resize((w, h), Image.BICUBIC)).astype(np.float32)
    img += rng.normal(0, 8, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_sa1b_like(root, n, h, w, masks, rng):
    """n images + per-image SA-1B JSON with ``masks`` random (overlapping) ellipse masks."""
    from pycocotools import mask as mask_utils

    os.makedirs(osp.join(root, 'images'), exist_ok=True)
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    yy, xx = np.mgrid[0:h, 0:w]
    for i in range(n):
        name = f'sa_{i:06d}'
        Image.fromarray(synthetic_photo(rng, h, w)).save(osp.join(root, 'images', name + '.jpg'), quality=90)
        anns = []
        for j in range(masks):
            cy, cx = rng.uniform(0, h), rng.uniform(0, w)
            ry, rx = rng.uniform(0.02, 0.4) * h, rng.uniform(0.02, 0.4) * w
            m = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
            rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
            rle['counts'] = rle['counts'].decode('ascii')
            anns.append(dict(id=j, segmentation=rle, area=int(m.sum()), bbox=list(mask_utils.toBbox(rle)),
                             predicted_iou=0.9, stability_score=0.95, crop_box=[0, 0, w, h], point_coords=[]))
        with open(osp.join(root, 'annotations', name + '.json'), 'w') as f:
            json.dump(dict(image=dict(image_id=i, width=w, height=h, file_name=name + '.jpg'), annotations=anns), f)


def pixelclip_loader(args):
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import mmseg_ovs  # noqa: F401
    from mmseg.registry import DATASETS

    torch.set_num_threads(1)
    init_default_scope('mmseg')
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.time()
        write_sa1b_like(tmp, args.images, args.size[0], args.size[1], args.masks, rng)
        print(f'wrote {args.images} synthetic SA-1B-style images ({args.size[0]}x{args.size[1]}, '
              f'{args.masks} masks each) in {time.time() - t:.1f}s')
        cfg = Config.fromfile(osp.join(ROOT, 'configs/pixelclip/pixelclip_vitb16_sa1b.py'))
        ds_cfg = cfg.train_dataloader.dataset
        ds_cfg.data_root = tmp
        dataset = DATASETS.build(ds_cfg)
        dataset[0]  # warm-up (imports, lazy init)
        t = time.time()
        peak = 0
        for i in range(len(dataset)):
            packed = dataset[i]['data_samples'].unlabeled_masks_packed
            peak = max(peak, packed.numel() * packed.element_size())
        dt = time.time() - t
    print(f'PixelCLIP training pipeline: {len(dataset) / dt:.2f} images/s per worker '
          f'({1000 * dt / len(dataset):.0f} ms/image, 640x640 crops, {args.masks} masks/image); '
          f'packed masks per sample <= {peak / 1e6:.2f} MB (bit planes)')


def superpixel_throughput(args):
    import importlib.util

    spec = importlib.util.spec_from_file_location('sp', osp.join(ROOT, 'data_prep/segclip_superpixels.py'))
    sp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sp)
    rng = np.random.default_rng(0)
    images = [Image.fromarray(synthetic_photo(rng, *args.size)) for _ in range(args.images)]
    sp.superpixels(images[0])
    t = time.time()
    counts = [int(sp.superpixels(img).max()) + 1 for img in images]
    dt = time.time() - t
    print(f'Felzenszwalb superpixels: {len(images) / dt:.1f} images/s per core '
          f'({1000 * dt / len(images):.1f} ms/image, {args.size[0]}x{args.size[1]} input pre-resized to '
          f'short side 224; {np.mean(counts):.0f} segments on average)')


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('what', choices=['pixelclip-loader', 'superpixels'])
    parser.add_argument('--images', type=int, default=20)
    parser.add_argument('--masks', type=int, default=100)
    parser.add_argument('--size', type=int, nargs=2, default=None, help='H W')
    args = parser.parse_args()
    if args.what == 'pixelclip-loader':
        args.size = args.size or (750, 1000)
        pixelclip_loader(args)
    else:
        args.size = args.size or (375, 500)
        superpixel_throughput(args)


if __name__ == '__main__':
    main()
