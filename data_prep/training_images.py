"""Images as the training loader sees them, and SegCLIP's stored training resolution.

* :func:`load_like_loader`: decode exactly as mmcv's ``LoadImageFromFile`` (cv2 ``imdecode`` with
  ``IMREAD_COLOR``, which applies the EXIF orientation), returned as RGB. Superpixels are computed on
  these pixels, so they line up with the training crops also for rotated JPEGs.
* :func:`resize_short_side`: the official SegCLIP storage (preprocess/COCO/write_coco_images.py):
  when both sides exceed ``short_side``, resize so the short side is ``short_side`` and the long side
  ``int(short_side * aspect)`` (truncated), Lanczos ("ANTIALIAS"). The official code ignores the EXIF
  orientation (and drops it when saving), so rotated photos were stored sideways; here the image is
  first turned upright (``exif_transpose``), what the loader shows for the original file.

    python data_prep/training_images.py IMG_ROOT OUT_ROOT [--short-side 224] [--workers 8]

stores every image of IMG_ROOT (same relative paths, same format; JPEG quality 95) at the training
resolution: parallel, progress bar, resumable per image, atomic writes; unreadable images are counted
and listed in ``OUT_ROOT/failures.txt``.
"""
import argparse
import os
import os.path as osp
from multiprocessing import Pool

import numpy as np

IMG_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')


def load_like_loader(path: str) -> np.ndarray:
    """(H, W, 3) uint8 RGB, decoded as mmcv LoadImageFromFile does (cv2, EXIF orientation applied)."""
    import cv2
    with open(path, 'rb') as f:
        buf = np.frombuffer(f.read(), np.uint8)
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR) if buf.size else None
    if img is None:
        raise ValueError(f'cannot decode image {path}')
    return np.ascontiguousarray(img[..., ::-1])


def official_size(w: int, h: int, short_side: int = 224):
    """(new_w, new_h) of the official storage resize (unchanged unless both sides exceed it)."""
    if not short_side or w <= short_side or h <= short_side:
        return w, h
    aspect = float(w) / float(h)
    return (int(short_side * aspect), short_side) if aspect >= 1. else (short_side, int(short_side / aspect))


def resize_short_side(img, short_side: int = 224):
    """PIL image -> upright PIL image at the official training resolution."""
    from PIL import Image, ImageOps
    img = ImageOps.exif_transpose(img)
    size = official_size(*img.size, short_side)
    return img if size == img.size else img.resize(size, Image.LANCZOS)


def _convert(job):
    src, dst, short_side = job
    from PIL import Image
    try:
        with Image.open(src) as img:
            fmt = img.format or 'JPEG'
            out = resize_short_side(img, short_side)
            if fmt == 'JPEG' and out.mode not in ('RGB', 'L'):
                out = out.convert('RGB')
            os.makedirs(osp.dirname(dst), exist_ok=True)
            tmp = dst + '.tmp'
            out.save(tmp, format=fmt, **({'quality': 95} if fmt == 'JPEG' else {}))
        os.replace(tmp, dst)
        return None
    except (OSError, ValueError) as err:
        return f'{src}\t{type(err).__name__}: {err}'


def main(argv=None):
    from tqdm import tqdm
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('img_root')
    parser.add_argument('out_root')
    parser.add_argument('--short-side', type=int, default=224)
    parser.add_argument('--workers', type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    if not osp.isdir(args.img_root):
        raise SystemExit(f'image folder not found: {args.img_root}')
    rels = sorted(osp.relpath(osp.join(d, n), args.img_root) for d, _, files in os.walk(args.img_root)
                  for n in files if n.lower().endswith(IMG_EXTS))
    jobs = [(osp.join(args.img_root, r), osp.join(args.out_root, r), args.short_side) for r in rels
            if not osp.isfile(osp.join(args.out_root, r))]
    print(f'{len(rels)} images, {len(rels) - len(jobs)} already stored')
    failures = []
    with Pool(max(1, args.workers)) as pool:
        for err in tqdm(pool.imap_unordered(_convert, jobs, chunksize=16), total=len(jobs), desc='resize'):
            if err:
                failures.append(err)
    if failures:
        os.makedirs(args.out_root, exist_ok=True)
        with open(osp.join(args.out_root, 'failures.txt'), 'w') as f:
            f.write('\n'.join(failures) + '\n')
        print(f'skipped {len(failures)} unreadable images (see {args.out_root}/failures.txt)')
    print(f'stored {len(jobs) - len(failures)} images')
    return len(jobs) - len(failures), failures


if __name__ == '__main__':
    main()
