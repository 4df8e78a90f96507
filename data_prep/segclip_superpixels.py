"""Felzenszwalb superpixels for SegCLIP training images (COCO, CC3M, any image folder).

As the official preprocessing (preprocess/*/felzenszwalb_extraction_*.py): the RGB image is first
resized so that its short side is 224 when both sides exceed 224 (PIL antialiased resize, as the
stored training images), then ``skimage.segmentation.felzenszwalb(img, scale=224, sigma=0.9,
min_size=224)``. Maps go to a sharded store (mmseg_ovs/datasets/superpixel_store.py): compressed
npz per shard, keys = image paths relative to IMG_ROOT. Parallel workers, progress bar, resumable
(finished shards are skipped), atomic writes; unreadable images are counted, logged and skipped.

    python data_prep/segclip_superpixels.py IMG_ROOT OUT_DIR [--num-shards 256] [--workers 8]
"""
import argparse
import json
import os
import os.path as osp
from multiprocessing import Pool

import numpy as np
from PIL import Image
from tqdm import tqdm


def _load_store_module():
    """mmseg_ovs/datasets/superpixel_store.py without importing the whole package (torch, mmseg):
    data preparation only needs numpy, Pillow and scikit-image."""
    import importlib.util
    path = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'mmseg_ovs', 'datasets',
                    'superpixel_store.py')
    spec = importlib.util.spec_from_file_location('segclip_superpixel_store', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_store = _load_store_module()
shard_of, shard_path, write_shard = _store.shard_of, _store.shard_path, _store.write_shard

IMG_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')


def list_images(root: str):
    return sorted(osp.relpath(osp.join(d, n), root) for d, _, files in os.walk(root)
                  for n in files if n.lower().endswith(IMG_EXTS))


def superpixels(img: Image.Image, short_side=224, scale=224, sigma=0.9, min_size=224) -> np.ndarray:
    from skimage.segmentation import felzenszwalb
    img = img.convert('RGB')
    w, h = img.size
    if short_side and w > short_side and h > short_side:
        s = short_side / min(w, h)
        img = img.resize((max(1, round(w * s)), max(1, round(h * s))), Image.LANCZOS)
    return felzenszwalb(np.asarray(img), scale=scale, sigma=sigma, min_size=min_size)


def _process_shard(job):
    root, out, shard, keys, params = job
    maps, failed = {}, []
    for key in keys:
        try:
            with Image.open(osp.join(root, key)) as img:
                maps[key] = superpixels(img, **params)
        except (OSError, ValueError) as err:
            failed.append(f'{key}: {err}')
    write_shard(out, shard, maps)
    return shard, len(maps), failed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('img_root')
    parser.add_argument('out_dir')
    parser.add_argument('--num-shards', type=int, default=256)
    parser.add_argument('--workers', type=int, default=os.cpu_count() or 1)
    parser.add_argument('--short-side', type=int, default=224, help='0 disables the pre-resize')
    parser.add_argument('--scale', type=float, default=224)
    parser.add_argument('--sigma', type=float, default=0.9)
    parser.add_argument('--min-size', type=int, default=224)
    args = parser.parse_args(argv)
    if not osp.isdir(args.img_root):
        raise SystemExit(f'image folder not found: {args.img_root}')
    os.makedirs(args.out_dir, exist_ok=True)
    params = dict(short_side=args.short_side, scale=args.scale, sigma=args.sigma,
                  min_size=args.min_size)
    meta_file = osp.join(args.out_dir, 'meta.json')
    meta = dict(num_shards=args.num_shards, params=params, img_root=osp.abspath(args.img_root))
    if osp.isfile(meta_file):
        with open(meta_file) as f:
            old = json.load(f)
        if old['num_shards'] != args.num_shards or old['params'] != params:
            raise SystemExit(f'{meta_file} was written with other settings ({old}); '
                             f'use another OUT_DIR or the same settings to resume')
    else:
        tmp = meta_file + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(meta, f)
        os.replace(tmp, meta_file)
    images = list_images(args.img_root)
    if not images:
        raise SystemExit(f'no images under {args.img_root}')
    shards = [[] for _ in range(args.num_shards)]
    for key in images:
        shards[shard_of(key, args.num_shards)].append(key)
    jobs = [(args.img_root, args.out_dir, s, keys, params) for s, keys in enumerate(shards)
            if not osp.isfile(shard_path(args.out_dir, s))]
    done = args.num_shards - len(jobs)
    print(f'{len(images)} images in {args.num_shards} shards; {done} shards already done')
    n_maps, failed = 0, []
    with Pool(max(1, args.workers)) as pool, tqdm(total=len(jobs), desc='superpixel shards') as bar:
        for _, n, fail in pool.imap_unordered(_process_shard, jobs):
            n_maps += n
            failed += fail
            bar.update()
    print(f'wrote {n_maps} superpixel maps')
    if failed:
        print(f'skipped {len(failed)} unreadable images, e.g. {failed[0]}')
    return n_maps, failed


if __name__ == '__main__':
    main()
