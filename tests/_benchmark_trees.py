"""Tiny synthetic benchmark trees in each benchmark's official on-disk format (test helper).

Every builder writes 2 small images with label maps drawn from the benchmark's real id space and
returns what the tests need to check the conversion/loading.
"""
import json
import os
import os.path as osp

import numpy as np
from PIL import Image

H, W = 40, 56

# The official COCO thing category ids (1..90 with gaps) -> 80 things.
COCO_THING_IDS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27,
                  28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53,
                  54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80,
                  81, 82, 84, 85, 86, 87, 88, 89, 90]


def _rgb(path, seed, h=H, w=W):
    os.makedirs(osp.dirname(path), exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)


def _label(path, arr, palette=False):
    os.makedirs(osp.dirname(path), exist_ok=True)
    im = Image.fromarray(arr.astype(np.uint8))
    if palette:  # VOC ships palette ('P') PNGs
        im = im.convert('P')
        im.putpalette([v for i in range(256) for v in ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256)])
    im.save(path)


def _blocks(values, h=H, w=W):
    """Label map of vertical stripes with the given values."""
    arr = np.zeros((h, w), np.uint8)
    edges = np.linspace(0, w, len(values) + 1).astype(int)
    for v, a, b in zip(values, edges[:-1], edges[1:]):
        arr[:, a:b] = v
    return arr


def make_voc2012(data_root):
    root = osp.join(data_root, 'VOCdevkit', 'VOC2012')
    ids = ['2007_000033', '2007_000042']
    maps = [_blocks([0, 1, 15, 255]), _blocks([0, 20, 7])]
    for i, (k, m) in enumerate(zip(ids, maps)):
        _rgb(osp.join(root, 'JPEGImages', k + '.jpg'), i)
        _label(osp.join(root, 'SegmentationClass', k + '.png'), m, palette=True)
    # a train image that must not be evaluated
    _rgb(osp.join(root, 'JPEGImages', '2007_000032.jpg'), 9)
    _label(osp.join(root, 'SegmentationClass', '2007_000032.png'), _blocks([0, 3]), palette=True)
    os.makedirs(osp.join(root, 'ImageSets', 'Segmentation'), exist_ok=True)
    with open(osp.join(root, 'ImageSets', 'Segmentation', 'val.txt'), 'w') as f:
        f.write('\n'.join(ids) + '\n')
    with open(osp.join(root, 'ImageSets', 'Segmentation', 'train.txt'), 'w') as f:
        f.write('2007_000032\n')
    return dict(root=root, ids=ids, maps=maps)


# PASCAL-Context (459-class) ids of some cls_context59 classes -> their Context-60 labels
CONTEXT_IDS = {2: 1, 22: 5, 45: 12, 189: 30, 284: 37, 458: 59}


def _rle(mask):
    """Compressed COCO RLE with str counts, as stored in JSON files."""
    from pycocotools import mask as mask_utils
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return dict(size=[int(v) for v in rle['size']], counts=rle['counts'].decode('ascii'))


def _stripes(n, idx, h=H, w=W):
    """Mask of stripe(s) ``idx`` out of ``n`` vertical stripes (as ``_blocks``)."""
    edges = np.linspace(0, w, n + 1).astype(int)
    m = np.zeros((h, w), bool)
    for i in np.atleast_1d(idx):
        m[:, edges[i]:edges[i + 1]] = True
    return m


def make_voc2010_context(data_root):
    """The official downloads: ``VOC2010/JPEGImages`` (VOCtrainval_03-May-2010.tar) and
    ``trainval_merged.json`` (PASCAL in Detail: images with ``phase``, ``annos_segmentation`` with
    compressed-RLE ``segmentation``; later entries are painted over earlier ones)."""
    root = osp.join(data_root, 'VOCdevkit', 'VOC2010')
    ids = ['2008_000002', '2008_000003']
    maps = [_blocks([0, 1, 59]), _blocks([30, 0, 12, 5])]
    train_ids = ['2008_000008']
    train_maps = [_blocks([37, 0])]
    images = []
    for i, (k, phase) in enumerate([(ids[1], 'val'), (train_ids[0], 'train'), (ids[0], 'val')]):
        _rgb(osp.join(root, 'JPEGImages', k + '.jpg'), 10 + i)
        images.append(dict(image_id=int(k.replace('_', '')), file_name=k + '.jpg', height=H, width=W,
                           phase=phase, date='03-May-2010'))
    img_id = {k: int(k.replace('_', '')) for k in ids + train_ids}
    anns = []

    def add(stem, cid, mask):
        anns.append(dict(id=len(anns) + 1, image_id=img_id[stem], category_id=cid, segmentation=_rle(mask),
                         area=int(mask.sum()), bbox=[0, 0, W, H], iscrowd=0, parts=[]))

    # image 1: person over stripes 1-2, then aeroplane and wood painted over it (file order wins)
    add(ids[0], 284, _stripes(3, [1, 2]))
    add(train_ids[0], 284, _stripes(2, 0))  # interleaved entries of another image
    add(ids[0], 2, _stripes(3, 1))
    add(ids[1], 189, _stripes(4, 0))
    add(ids[0], 458, _stripes(3, 2))
    add(ids[1], 45, _stripes(4, 2))
    add(ids[1], 22, _stripes(4, 3))
    cats = [dict(category_id=c, name=n, supercategory='object', onlysemantic=0, parts=[])
            for c, n in [(2, 'aeroplane'), (22, 'bench'), (45, 'bus'), (189, 'ground'), (284, 'person'),
                         (458, 'wood')]]
    json_path = osp.join(data_root, 'trainval_merged.json')
    with open(json_path, 'w') as f:
        json.dump(dict(info=dict(description='PASCAL in Detail (synthetic)'), images=images,
                       annos_segmentation=anns, categories=cats, parts=[], annos_occlusion=[],
                       annos_joints=[]), f)
    return dict(root=root, devkit=osp.dirname(root), json=json_path, ids=ids, maps=maps, train_ids=train_ids,
                train_maps=train_maps)


def _square_poly(x0, y0, x1, y1):
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


def make_coco(data_root):
    """COCO 2017 download (``val2017/`` + ``annotations/instances_val2017.json``) and the COCO-Stuff
    ``stuffthingmaps`` layout (``coco_stuff164k/{images,annotations}/val2017``)."""
    from pycocotools import mask as mask_utils
    coco = osp.join(data_root, 'coco')
    stuff = osp.join(data_root, 'coco_stuff164k')
    files = ['000000000139.jpg', '000000000285.jpg']
    images, anns = [], []
    for i, name in enumerate(files):
        _rgb(osp.join(coco, 'val2017', name), 20 + i)
        _rgb(osp.join(stuff, 'images', 'val2017', name), 20 + i)
        images.append(dict(id=i + 1, file_name=name, height=H, width=W))
    # image 1: a big person (cat 1) with a small dog (cat 18 -> train id 17) on top; a crowd of
    # toothbrushes (cat 90 -> 80) given as uncompressed RLE.
    anns.append(dict(id=1, image_id=1, category_id=1, iscrowd=0, area=600.0,
                     segmentation=_square_poly(0, 0, 30, 20), bbox=[0, 0, 30, 20]))
    anns.append(dict(id=2, image_id=1, category_id=18, iscrowd=0, area=50.0,
                     segmentation=_square_poly(5, 5, 15, 10), bbox=[5, 5, 10, 5]))
    crowd = np.zeros((H, W), np.uint8, order='F')
    crowd[30:38, 40:50] = 1
    rle = mask_utils.encode(np.asfortranarray(crowd))
    counts = []  # uncompressed RLE as COCO stores for crowds
    flat = crowd.flatten(order='F')
    cur, run = 0, 0
    for v in flat:
        if v == cur:
            run += 1
        else:
            counts.append(run)
            cur, run = v, 1
    counts.append(run)
    anns.append(dict(id=3, image_id=1, category_id=90, iscrowd=1, area=float(mask_utils.area(rle)),
                     segmentation=dict(size=[H, W], counts=counts), bbox=[40, 30, 10, 8]))
    # image 2: no annotations at all -> all background
    cats = [dict(id=c, name=f'cat{c}', supercategory='x') for c in COCO_THING_IDS]
    os.makedirs(osp.join(coco, 'annotations'), exist_ok=True)
    with open(osp.join(coco, 'annotations', 'instances_val2017.json'), 'w') as f:
        json.dump(dict(images=images, annotations=anns, categories=cats), f)
    # stuffthingmaps: 0-based ids; 0 person, 91 banner (stuff), 12 stop sign (after the unused 11),
    # 255 unlabeled; 181 wood (last stuff), 89 toothbrush (last thing)
    stuff_maps = [_blocks([0, 91, 12, 255]), _blocks([181, 89])]
    for name, m in zip(files, stuff_maps):
        _label(osp.join(stuff, 'annotations', 'val2017', name.replace('.jpg', '.png')), m)
    expected_stuff = [_blocks([0, 80, 11, 255]), _blocks([170, 79])]  # mmseg's COCO-Stuff-171 table
    expected_object = [_blocks([1, 0, 12, 0]), _blocks([0, 80])]  # GroupViT's COCO-Object table
    return dict(coco=coco, stuff=stuff, files=files, stuff_maps=stuff_maps, expected_stuff=expected_stuff,
                expected_object=expected_object)


def make_cityscapes(data_root):
    root = osp.join(data_root, 'cityscapes')
    stems = [('frankfurt', 'frankfurt_000000_000294'), ('lindau', 'lindau_000000_000019')]
    label_ids = [_blocks([7, 26, 0, 33]), _blocks([23, 24, 4])]
    expected = [_blocks([0, 13, 255, 18]), _blocks([10, 11, 255])]
    for i, ((city, stem), m) in enumerate(zip(stems, label_ids)):
        _rgb(osp.join(root, 'leftImg8bit', 'val', city, stem + '_leftImg8bit.png'), 30 + i)
        _label(osp.join(root, 'gtFine', 'val', city, stem + '_gtFine_labelIds.png'), m)
    return dict(root=root, stems=stems, expected=expected)


def make_ade20k(data_root):
    root = osp.join(data_root, 'ade', 'ADEChallengeData2016')
    ids = ['ADE_val_00000001', 'ADE_val_00000002']
    maps = [_blocks([0, 1, 150]), _blocks([3, 77, 0])]
    for i, (k, m) in enumerate(zip(ids, maps)):
        _rgb(osp.join(root, 'images', 'validation', k + '.jpg'), 40 + i)
        _label(osp.join(root, 'annotations', 'validation', k + '.png'), m)
    return dict(root=root, ids=ids, maps=maps)


def make_all(data_root):
    """All trees, as downloaded (PASCAL-Context / COCO-Object / COCO-Stuff / Cityscapes still need
    conversion)."""
    return dict(voc=make_voc2012(data_root), context=make_voc2010_context(data_root),
                coco=make_coco(data_root), cityscapes=make_cityscapes(data_root),
                ade=make_ade20k(data_root))

