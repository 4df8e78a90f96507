"""Shared helpers of the PixelCLIP mask tools: SA-1B-style JSON with COCO RLE, atomic writes."""
import json
import os
import os.path as osp
from typing import List

import numpy as np

IMG_EXTS = ('.jpg', '.jpeg', '.png')


def list_images(root: str) -> List[str]:
    """Relative paths of the images under ``root`` (sorted, recursive)."""
    if not osp.isdir(root):
        raise FileNotFoundError(f'image folder not found: {root}')
    return sorted(osp.relpath(osp.join(r, n), root) for r, _, files in os.walk(root)
                  for n in files if n.lower().endswith(IMG_EXTS))


def encode_masks(masks: np.ndarray) -> List[dict]:
    """(n, H, W) bool -> SA-1B ``annotations`` entries (COCO RLE, bbox XYWH, area)."""
    from pycocotools import mask as mask_utils
    if len(masks) == 0:
        return []
    rles = mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))
    areas, boxes = mask_utils.area(rles), mask_utils.toBbox(rles)
    return [dict(segmentation=dict(size=[int(s) for s in r['size']], counts=r['counts'].decode('ascii')),
                 area=int(a), bbox=[float(v) for v in b]) for r, a, b in zip(rles, areas, boxes)]


def write_json_atomic(obj: dict, path: str) -> None:
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(obj, f)
    os.replace(tmp, path)


def write_masks_json(masks: np.ndarray, image_rel: str, path: str) -> None:
    h, w = masks.shape[1:] if len(masks) else (0, 0)
    write_json_atomic(dict(image=dict(file_name=image_rel, height=int(h), width=int(w)),
                           annotations=encode_masks(masks)), path)


def mask_json_path(out_dir: str, image_rel: str) -> str:
    return osp.join(out_dir, osp.splitext(image_rel)[0] + '.json')


def masks_for_folder(img_dir: str, out_dir: str, make_masks, desc: str, overwrite: bool = False):
    """Run ``make_masks(rgb uint8 (H, W, 3)) -> bool (n, H, W)`` on every image of ``img_dir`` and write
    one SA-1B-style JSON per image under ``out_dir`` (same relative path).

    Resumable (existing JSON files are skipped unless ``overwrite``), atomic writes, progress bar;
    unreadable images are counted, reported and skipped. Returns (written, skipped_existing, failed).
    """
    from PIL import Image
    from tqdm import tqdm
    written = skipped = 0
    failed = []
    for rel in tqdm(list_images(img_dir), desc=desc):
        out = mask_json_path(out_dir, rel)
        if osp.isfile(out) and not overwrite:
            skipped += 1
            continue
        try:
            img = np.asarray(Image.open(osp.join(img_dir, rel)).convert('RGB'))
        except OSError as err:
            failed.append(f'{rel}: {err}')
            continue
        write_masks_json(make_masks(img), rel, out)
        written += 1
    if failed:
        print(f'{len(failed)} unreadable images skipped, e.g. {failed[0]}')
    return written, skipped, failed
