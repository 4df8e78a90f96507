"""Synthetic toy scenes for the quickstart, in the same on-disk formats as the real data.

Deterministic by seed. Each scene has a grey textured background and a few coloured shapes (which may
occlude each other). Written:

* ``<out>/val/{images,labels}/*.png`` + ``<out>/cls_toy.txt``: a labeled split in mmseg format
  (label 0 = background, 1..K = shape classes; ``cls_toy.txt`` names the K shapes, one per line, for
  the no-background protocol with ``reduce_zero_label=True``, as VOC20/Context59);
* ``<out>/train/images/*.png`` + ``<out>/train/dataset_coco.json``: image-caption pairs naming the
  objects ("a red circle and a blue star on a striped background"), in the Karpathy COCO format that
  ``COCOCaptionDataset`` reads (superpixels are then computed by data_prep/segclip_superpixels.py,
  exactly as for COCO);
* ``<out>/train/sa1b/*.json``: unlabeled instance masks as SA-1B-style per-image JSON with COCO RLE
  (object masks, plus part masks and the background region, so masks overlap as in SA-1B).

Usage::

    python data_prep/make_toy_dataset.py --out data/toy --num-train 400 --num-val 60 --size 96 --seed 0
"""
import argparse
import json
import os
import os.path as osp
from typing import Dict, List, Tuple

import numpy as np
from PIL import Image

SHAPES = ('circle', 'square', 'triangle', 'star', 'ring', 'cross')
# Each shape usually (not always) has its own colour, as objects in photos do, so that a CLIP this
# small can tie words to appearance within minutes on a CPU; the other colours occur too.
TYPICAL_COLOUR = dict(circle='red', square='blue', triangle='green', star='yellow', ring='purple',
                      cross='orange')
TYPICAL_COLOUR_PROB = 0.8
COLOURS = {
    'red': (220, 40, 40), 'green': (40, 180, 60), 'blue': (40, 80, 220), 'yellow': (230, 210, 40),
    'purple': (150, 60, 190), 'orange': (240, 140, 30), 'white': (240, 240, 240), 'black': (25, 25, 25),
}
BACKGROUNDS = ('striped', 'dotted', 'noisy', 'checkered')


def shape_mask(shape: str, size: int, cy: float, cx: float, r: float) -> np.ndarray:
    """Boolean (size, size) mask of a shape centred at (cy, cx) with radius r (pixels)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    dy, dx = yy - cy, xx - cx
    if shape == 'circle':
        return dy ** 2 + dx ** 2 <= r ** 2
    if shape == 'square':
        return (np.abs(dy) <= r * 0.85) & (np.abs(dx) <= r * 0.85)
    if shape == 'triangle':
        return (dy <= r * 0.8) & (dy >= -r) & (np.abs(dx) <= (dy + r) * 0.6)
    if shape == 'star':
        ang = np.arctan2(dy, dx)
        rad = np.sqrt(dy ** 2 + dx ** 2)
        return rad <= r * (0.55 + 0.45 * np.abs(np.cos(2.5 * ang)))
    if shape == 'ring':
        d2 = dy ** 2 + dx ** 2
        return (d2 <= r ** 2) & (d2 >= (0.5 * r) ** 2)
    if shape == 'cross':
        return ((np.abs(dy) <= r * 0.3) & (np.abs(dx) <= r)) | ((np.abs(dx) <= r * 0.3) & (np.abs(dy) <= r))
    raise ValueError(shape)


def background(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    base = rng.integers(90, 170) + rng.integers(-12, 13, size=3)  # greyish
    yy, xx = np.mgrid[0:size, 0:size]
    img = np.empty((size, size, 3), np.float32)
    img[:] = base
    if kind == 'striped':
        period = rng.integers(6, 12)
        img += ((yy + xx) // period % 2)[..., None] * rng.integers(15, 35)
    elif kind == 'dotted':
        period = rng.integers(6, 10)
        img += (((yy % period) < 2) & ((xx % period) < 2))[..., None] * 40
    elif kind == 'checkered':
        period = rng.integers(8, 16)
        img += ((yy // period + xx // period) % 2)[..., None] * rng.integers(15, 35)
    img += rng.normal(0, 6 if kind != 'noisy' else 14, size=img.shape)
    return img


def render_scene(rng: np.random.Generator, size: int) -> Tuple[np.ndarray, np.ndarray, List[Dict], str]:
    """One scene: (image uint8 HxWx3, label uint8 HxW, objects, background kind).

    ``objects`` are in painting order (later ones occlude earlier ones) with their visible masks.
    """
    bg_kind = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
    img = background(bg_kind, size, rng)
    label = np.zeros((size, size), np.uint8)
    objects = []
    for _ in range(rng.choice([1, 2, 3], p=[0.5, 0.3, 0.2])):
        shape = SHAPES[rng.integers(len(SHAPES))]
        colour = TYPICAL_COLOUR[shape] if rng.random() < TYPICAL_COLOUR_PROB else \
            list(COLOURS)[rng.integers(len(COLOURS))]
        r = rng.uniform(0.14, 0.26) * size
        cy, cx = rng.uniform(r, size - r, size=2)
        mask = shape_mask(shape, size, cy, cx, r)
        if mask.sum() < 16:
            continue
        shade = np.clip(np.array(COLOURS[colour]) + rng.normal(0, 10, 3), 0, 255)
        img[mask] = shade + rng.normal(0, 5, size=(mask.sum(), 3))
        label[mask] = SHAPES.index(shape) + 1
        for obj in objects:  # occlusion: earlier objects lose what the new one covers
            obj['mask'] &= ~mask
        objects.append(dict(shape=shape, colour=colour, mask=mask))
    objects = [o for o in objects if o['mask'].sum() >= 8]
    return np.clip(img, 0, 255).astype(np.uint8), label, objects, bg_kind


def caption(objects: List[Dict], bg_kind: str, rng: np.random.Generator) -> str:
    """A caption naming every object. Most captions name only the shapes ("a photo of a circle and a
    star."); colours and the background are mentioned sometimes. Matching captions to images must
    therefore rely on the shapes, not on colours or textures alone."""
    style = rng.random()
    names = []
    for o in objects:
        words = f"{o['colour']} {o['shape']}" if style > 0.7 else o['shape']
        names.append(f"{'an' if words[0] in 'aeiou' else 'a'} {words}")
    if not names:
        return f'a photo of an empty {bg_kind} background.'
    listed = names[0] if len(names) == 1 else ', '.join(names[:-1]) + ' and ' + names[-1]
    if style < 0.55:
        return f'a photo of {listed}.'
    forms = ('{} on a {} background', 'a picture of {} on a {} background', 'there is {} in front of a {} wall')
    return forms[rng.integers(len(forms))].format(listed, bg_kind)


def sa1b_record(image_id: int, file_name: str, objects: List[Dict], size: int) -> Dict:
    """SA-1B-style annotation: every object mask, the upper half of each object (a part mask that
    overlaps its whole), and the background region."""
    from pycocotools import mask as mask_utils

    masks = []
    for o in objects:
        masks.append(o['mask'])
        ys = np.nonzero(o['mask'])[0]
        part = o['mask'].copy()
        part[ys.min() + (ys.max() - ys.min()) // 2:] = False
        if part.sum() >= 8:
            masks.append(part)
    union = np.zeros((size, size), bool)
    for o in objects:
        union |= o['mask']
    if (~union).sum() >= 8:
        masks.append(~union)
    anns = []
    for i, m in enumerate(masks):
        rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        rle['counts'] = rle['counts'].decode('ascii')
        anns.append(dict(id=i, segmentation=rle, area=int(m.sum()),
                         bbox=[float(v) for v in mask_utils.toBbox(rle)], predicted_iou=1.0,
                         stability_score=1.0, crop_box=[0, 0, size, size], point_coords=[]))
    return dict(image=dict(image_id=image_id, width=size, height=size, file_name=file_name), annotations=anns)


def _save_png(array: np.ndarray, path: str) -> None:
    tmp = path + '.tmp.png'
    Image.fromarray(array).save(tmp)
    os.replace(tmp, path)


def _save_json(obj, path: str) -> None:
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(obj, f)
    os.replace(tmp, path)


def make_split(out: str, split: str, num: int, size: int, seed: int, with_train_formats: bool) -> None:
    from tqdm import tqdm

    img_dir = osp.join(out, split, 'images')
    os.makedirs(img_dir, exist_ok=True)
    if with_train_formats:
        os.makedirs(osp.join(out, split, 'sa1b'), exist_ok=True)
    else:
        os.makedirs(osp.join(out, split, 'labels'), exist_ok=True)
    captions = []
    for idx in tqdm(range(num), desc=f'toy {split}', unit='img', mininterval=1.0):
        # Every scene draws from its own stream, so a resumed run renders identical scenes.
        scene_rng = np.random.default_rng([seed, 0 if split == 'train' else 1, idx])
        img, label, objects, bg_kind = render_scene(scene_rng, size)
        name = f'{split}_{idx:06d}'
        img_path = osp.join(img_dir, name + '.png')
        if not osp.exists(img_path):
            _save_png(img, img_path)
        if with_train_formats:
            captions.append(dict(filepath='images', filename=f'{name}.png', split='train', imgid=idx,
                                 sentences=[dict(raw=caption(objects, bg_kind, scene_rng))]))
            json_path = osp.join(out, split, 'sa1b', name + '.json')
            if not osp.exists(json_path):
                _save_json(sa1b_record(idx, f'{name}.png', objects, size), json_path)
        else:
            label_path = osp.join(out, split, 'labels', name + '.png')
            if not osp.exists(label_path):
                _save_png(label, label_path)
    if with_train_formats:
        _save_json(dict(images=captions, dataset='toy'), osp.join(out, split, 'dataset_coco.json'))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', required=True)
    parser.add_argument('--num-train', type=int, default=400)
    parser.add_argument('--num-val', type=int, default=60)
    parser.add_argument('--size', type=int, default=96)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    with open(osp.join(args.out, 'cls_toy.txt'), 'w') as f:
        f.write('\n'.join(SHAPES) + '\n')
    make_split(args.out, 'train', args.num_train, args.size, args.seed, with_train_formats=True)
    make_split(args.out, 'val', args.num_val, args.size, args.seed, with_train_formats=False)


if __name__ == '__main__':
    main()
