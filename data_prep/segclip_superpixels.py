"""Felzenszwalb superpixels for SegCLIP training images (COCO, CC3M, any image folder).

As the official preprocessing (preprocess/*/felzenszwalb_extraction_*.py), on the stored training
images (short side 224, see data_prep/training_images.py): ``skimage.segmentation.felzenszwalb(img,
scale=224, sigma=0.9, min_size=224)``. The image is decoded exactly as the training loader decodes it
(cv2, EXIF orientation applied), so the map lines up with the training crops; images larger than
``--short-side`` on both sides are first resized as the official storage does (0 disables).

Maps go to a random-access store (mmseg_ovs/datasets/superpixel_store.py), keys = image paths
relative to IMG_ROOT. Parallel workers write whole segments atomically, with a progress bar; a
re-run (after a kill, or after images were added) computes exactly the images not yet stored;
unreadable images are counted, listed in ``OUT_DIR/failures.txt`` and skipped.

    python data_prep/segclip_superpixels.py IMG_ROOT OUT_DIR [--workers 8] [--segment-size 256]
"""
import argparse
import importlib.util
import json
import os
import os.path as osp
import time
from multiprocessing import Pool

import numpy as np

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _load(name, rel):
    """A module of this repository without importing the package (torch, mmseg): data preparation
    only needs numpy, OpenCV, Pillow and scikit-image."""
    spec = importlib.util.spec_from_file_location(name, osp.join(ROOT, rel))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


store_lib = _load('segclip_superpixel_store', 'mmseg_ovs/datasets/superpixel_store.py')
images_lib = _load('segclip_training_images', 'data_prep/training_images.py')

IMG_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')


def list_images(root: str):
    return sorted(osp.relpath(osp.join(d, n), root) for d, _, files in os.walk(root)
                  for n in files if n.lower().endswith(IMG_EXTS))


def superpixels(rgb: np.ndarray, short_side=224, scale=224, sigma=0.9, min_size=224) -> np.ndarray:
    """(H, W, 3) uint8 RGB (as decoded by the loader) -> (h, w) Felzenszwalb id map."""
    from PIL import Image
    from skimage.segmentation import felzenszwalb
    if not isinstance(rgb, np.ndarray):  # a PIL image
        rgb = np.asarray(rgb.convert('RGB'))
    h, w = rgb.shape[:2]
    size = images_lib.official_size(w, h, short_side)
    if size != (w, h):
        rgb = np.asarray(Image.fromarray(rgb).resize(size, Image.LANCZOS))
    return felzenszwalb(rgb, scale=scale, sigma=sigma, min_size=min_size)


def _die_with_parent():
    """Pool initializer: a worker is killed when the main process dies (no orphans after kill -9)."""
    try:
        import ctypes
        import signal
        ctypes.CDLL('libc.so.6', use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _process_segment(job):
    root, out, name, keys, params = job
    maps, failed = {}, []
    for key in keys:
        try:
            maps[key] = superpixels(images_lib.load_like_loader(osp.join(root, key)), **params)
        except (OSError, ValueError) as err:
            failed.append(f'{key}\t{err}')
    if maps:
        store_lib.write_segment(out, name, maps)
    return len(maps), failed


def main(argv=None):
    from tqdm import tqdm
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('img_root')
    parser.add_argument('out_dir')
    parser.add_argument('--workers', type=int, default=os.cpu_count() or 1)
    parser.add_argument('--segment-size', type=int, default=256, help='images per segment file')
    parser.add_argument('--short-side', type=int, default=224, help='0 disables the pre-resize')
    parser.add_argument('--scale', type=float, default=224)
    parser.add_argument('--sigma', type=float, default=0.9)
    parser.add_argument('--min-size', type=int, default=224)
    parser.add_argument('--num-shards', type=int, default=None, help=argparse.SUPPRESS)  # old store format
    args = parser.parse_args(argv)
    if not osp.isdir(args.img_root):
        raise SystemExit(f'image folder not found: {args.img_root}')
    os.makedirs(args.out_dir, exist_ok=True)
    params = dict(short_side=args.short_side, scale=args.scale, sigma=args.sigma, min_size=args.min_size)
    meta_file = osp.join(args.out_dir, 'meta.json')
    meta = dict(format='segments-v1', params=params, img_root=osp.abspath(args.img_root))
    if osp.isfile(meta_file):
        with open(meta_file) as f:
            old = json.load(f)
        if old.get('format') != meta['format'] or old['params'] != params:
            raise SystemExit(f'{meta_file} was written with other settings ({old}); '
                             f'use another OUT_DIR or the same settings to resume')
    else:
        with open(meta_file + '.tmp', 'w') as f:
            json.dump(meta, f)
        os.replace(meta_file + '.tmp', meta_file)
    images = list_images(args.img_root)
    if not images:
        raise SystemExit(f'no images under {args.img_root}')
    done = store_lib.committed_hashes(args.out_dir)
    hashes = np.array([store_lib.key_hash(k) for k in images], dtype=np.uint64)
    todo = [k for k, new in zip(images, ~np.isin(hashes, done)) if new]
    print(f'{len(images)} images, {len(images) - len(todo)} already in the store, {len(todo)} to compute')
    run = f'r{int(time.time() * 1000):013x}_{os.getpid()}'
    size = max(1, args.segment_size)
    jobs = [(args.img_root, args.out_dir, f'{run}_{i // size:06d}', todo[i:i + size], params)
            for i in range(0, len(todo), size)]
    n_maps, failed = 0, []
    with Pool(max(1, args.workers), initializer=_die_with_parent) as pool, \
            tqdm(total=len(todo), desc='superpixels', unit='img') as bar:
        for (n, fail), job in zip(pool.imap(_process_segment, jobs), jobs):
            n_maps += n
            failed += fail
            bar.update(len(job[3]))
    total = store_lib.build_table(args.out_dir)
    print(f'wrote {n_maps} superpixel maps ({total} in the store)')
    if failed:
        with open(osp.join(args.out_dir, 'failures.txt.tmp'), 'w') as f:
            f.write('\n'.join(failed) + '\n')
        os.replace(osp.join(args.out_dir, 'failures.txt.tmp'), osp.join(args.out_dir, 'failures.txt'))
        print(f'skipped {len(failed)} unreadable images, e.g. {failed[0]}')
    return n_maps, failed


if __name__ == '__main__':
    main()
