"""COCO instance annotations -> COCO-Object label maps (``<id>_instanceTrainIds.png``).

Input (official COCO 2017 download)::

    <coco>/val2017/*.jpg                          (val2017.zip)
    <coco>/annotations/instances_val2017.json     (annotations_trainval2017.zip)

Output (the layout ``configs/_base_/datasets/coco_object.py`` expects, shared with
COCO-Stuff)::

    <out>/images/val2017/<id>.jpg                 (symlinks by default, --copy to copy)
    <out>/annotations/val2017/<id>_instanceTrainIds.png

Label values: 0 background (every pixel no thing instance covers), 1..80 the thing classes
in COCO category-id order (1 person ... 80 toothbrush), and with ``--crowd ignore`` 255 on
``iscrowd`` regions (default ``--crowd class``: crowd regions get their class, as in the
COCO-Stuff thing maps from which GroupViT/SegCLIP derived COCO-Object). Where instances
overlap, the smaller one wins (instances are painted largest first).

Usage::

    python data_prep/convert_coco_object.py data/coco -o data/coco_stuff164k [--split val2017]

Resumable: label maps that already exist are skipped; every file is written atomically.
"""
import argparse
import json
import os
import os.path as osp
import shutil
import sys

import numpy as np

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from bench_io import (DataPrepError, progress, require_dir, require_file,  # noqa: E402
                      save_png_atomic)

NUM_THINGS = 80
SUFFIX = '_instanceTrainIds.png'


def load_instances(json_path: str):
    """Load an instances json with pycocotools, checking that it looks like COCO."""
    from pycocotools.coco import COCO
    require_file(json_path, 'COCO instances json')
    try:
        with open(json_path) as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataPrepError(f'malformed COCO instances json {json_path}: {e}') from e
    for key in ('images', 'annotations', 'categories'):
        if key not in data or not isinstance(data[key], list):
            raise DataPrepError(f'{json_path}: not a COCO instances file (no list "{key}")')
    cat_ids = sorted(c['id'] for c in data['categories'])
    if len(cat_ids) != NUM_THINGS:
        raise DataPrepError(f'{json_path}: expected {NUM_THINGS} thing categories, got {len(cat_ids)}')
    coco = COCO()
    coco.dataset = data
    coco.createIndex()
    return coco, {cid: i + 1 for i, cid in enumerate(cat_ids)}


def instance_label_map(coco, img_info: dict, cat_to_train: dict, crowd: str = 'class') -> np.ndarray:
    """(H, W) uint8 COCO-Object label map of one image (all its masks decoded in one call)."""
    from pycocotools import mask as mask_utils
    h, w = int(img_info['height']), int(img_info['width'])
    anns = coco.imgToAnns.get(img_info['id'], [])
    label = np.zeros((h, w), np.uint8)
    if not anns:
        return label
    anns = sorted(anns, key=lambda a: -float(a.get('area', 0)))  # largest first, smallest on top
    rles = []
    for a in anns:
        if a['category_id'] not in cat_to_train:
            raise DataPrepError(f'image {img_info["file_name"]}: annotation {a.get("id")} has unknown '
                                f'category_id {a["category_id"]}')
        try:
            rles.append(coco.annToRLE(a))
        except Exception as e:
            raise DataPrepError(f'image {img_info["file_name"]}: bad segmentation in annotation '
                                f'{a.get("id")}: {e}') from e
    masks = mask_utils.decode(rles)  # (H, W, N) uint8
    if masks.shape[:2] != (h, w):
        raise DataPrepError(f'image {img_info["file_name"]}: mask size {masks.shape[:2]} != ({h}, {w})')
    values = np.array([255 if (crowd == 'ignore' and a.get('iscrowd', 0)) else cat_to_train[a['category_id']]
                       for a in anns], np.uint8)
    # index of the last (= smallest) annotation covering each pixel, 0 where none does
    order = masks * np.arange(1, len(anns) + 1, dtype=np.uint16 if len(anns) < 65535 else np.int64)
    top = order.max(-1)
    covered = top > 0
    label[covered] = values[top[covered] - 1]
    return label


def _link_or_copy(src: str, dst: str, copy: bool) -> None:
    if osp.lexists(dst):
        return
    os.makedirs(osp.dirname(dst), exist_ok=True)
    tmp = dst + f'.tmp{os.getpid()}'
    if copy:
        shutil.copyfile(src, tmp)
    else:
        os.symlink(osp.abspath(src), tmp)
    os.replace(tmp, dst)


def convert(coco_root: str, out_dir: str, split: str = 'val2017', crowd: str = 'class',
            copy_images: bool = False) -> dict:
    """Convert one split; returns counts ``{'written', 'skipped', 'images'}``."""
    if crowd not in ('class', 'ignore'):
        raise ValueError(f'crowd must be "class" or "ignore", got {crowd!r}')
    img_dir = require_dir(osp.join(coco_root, split), f'COCO {split} image directory')
    coco, cat_to_train = load_instances(osp.join(coco_root, 'annotations', f'instances_{split}.json'))
    out_img = osp.join(out_dir, 'images', split)
    out_ann = osp.join(out_dir, 'annotations', split)
    os.makedirs(out_ann, exist_ok=True)
    same_images = osp.realpath(out_img) == osp.realpath(img_dir)
    written = skipped = 0
    imgs = sorted(coco.dataset['images'], key=lambda i: i['file_name'])
    for info in progress(imgs, desc=f'COCO-Object {split}'):
        src = osp.join(img_dir, info['file_name'])
        require_file(src, 'COCO image')
        if not same_images:
            _link_or_copy(src, osp.join(out_img, info['file_name']), copy_images)
        dst = osp.join(out_ann, osp.splitext(info['file_name'])[0] + SUFFIX)
        if osp.isfile(dst):
            skipped += 1
            continue
        save_png_atomic(instance_label_map(coco, info, cat_to_train, crowd), dst)
        written += 1
    return dict(written=written, skipped=skipped, images=len(imgs))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('coco_root', help='folder with <split>/ images and annotations/instances_<split>.json')
    p.add_argument('-o', '--out-dir', required=True, help='output root, e.g. data/coco_stuff164k')
    p.add_argument('--split', default='val2017')
    p.add_argument('--crowd', choices=['class', 'ignore'], default='class',
                   help='label of iscrowd regions: their class (default) or 255')
    p.add_argument('--copy', action='store_true', help='copy images instead of symlinking them')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        stats = convert(args.coco_root, args.out_dir, args.split, args.crowd, args.copy)
    except DataPrepError as e:
        sys.exit(f'error: {e}')
    print(f'COCO-Object {args.split}: {stats["written"]} written, {stats["skipped"]} already done, '
          f'{stats["images"]} images')


if __name__ == '__main__':
    main()
