"""COCO-Object label maps (``<id>_instanceTrainIds.png``), as the field builds them.

Default route (every peer: GroupViT ``convert_dataset/convert_coco_object.py``, shipped unchanged
by SegCLIP ``preprocess/COCO/convert_coco_object4val.py``, SCLIP, NACLIP, ProxyCLIP, TCL,
CLIP-DINOiser): map the COCO-Stuff-164k ``stuffthingmaps`` (already downloaded for COCO-Stuff-171)
through a fixed table:

- thing ids 0..89 (0-based COCO category ids) without the 10 ids COCO never uses
  ({11, 25, 28, 29, 44, 65, 67, 68, 70, 82}) -> 1..80 in increasing order;
- stuff ids 91..181 and the unlabeled 255 -> 0 (background). The output has no ignore pixels.

Any other value (an unused id, 90, 182..254) never occurs in the official maps; it is an error
naming the file (GroupViT would leave such pixels unchanged, i.e. silently mislabel them).

Input / output (mmseg's COCO-Stuff layout; ``configs/_base_/datasets/coco_object.py``)::

    <root>/images/val2017/<id>.jpg
    <root>/annotations/val2017/<id>.png                     (stuffthingmaps_trainval2017.zip)
    -> <out>/annotations/val2017/<id>_instanceTrainIds.png  (<out> defaults to <root>)

Alternative route (``--from-instances``): paint the instance masks of
``instances_val2017.json`` with pycocotools (largest first, so the smaller instance wins where
they overlap; ``--crowd ignore`` writes 255 on ``iscrowd`` regions). Overlaps and crowd regions
differ from the stuffthingmaps, so numbers from this route are not comparable with the field's.

Usage::

    python data_prep/convert_coco_object.py data/coco_stuff164k                 # default route
    python data_prep/convert_coco_object.py data/coco -o data/coco_stuff164k --from-instances

Resumable: label maps that already exist are skipped; every file is written atomically.
"""
import argparse
import glob
import json
import os
import os.path as osp
import shutil
import sys

import numpy as np

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from bench_io import (DataPrepError, apply_lut, progress, read_label_png,  # noqa: E402
                      require_dir, require_file, save_png_atomic)

NUM_THINGS = 80
SUFFIX = '_instanceTrainIds.png'
#: 0-based COCO category ids that COCO defines but never annotates (absent from stuffthingmaps).
UNUSED_THING_IDS = (11, 25, 28, 29, 44, 65, 67, 68, 70, 82)
#: 0-based ids of the 80 things in the stuffthingmaps, in train-id order (-> 1..80).
STUFFTHING_THING_IDS = tuple(i for i in range(90) if i not in UNUSED_THING_IDS)
STUFFTHING_STUFF_IDS = tuple(range(91, 182))
INVALID = 254  # LUT marker for values that do not occur in official stuffthingmaps


def stuffthing_to_object_lut() -> np.ndarray:
    """256-entry table stuffthingmap id -> COCO-Object label (``INVALID`` for impossible ids)."""
    lut = np.full(256, INVALID, np.uint8)
    for train_id, raw in enumerate(STUFFTHING_THING_IDS, 1):
        lut[raw] = train_id
    lut[list(STUFFTHING_STUFF_IDS)] = 0
    lut[255] = 0
    assert len(STUFFTHING_THING_IDS) == NUM_THINGS
    return lut


def object_label_map(stuffthing: np.ndarray, path: str = '<array>', lut: np.ndarray = None) -> np.ndarray:
    """(H, W) stuffthingmap -> (H, W) uint8 COCO-Object map (0 background, 1..80 things)."""
    lut = stuffthing_to_object_lut() if lut is None else lut
    out = apply_lut(stuffthing, lut, path)
    if (out == INVALID).any():
        bad = np.unique(stuffthing[out == INVALID])
        raise DataPrepError(f'{path}: ids {bad[:10].tolist()} are not COCO-Stuff-164k stuffthingmap ids '
                            '(things 0-89 without the unused ids, stuff 91-181, 255)')
    return out


def convert_stuffthingmaps(root: str, out_dir: str = None, splits=('val2017', ),
                           copy_images: bool = False) -> dict:
    """The field's route: ``<root>/annotations/<split>/*.png`` -> ``*_instanceTrainIds.png``.

    Returns counts ``{'written', 'skipped', 'images'}``.
    """
    out_dir = out_dir or root
    lut = stuffthing_to_object_lut()
    written = skipped = total = 0
    for split in splits:
        ann_dir = require_dir(osp.join(root, 'annotations', split), f'COCO-Stuff {split} stuffthingmaps')
        img_dir = require_dir(osp.join(root, 'images', split), f'COCO {split} images')
        srcs = sorted(p for p in glob.glob(osp.join(ann_dir, '*.png')) if not p.endswith('TrainIds.png'))
        if not srcs:
            raise DataPrepError(f'no stuffthingmaps PNGs in {ann_dir}')
        total += len(srcs)
        out_ann = osp.join(out_dir, 'annotations', split)
        same_images = osp.realpath(osp.join(out_dir, 'images', split)) == osp.realpath(img_dir)
        for src in progress(srcs, desc=f'COCO-Object {split}'):
            stem = osp.basename(src)[:-4]
            if not same_images:
                img = require_file(osp.join(img_dir, stem + '.jpg'), 'COCO image')
                _link_or_copy(img, osp.join(out_dir, 'images', split, stem + '.jpg'), copy_images)
            dst = osp.join(out_ann, stem + SUFFIX)
            if osp.isfile(dst):
                skipped += 1
                continue
            save_png_atomic(object_label_map(read_label_png(src), src, lut), dst)
            written += 1
    return dict(written=written, skipped=skipped, images=total)


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


def convert_from_instances(coco_root: str, out_dir: str, split: str = 'val2017', crowd: str = 'class',
                           copy_images: bool = False) -> dict:
    """The instance route (not the field's): one split; returns counts ``{'written', 'skipped', 'images'}``."""
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
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument('root', help='COCO-Stuff-164k root (images/, annotations/ with stuffthingmaps); with '
                   '--from-instances the COCO root (<split>/ images, annotations/instances_<split>.json)')
    p.add_argument('-o', '--out-dir', default=None, help='output root (default: root; required with '
                   '--from-instances), e.g. data/coco_stuff164k')
    p.add_argument('--splits', nargs='+', default=['val2017'])
    p.add_argument('--from-instances', action='store_true',
                   help='paint instances_<split>.json instead (not comparable with the field)')
    p.add_argument('--crowd', choices=['class', 'ignore'], default='class',
                   help='--from-instances: label of iscrowd regions, their class (default) or 255')
    p.add_argument('--copy', action='store_true', help='copy images instead of symlinking them')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        if args.from_instances:
            if not args.out_dir:
                raise DataPrepError('--from-instances needs -o/--out-dir (e.g. data/coco_stuff164k)')
            stats = dict(written=0, skipped=0, images=0)
            for split in args.splits:
                s = convert_from_instances(args.root, args.out_dir, split, args.crowd, args.copy)
                stats = {k: stats[k] + s[k] for k in stats}
        else:
            stats = convert_stuffthingmaps(args.root, args.out_dir, tuple(args.splits), args.copy)
    except DataPrepError as e:
        sys.exit(f'error: {e}')
    print(f'COCO-Object {",".join(args.splits)}: {stats["written"]} written, {stats["skipped"]} already done, '
          f'{stats["images"]} images')


if __name__ == '__main__':
    main()
