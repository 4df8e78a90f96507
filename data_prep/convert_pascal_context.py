"""PASCAL-Context ``trainval_merged.json`` -> Context-60/59 label maps, with pycocotools only.

mmseg's ``pascal_context.py`` converter needs the ``detail`` API (zhanghang1989/detail-api), which
no package registry ships. This converter produces the same maps from the same file with
pycocotools. For each image of ``images[]`` (its ``phase`` says train or val) it does what
``Detail.getMask(img)`` does:

1. start from zeros (H, W);
2. for each ``annos_segmentation`` entry of the image, in file order, decode its mask (COCO RLE)
   and paint its ``category_id`` over it (later entries win where they overlap);

then maps the 59 PASCAL-Context category ids to 1..59 with mmseg's table (the sorted id list
below, i.e. the alphabetical ``cls_context59`` order; 0 stays background). Any other id is an
error naming the image. Outputs (the layout of mmseg's converter and of every peer)::

    <devkit>/VOC2010/SegmentationClassContext/<stem>.png        uint8: 0 background, 1..59
    <devkit>/VOC2010/ImageSets/SegmentationContext/{train,val}.txt   sorted stems (val: 5,105)

Context-60 (``PascalContextDataset``) reads the maps as they are; Context-59
(``PascalContextDataset59``) reads the same files with ``reduce_zero_label=True`` (background ->
255 ignored, k -> k-1), exactly as with mmseg's converter.

Usage::

    python data_prep/convert_pascal_context.py data/VOCdevkit data/trainval_merged.json

Resumable (existing label maps are skipped), atomic writes, progress bar. Annotations whose
``image_id`` is not listed in ``images[]`` are skipped, counted and reported (``detail`` drops them
silently).

Not supported: the 459-class ``trainval/*.mat`` files of ``trainval.tar.gz`` (``LabelMap``). Their
ids are the same 459-class ids, so the table below would apply to them, but pixel identity with
the JSON route is unverified and the split lists would have to come from elsewhere.
"""
import argparse
import json
import os.path as osp
import sys
from collections import defaultdict

import numpy as np

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from bench_io import (DataPrepError, progress, require_dir, require_file,  # noqa: E402
                      save_png_atomic, write_text_atomic)

#: PASCAL-Context (459-class) category ids of the 59 evaluated classes, sorted: index k+1 is the
#: k-th ``cls_context59`` class (mmseg ``tools/dataset_converters/pascal_context.py`` ``_mapping``
#: without the leading 0).
CONTEXT59_CATEGORY_IDS = (2, 9, 18, 19, 22, 23, 25, 31, 33, 34, 44, 45, 46, 59, 65, 68, 72, 80, 85, 98, 104,
                          105, 113, 115, 144, 158, 159, 162, 187, 189, 207, 220, 232, 258, 259, 260, 284,
                          295, 296, 308, 324, 326, 347, 349, 354, 355, 360, 366, 368, 397, 415, 416, 420,
                          424, 427, 440, 445, 454, 458)
SPLITS = ('train', 'val')
_INVALID = -1


def category_lut() -> np.ndarray:
    """Lookup table category id (0..458) -> Context-60 label (0..59); ``-1`` for other ids."""
    lut = np.full(max(CONTEXT59_CATEGORY_IDS) + 1, _INVALID, np.int16)
    lut[0] = 0
    for label, cid in enumerate(CONTEXT59_CATEGORY_IDS, 1):
        lut[cid] = label
    return lut


def load_trainval_merged(json_path: str) -> dict:
    require_file(json_path, 'PASCAL-Context trainval_merged.json')
    try:
        with open(json_path) as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataPrepError(f'malformed PASCAL-Context json {json_path}: {e}') from e
    if not isinstance(data, dict):
        raise DataPrepError(f'{json_path}: not a PASCAL in Detail file (top level is not an object)')
    for key in ('images', 'annos_segmentation'):
        if not isinstance(data.get(key), list):
            raise DataPrepError(f'{json_path}: not a PASCAL in Detail file (no list "{key}")')
    return data


def _decode(segm, h: int, w: int, where: str) -> np.ndarray:
    """One ``segmentation`` (compressed/uncompressed RLE or polygons) -> (H, W) uint8 mask."""
    from pycocotools import mask as mask_utils
    try:
        if isinstance(segm, list):  # polygons
            rle = mask_utils.merge(mask_utils.frPyObjects(segm, h, w))
        elif isinstance(segm, dict) and isinstance(segm.get('counts'), list):  # uncompressed RLE
            rle = mask_utils.frPyObjects(segm, *segm['size'])
        else:
            rle = segm
        m = mask_utils.decode(rle)
    except Exception as e:  # pycocotools raises several types for malformed RLE
        raise DataPrepError(f'{where}: cannot decode segmentation: {e}') from e
    if m.shape != (h, w):
        raise DataPrepError(f'{where}: mask size {m.shape} != image size ({h}, {w})')
    return m


def context_label_map(img: dict, anns: list, lut: np.ndarray = None, source: str = '') -> np.ndarray:
    """(H, W) uint8 Context-60 map of one image: ``getMask`` (paint in order) + the id table."""
    lut = category_lut() if lut is None else lut
    h, w = int(img['height']), int(img['width'])
    raw = np.zeros((h, w), np.int64)
    for ann in anns:
        where = f'{source}: image {img.get("file_name")} annotation {ann.get("id")}'
        raw[_decode(ann['segmentation'], h, w, where) > 0] = int(ann['category_id'])
    ids = np.unique(raw)
    bad = ids[(ids < 0) | (ids >= len(lut)) | (lut[np.clip(ids, 0, len(lut) - 1)] == _INVALID)]
    if bad.size:
        raise DataPrepError(f'{source}: image {img.get("file_name")} has category ids outside the 59 '
                            f'PASCAL-Context classes: {bad[:10].tolist()}')
    return lut[raw].astype(np.uint8)


def convert(devkit: str, json_path: str, splits=SPLITS) -> dict:
    """Write the label maps and split files; returns counts ``{'images', 'written', 'skipped',
    'orphan_annotations', '<split>': n}``."""
    voc2010 = require_dir(osp.join(devkit, 'VOC2010'), 'VOC2010 folder of VOCdevkit')
    require_dir(osp.join(voc2010, 'JPEGImages'), 'VOC2010 JPEGImages')
    data = load_trainval_merged(json_path)
    out_dir = osp.join(voc2010, 'SegmentationClassContext')
    images = {}
    for img in data['images']:
        for key in ('image_id', 'file_name', 'height', 'width', 'phase'):
            if key not in img:
                raise DataPrepError(f'{json_path}: image entry without "{key}": {str(img)[:200]}')
        images[img['image_id']] = img
    anns_by_image = defaultdict(list)
    orphans = 0
    for ann in data['annos_segmentation']:  # file order = painting order (getMask)
        if ann.get('image_id') not in images:
            orphans += 1
            continue
        anns_by_image[ann['image_id']].append(ann)
    if orphans:
        print(f'warning: {orphans} annotations of {json_path} refer to image ids not in images[]; skipped',
              file=sys.stderr)
    lut = category_lut()
    stats = dict(images=0, written=0, skipped=0, orphan_annotations=orphans)
    for split in splits:
        imgs = [img for img in data['images'] if img['phase'] == split]
        stats[split] = len(imgs)
        stats['images'] += len(imgs)
        names = []
        for img in progress(imgs, desc=f'PASCAL-Context {split}'):
            stem = osp.splitext(img['file_name'])[0]
            names.append(stem)
            dst = osp.join(out_dir, stem + '.png')
            if osp.isfile(dst):
                stats['skipped'] += 1
                continue
            save_png_atomic(context_label_map(img, anns_by_image[img['image_id']], lut, json_path), dst)
            stats['written'] += 1
        write_text_atomic(''.join(n + '\n' for n in sorted(names)),
                          osp.join(voc2010, 'ImageSets', 'SegmentationContext', f'{split}.txt'))
    return stats


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument('devkit', help='VOCdevkit folder containing VOC2010/JPEGImages')
    p.add_argument('json_path', help='trainval_merged.json (PASCAL in Detail)')
    p.add_argument('--splits', nargs='+', default=list(SPLITS), choices=list(SPLITS))
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        stats = convert(args.devkit, args.json_path, tuple(args.splits))
    except DataPrepError as e:
        sys.exit(f'error: {e}')
    print(f'PASCAL-Context: {stats["written"]} written, {stats["skipped"]} already done; ' +
          ', '.join(f'{s} {stats[s]} images' for s in args.splits))


if __name__ == '__main__':
    main()
