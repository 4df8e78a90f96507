"""Prepare the eight evaluation benchmarks from their official downloads.

Expected layout (mmseg's ``data/`` convention; every config's ``data_root`` points here)::

    data/VOCdevkit/VOC2012/{JPEGImages,SegmentationClass,ImageSets/Segmentation/val.txt}   voc21, voc20
    data/VOCdevkit/VOC2010/{JPEGImages,SegmentationClassContext,
                            ImageSets/SegmentationContext/val.txt}                        context60/59
    data/coco_stuff164k/{images,annotations}/val2017    coco_stuff171 (*_labelTrainIds.png),
                                                        coco_object (*_instanceTrainIds.png)
    data/cityscapes/{leftImg8bit,gtFine}/val/<city>/   (*_gtFine_labelTrainIds.png)
    data/ade/ADEChallengeData2016/{images,annotations}/validation

Sub-commands (each resumable: finished outputs are skipped; files are written atomically)::

    python data_prep/prepare_benchmarks.py voc        data/VOCdevkit          # checks only
    python data_prep/prepare_benchmarks.py ade20k     data/ade/ADEChallengeData2016  # checks only
    python data_prep/prepare_benchmarks.py context    data/VOCdevkit trainval_merged.json
    python data_prep/prepare_benchmarks.py coco_stuff data/coco_stuff164k
    python data_prep/prepare_benchmarks.py coco_object data/coco_stuff164k   # after coco_stuff's download
    python data_prep/prepare_benchmarks.py cityscapes data/cityscapes [--from-polygons]

``coco_stuff`` and ``cityscapes --from-polygons`` import mmseg's own converters from the installed
wheel (``mmseg/.mim/tools/dataset_converters``) and use their id tables/label functions;
``context`` is ``convert_pascal_context.py`` (pycocotools, no ``detail`` API) and ``coco_object``
is ``convert_coco_object.py`` (the stuffthingmaps route); VOC and ADE20K need no conversion
(mmseg reads the official PNGs directly).
"""
import argparse
import glob
import importlib.util
import os.path as osp
import sys

import numpy as np

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from bench_io import (DataPrepError, apply_lut, progress, read_label_png,  # noqa: E402
                      require_dir, require_file, save_png_atomic, write_text_atomic)

# Cityscapes label id -> train id (cityscapesscripts/helpers/labels.py); others -> 255.
CITYSCAPES_ID_TO_TRAINID = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10,
                            24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}


def mmseg_converter(name: str):
    """Import ``mmseg/.mim/tools/dataset_converters/<name>.py`` from the installed mmseg wheel."""
    import mmseg
    path = osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools', 'dataset_converters', name + '.py')
    require_file(path, f'mmseg converter {name}.py (is mmsegmentation 1.x installed?)')
    spec = importlib.util.spec_from_file_location(f'_mmseg_converter_{name}', path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ImportError as e:
        raise DataPrepError(f'mmseg converter {path} needs a missing package: {e}') from e
    return module


def _lut(mapping: dict) -> np.ndarray:
    lut = np.full(256, 255, np.uint8)
    for k, v in mapping.items():
        lut[k] = v
    return lut


def _read_split(path: str):
    require_file(path, 'split file')
    ids = [line.strip() for line in open(path) if line.strip()]
    if not ids:
        raise DataPrepError(f'empty split file: {path}')
    return ids


def check_pairs(ids, img_tmpl: str, ann_tmpl: str):
    """Raise naming the first missing image/annotation of a split."""
    for i in ids:
        require_file(img_tmpl.format(i), 'image')
        require_file(ann_tmpl.format(i), 'annotation')
    return len(ids)


# --------------------------------------------------------------------------------------------
def prepare_voc(devkit: str, split: str = 'val') -> dict:
    """VOC21/VOC20 read ``VOC2012/SegmentationClass`` as downloaded; check the split is complete."""
    root = require_dir(osp.join(devkit, 'VOC2012'), 'VOC2012 folder of VOCdevkit')
    ids = _read_split(osp.join(root, 'ImageSets', 'Segmentation', f'{split}.txt'))
    n = check_pairs(ids, osp.join(root, 'JPEGImages', '{}.jpg'),
                    osp.join(root, 'SegmentationClass', '{}.png'))
    return dict(images=n, written=0, skipped=n)


def prepare_ade20k(root: str) -> dict:
    """ADE20K-150 reads ``ADEChallengeData2016`` as downloaded; check images/annotations pair up."""
    img_dir = require_dir(osp.join(root, 'images', 'validation'), 'ADE20K validation images')
    ann_dir = require_dir(osp.join(root, 'annotations', 'validation'), 'ADE20K validation annotations')
    ids = sorted(osp.basename(p)[:-4] for p in glob.glob(osp.join(img_dir, '*.jpg')))
    if not ids:
        raise DataPrepError(f'no .jpg images in {img_dir}')
    n = check_pairs(ids, osp.join(img_dir, '{}.jpg'), osp.join(ann_dir, '{}.png'))
    return dict(images=n, written=0, skipped=n)


def prepare_coco_stuff(root: str, splits=('val2017', )) -> dict:
    """COCO-Stuff-164k ``stuffthingmaps`` -> ``*_labelTrainIds.png`` (171 classes, mmseg's table)."""
    conv = mmseg_converter('coco_stuff164k')
    lut = _lut(conv.clsID_to_trID)
    written = skipped = total = 0
    for split in splits:
        ann_dir = require_dir(osp.join(root, 'annotations', split), f'COCO-Stuff {split} stuffthingmaps')
        require_dir(osp.join(root, 'images', split), f'COCO {split} images')
        srcs = sorted(p for p in glob.glob(osp.join(ann_dir, '*.png'))
                      if not p.endswith(('_labelTrainIds.png', '_instanceTrainIds.png')))
        if not srcs:
            raise DataPrepError(f'no stuffthingmaps PNGs in {ann_dir}')
        total += len(srcs)
        for src in progress(srcs, desc=f'COCO-Stuff {split}'):
            dst = src[:-4] + '_labelTrainIds.png'
            if osp.isfile(dst):
                skipped += 1
                continue
            save_png_atomic(apply_lut(read_label_png(src), lut, src), dst)
            written += 1
    return dict(images=total, written=written, skipped=skipped)


def prepare_cityscapes(root: str, splits=('val', ), from_polygons: bool = False) -> dict:
    """Cityscapes -> ``*_gtFine_labelTrainIds.png`` (19 classes, 255 ignore).

    Default: from the ``*_gtFine_labelIds.png`` shipped in ``gtFine_trainvaltest.zip`` (no extra
    dependency). ``from_polygons=True`` instead runs mmseg's ``cityscapes.py`` label function on the
    ``*_gtFine_polygons.json`` files (needs ``cityscapesscripts``); the two agree on the 19 classes.
    """
    lut = _lut(CITYSCAPES_ID_TO_TRAINID)
    conv = mmseg_converter('cityscapes') if from_polygons else None
    written = skipped = total = 0
    for split in splits:
        gt_dir = require_dir(osp.join(root, 'gtFine', split), f'Cityscapes gtFine/{split}')
        require_dir(osp.join(root, 'leftImg8bit', split), f'Cityscapes leftImg8bit/{split}')
        pattern = '*_gtFine_polygons.json' if from_polygons else '*_gtFine_labelIds.png'
        srcs = sorted(glob.glob(osp.join(gt_dir, '*', pattern)))
        if not srcs:
            raise DataPrepError(f'no {pattern} files under {gt_dir}')
        total += len(srcs)
        names = []
        for src in progress(srcs, desc=f'Cityscapes {split}'):
            stem = src[:-len(pattern) + 1]
            dst = stem + '_gtFine_labelTrainIds.png'
            names.append(osp.relpath(stem, gt_dir))
            if osp.isfile(dst):
                skipped += 1
                continue
            if conv is not None:
                conv.convert_json_to_label(src)  # writes dst itself (mmseg/cityscapesscripts)
            else:
                save_png_atomic(apply_lut(read_label_png(src), lut, src), dst)
            written += 1
        write_text_atomic(''.join(n + '\n' for n in names), osp.join(root, f'{split}.txt'))
    return dict(images=total, written=written, skipped=skipped)


def prepare_context(devkit: str, json_path: str) -> dict:
    """PASCAL-Context -> ``VOC2010/SegmentationClassContext`` (60 classes incl. background 0).

    ``data_prep/convert_pascal_context.py``: ``trainval_merged.json`` rasterised with pycocotools as
    the ``detail`` API's ``getMask`` does, then mmseg's 60-class id table. Context59 reads the same
    files with ``reduce_zero_label=True`` (background -> 255).
    """
    from convert_pascal_context import convert
    return convert(devkit, json_path)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Prepare the evaluation benchmarks',
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    sub = p.add_subparsers(dest='bench', required=True)
    s = sub.add_parser('voc', help='check VOC2012 (voc21/voc20)')
    s.add_argument('devkit')
    s.add_argument('--split', default='val')
    s = sub.add_parser('ade20k', help='check ADEChallengeData2016')
    s.add_argument('root')
    s = sub.add_parser('context', help='PASCAL-Context trainval_merged.json -> Context-60/59 (pycocotools)')
    s.add_argument('devkit')
    s.add_argument('json_path')
    s = sub.add_parser('coco_stuff', help='COCO-Stuff-164k stuffthingmaps -> labelTrainIds')
    s.add_argument('root')
    s.add_argument('--splits', nargs='+', default=['val2017'])
    s = sub.add_parser('coco_object', help='COCO-Stuff stuffthingmaps -> instanceTrainIds (the field\'s '
                       'COCO-Object; see convert_coco_object.py --from-instances for the instance route)')
    s.add_argument('root')
    s.add_argument('-o', '--out-dir', default=None)
    s.add_argument('--splits', nargs='+', default=['val2017'])
    s = sub.add_parser('cityscapes', help='Cityscapes -> gtFine_labelTrainIds')
    s.add_argument('root')
    s.add_argument('--splits', nargs='+', default=['val'])
    s.add_argument('--from-polygons', action='store_true')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        if args.bench == 'voc':
            stats = prepare_voc(args.devkit, args.split)
        elif args.bench == 'ade20k':
            stats = prepare_ade20k(args.root)
        elif args.bench == 'context':
            stats = prepare_context(args.devkit, args.json_path)
        elif args.bench == 'coco_stuff':
            stats = prepare_coco_stuff(args.root, tuple(args.splits))
        elif args.bench == 'coco_object':
            from convert_coco_object import convert_stuffthingmaps
            stats = convert_stuffthingmaps(args.root, args.out_dir, tuple(args.splits))
        else:
            stats = prepare_cityscapes(args.root, tuple(args.splits), args.from_polygons)
    except DataPrepError as e:
        sys.exit(f'error: {e}')
    print(f'{args.bench}: {stats["written"]} written, {stats["skipped"]} already done/checked, '
          f'{stats["images"]} images')


if __name__ == '__main__':
    main()
