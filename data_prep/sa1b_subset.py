"""SA-1B subset for PixelCLIP: extract the selected tar shards and resize images + masks to half size.

The official subset is the 100 shards of ``datasets/sa1b.txt`` (sa_000020-029, 130-139, 250-259,
340-349, 470-479, 490-499, 560-569, 580-589, 600-609, 710-719); the README resizes images *and*
annotations to half size (short side 1500 -> 750) but ships no script for it (issue #2).

Output: ``OUT/images/<shard>/<id>.jpg`` and ``OUT/annotations/<shard>/<id>.json`` (SA-1B JSON, COCO RLE
at the new size). Resumable (finished images and shards are skipped), atomic writes, progress bars.

    python data_prep/sa1b_subset.py TAR_DIR OUT [--shards sa_000020 ...] [--list my_shards.txt]
"""
import argparse
import io
import json
import os
import os.path as osp
import tarfile

import numpy as np
from PIL import Image
from tqdm import tqdm

try:
    from pixelclip_mask_io import encode_masks, write_json_atomic
except ImportError:
    from data_prep.pixelclip_mask_io import encode_masks, write_json_atomic

OFFICIAL_SHARD_RANGES = [(20, 29), (130, 139), (250, 259), (340, 349), (470, 479), (490, 499),
                         (560, 569), (580, 589), (600, 609), (710, 719)]
_CHUNK = 64


def official_shards():
    return [f'sa_{i:06d}' for lo, hi in OFFICIAL_SHARD_RANGES for i in range(lo, hi + 1)]


def resize_masks_nearest(masks: np.ndarray, h: int, w: int) -> np.ndarray:
    """(n, H, W) -> (n, h, w) nearest (index sampling, vectorised over masks)."""
    H, W = masks.shape[1:]
    ys = np.minimum((np.arange(h) * (H / h)).astype(np.int64), H - 1)
    xs = np.minimum((np.arange(w) * (W / w)).astype(np.int64), W - 1)
    return masks[:, ys][:, :, xs]


def resize_annotation(ann: dict, h: int, w: int, name: str) -> dict:
    from pycocotools import mask as mask_utils
    rles = []
    for i, a in enumerate(ann.get('annotations', [])):
        seg = a.get('segmentation')
        if not isinstance(seg, dict) or 'counts' not in seg:
            raise ValueError(f'{name}: annotation {i} has no COCO RLE')
        counts = seg['counts'].encode('ascii') if isinstance(seg['counts'], str) else seg['counts']
        rles.append(dict(size=seg['size'], counts=counts))
    out = []
    for s in range(0, len(rles), _CHUNK):
        dec = mask_utils.decode(rles[s:s + _CHUNK]).transpose(2, 0, 1)
        out.extend(encode_masks(resize_masks_nearest(dec, h, w).astype(bool)))
    image = dict(ann.get('image', {}), height=h, width=w)
    return dict(image=image, annotations=out)


def process_shard(tar_path: str, out_root: str, scale: float = 0.5, quality: int = 95) -> int:
    shard = osp.basename(tar_path).split('.')[0]
    done_flag = osp.join(out_root, 'images', shard, '.done')
    if osp.isfile(done_flag):
        return 0
    n = 0
    with tarfile.open(tar_path) as tar:
        members = {m.name: m for m in tar.getmembers() if m.isfile()}
        jpgs = sorted(k for k in members if k.endswith('.jpg'))
        for name in tqdm(jpgs, desc=shard, leave=False):
            stem = osp.splitext(osp.basename(name))[0]
            img_out = osp.join(out_root, 'images', shard, stem + '.jpg')
            ann_out = osp.join(out_root, 'annotations', shard, stem + '.json')
            if osp.isfile(img_out) and osp.isfile(ann_out):
                continue
            jname = osp.splitext(name)[0] + '.json'
            if jname not in members:
                print(f'warning: {tar_path}: no annotation for {name}, skipped')
                continue
            try:
                img = Image.open(io.BytesIO(tar.extractfile(members[name]).read())).convert('RGB')
                ann = json.load(tar.extractfile(members[jname]))
            except (OSError, json.JSONDecodeError) as err:
                print(f'warning: {tar_path}: corrupt {name}/{jname} ({err}), skipped')
                continue
            w, h = int(img.width * scale + 0.5), int(img.height * scale + 0.5)
            ann = resize_annotation(ann, h, w, f'{tar_path}:{jname}')
            os.makedirs(osp.dirname(img_out), exist_ok=True)
            tmp = img_out + '.tmp.jpg'
            img.resize((w, h), Image.BILINEAR).save(tmp, quality=quality)
            os.replace(tmp, img_out)
            write_json_atomic(ann, ann_out)
            n += 1
    os.makedirs(osp.dirname(done_flag), exist_ok=True)
    open(done_flag, 'w').close()
    return n


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('tar_dir')
    p.add_argument('out')
    p.add_argument('--shards', nargs='*', help='shard names (default: the official 100)')
    p.add_argument('--list', help='text file with one shard name per line')
    p.add_argument('--scale', type=float, default=0.5)
    a = p.parse_args()
    shards = a.shards or official_shards()
    if a.list:
        with open(a.list) as f:
            shards = [line.strip().split('.')[0] for line in f if line.strip()]
    tars = [osp.join(a.tar_dir, s + '.tar') for s in shards]
    missing = [t for t in tars if not osp.isfile(t)]
    if missing:
        print(f'{len(missing)} shard tars not found (first: {missing[0]}); processing the others')
    total = 0
    for t in tqdm([t for t in tars if osp.isfile(t)], desc='shards'):
        total += process_shard(t, a.out, a.scale)
    print(f'wrote {total} images to {a.out}')


if __name__ == '__main__':
    main()
