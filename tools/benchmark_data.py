"""Data-side throughput figures (prints figures; not a test).

    python tools/benchmark_data.py pixelclip-loader [--images 20] [--masks 100] [--size 750 1000] [--step-time 1.0]
    python tools/benchmark_data.py segclip-loader [--images 200] [--step-time 0.5]
    python tools/benchmark_data.py index-startup [--rows 3500000] [--legacy-rows 20000]
    python tools/benchmark_data.py superpixel-store [--entries 3500000] [--reads 20000]
    python tools/benchmark_data.py superpixels [--images 40] [--size 375 500]

* ``pixelclip-loader``: synthetic SA-1B-style images (half-size SA-1B: 750 x 1000 by default) with
  ``--masks`` overlapping COCO-RLE masks each, run through the PixelCLIP training pipeline of
  ``configs/pixelclip/pixelclip_vitb16_sa1b.py`` in this one process = one dataloader worker.
  Reports images/s per worker and the peak size of the packed masks.
* ``segclip-loader``: the SegCLIP training pipeline of ``configs/segclip_vitb16.py`` (decode, superpixel
  store read, joint random-resized crop, patch labels, tokenizer) on synthetic photos stored at short
  side 224, one process = one worker.
  For both loaders: samples/s per worker, and the workers one GPU needs at the recipe's per-GPU batch
  for a given ``--step-time`` (seconds per training step on that GPU).
* ``index-startup``: a synthetic CC3M-style sample index of ``--rows`` rows: time to write it, and to
  load it and build ``CC3MCaptionDataset`` (what each rank does at start-up); for comparison the
  previous list-file start-up (one caption file opened per sample) measured on ``--legacy-rows``
  files and extrapolated linearly.
* ``superpixel-store``: a synthetic store of ``--entries`` small maps (built in bulk), median time of a
  random read; plus the read time of full-size maps (224 x 298, ~150 segments) from a small store.
* ``superpixels``: Felzenszwalb as data_prep/segclip_superpixels.py (pre-resize to short side 224,
  scale 224, sigma 0.9, min_size 224) on synthetic photos, one process = one core: images/s per core.
"""
import argparse
import json
import os
import os.path as osp
import sys
import tempfile
import time

import numpy as np
from PIL import Image

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)


def synthetic_photo(rng, h, w):
    """Smooth colour blobs plus noise: superpixel-friendly, JPEG-like content."""
    low = rng.integers(0, 255, size=(h // 32 + 2, w // 32 + 2, 3)).astype(np.uint8)
    img = np.asarray(Image.fromarray(low).resize((w, h), Image.BICUBIC)).astype(np.float32)
    img += rng.normal(0, 8, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_sa1b_like(root, n, h, w, masks, rng):
    """n images + per-image SA-1B JSON with ``masks`` random (overlapping) ellipse masks."""
    from pycocotools import mask as mask_utils

    os.makedirs(osp.join(root, 'images'), exist_ok=True)
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    yy, xx = np.mgrid[0:h, 0:w]
    for i in range(n):
        name = f'sa_{i:06d}'
        Image.fromarray(synthetic_photo(rng, h, w)).save(osp.join(root, 'images', name + '.jpg'), quality=90)
        anns = []
        for j in range(masks):
            cy, cx = rng.uniform(0, h), rng.uniform(0, w)
            ry, rx = rng.uniform(0.02, 0.4) * h, rng.uniform(0.02, 0.4) * w
            m = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
            rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
            rle['counts'] = rle['counts'].decode('ascii')
            anns.append(dict(id=j, segmentation=rle, area=int(m.sum()), bbox=list(mask_utils.toBbox(rle)),
                             predicted_iou=0.9, stability_score=0.95, crop_box=[0, 0, w, h], point_coords=[]))
        with open(osp.join(root, 'annotations', name + '.json'), 'w') as f:
            json.dump(dict(image=dict(image_id=i, width=w, height=h, file_name=name + '.jpg'), annotations=anns), f)


def pixelclip_loader(args):
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import mmseg_ovs  # noqa: F401
    from mmseg.registry import DATASETS

    torch.set_num_threads(1)
    init_default_scope('mmseg')
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.time()
        write_sa1b_like(tmp, args.images, args.size[0], args.size[1], args.masks, rng)
        print(f'wrote {args.images} synthetic SA-1B-style images ({args.size[0]}x{args.size[1]}, '
              f'{args.masks} masks each) in {time.time() - t:.1f}s')
        cfg = Config.fromfile(osp.join(ROOT, 'configs/pixelclip/pixelclip_vitb16_sa1b.py'))
        ds_cfg = cfg.train_dataloader.dataset
        ds_cfg.update(data_root=tmp, ann_file='')  # the synthetic folder is scanned (index start-up: index-startup)
        dataset = DATASETS.build(ds_cfg)
        dataset[0]  # warm-up (imports, lazy init)
        t = time.time()
        peak = 0
        for i in range(len(dataset)):
            packed = dataset[i]['data_samples'].unlabeled_masks_packed
            peak = max(peak, packed.numel() * packed.element_size())
        dt = time.time() - t
    rate = len(dataset) / dt
    print(f'PixelCLIP training pipeline: {rate:.2f} images/s per worker '
          f'({1000 * dt / len(dataset):.0f} ms/image, 640x640 crops, {args.masks} masks/image); '
          f'packed masks per sample <= {peak / 1e6:.2f} MB (bit planes)')
    _workers_needed('PixelCLIP', rate, cfg.train_dataloader.batch_size, args.step_time)


def _workers_needed(name, rate, batch, step_time):
    import math
    need = batch / step_time
    print(f'{name}: one GPU at {batch} samples/step and {step_time:g} s/step consumes {need:.1f} samples/s '
          f'-> {math.ceil(need / rate)} dataloader workers per GPU ({rate:.2f} samples/s each)')


def segclip_loader(args):
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import mmseg_ovs  # noqa: F401
    from mmseg.registry import DATASETS
    from mmseg_ovs.datasets.sample_index import write_index

    sys.path.insert(0, osp.join(ROOT, 'data_prep'))
    import segclip_superpixels as sp_lib
    torch.set_num_threads(1)
    init_default_scope('mmseg')
    rng = np.random.default_rng(0)
    cfg = Config.fromfile(osp.join(ROOT, 'configs/segclip_vitb16.py'))
    with tempfile.TemporaryDirectory() as tmp:
        t = time.time()
        names, maps = [], {}
        for i in range(args.images):
            h, w = (224, 298) if i % 2 else (298, 224)
            img = synthetic_photo(rng, h, w)
            name = f'{i // 100:05d}/{i:09d}.jpg'
            os.makedirs(osp.join(tmp, osp.dirname(name)), exist_ok=True)
            Image.fromarray(img).save(osp.join(tmp, name), quality=90)
            names.append(name)
            if i < 20:
                maps[name] = sp_lib.superpixels(sp_lib.images_lib.load_like_loader(osp.join(tmp, name)))
            else:  # the store read does not depend on the content: reuse a computed map of that shape
                maps[name] = maps[names[i % 2]]
        store = osp.join(tmp, 'sp')
        os.makedirs(store)
        with open(osp.join(store, 'meta.json'), 'w') as f:
            json.dump(dict(format='segments-v1', params={}), f)
        keys = list(maps)
        for s in range(0, len(keys), 256):
            sp_lib.store_lib.write_segment(store, f'seg{s:06d}', {k: maps[k] for k in keys[s:s + 256]})
        sp_lib.store_lib.build_table(store)
        write_index(osp.join(tmp, 'index.npz'), dict(img=names, caption=['a photo of a thing on a table'] * len(names)))
        print(f'wrote {args.images} synthetic 224-short-side photos with superpixels in {time.time() - t:.1f}s')
        ds_cfg = cfg.train_dataloader.dataset.dataset.datasets[0]  # PerSampleSeedDataset(ConcatDataset([CC3M, COCO]))
        ds_cfg.update(data_root=tmp, ann_file='index.npz', superpixel_root=store)
        dataset = DATASETS.build(ds_cfg)
        dataset[0]
        t = time.time()
        for i in range(len(dataset)):
            dataset[i]
        dt = time.time() - t
    rate = len(dataset) / dt
    print(f'SegCLIP training pipeline: {rate:.1f} images/s per worker ({1000 * dt / len(dataset):.1f} ms/image, '
          f'224 crops)')
    _workers_needed('SegCLIP', rate, cfg.train_dataloader.batch_size, args.step_time)


def index_startup(args):
    from mmengine.registry import init_default_scope

    import mmseg_ovs  # noqa: F401
    from mmseg.registry import DATASETS
    from mmseg_ovs.datasets.sample_index import write_index
    init_default_scope('mmseg')
    n = args.rows
    with tempfile.TemporaryDirectory() as tmp:
        t = time.time()
        imgs = [f'{i // 10000:05d}/{i:09d}.jpg' for i in range(n)]
        caps = [f'a synthetic caption number {i} of about the length of a CC3M caption' for i in range(n)]
        path = osp.join(tmp, 'index.npz')
        write_index(path, dict(img=imgs, caption=caps))
        del imgs, caps
        print(f'wrote a {n}-row CC3M-style index ({os.path.getsize(path) / 1e6:.0f} MB) in {time.time() - t:.1f}s')
        times = []
        for _ in range(3):
            t = time.time()
            ds = DATASETS.build(dict(type='CC3MCaptionDataset', data_root=tmp, ann_file=path, pipeline=[]))
            assert len(ds) == n and ds.get_data_info(n - 1)['caption'].endswith('caption')
            times.append(time.time() - t)
        print(f'index start-up: load + build CC3MCaptionDataset with {n} rows: {1000 * np.median(times):.0f} ms '
              f'per rank (median of 3)')
        if args.legacy_rows:  # the previous start-up: one caption file per sample, listed in a text file
            m = args.legacy_rows
            rels = []
            for i in range(m):
                rel = f'{i // 10000:05d}/{i:09d}.jpg'
                os.makedirs(osp.join(tmp, 'legacy', osp.dirname(rel)), exist_ok=True)
                with open(osp.join(tmp, 'legacy', rel[:-4] + '.txt'), 'w') as f:
                    f.write(f'a synthetic caption number {i}')
                rels.append(rel)
            with open(osp.join(tmp, 'list.txt'), 'w') as f:
                f.write('\n'.join(rels))
            os.system('sync')
            t = time.time()
            ds = DATASETS.build(dict(type='CC3MCaptionDataset', data_root=osp.join(tmp, 'legacy'),
                                     ann_file=osp.join(tmp, 'list.txt'), pipeline=[]))
            dt = time.time() - t
            print(f'list-file start-up (a caption file opened per sample, then pickled by mmengine): {m} rows in '
                  f'{dt:.2f}s -> ~{dt * n / m:.0f}s for {n} rows (linear; page cache warm; cold network '
                  f'storage is slower)')


def superpixel_store(args):
    import zlib

    sys.path.insert(0, osp.join(ROOT, 'data_prep'))
    import segclip_superpixels as sp_lib
    store_lib = sp_lib.store_lib
    rng = np.random.default_rng(0)
    n = args.entries
    with tempfile.TemporaryDirectory() as tmp:
        root = osp.join(tmp, 'sp')
        os.makedirs(osp.join(root, 'segments'))
        with open(osp.join(root, 'meta.json'), 'w') as f:
            json.dump(dict(format='segments-v1', params={}), f)
        t = time.time()
        small = rng.integers(0, 200, (8, 8)).astype(np.uint8)
        payload = zlib.compress(small.tobytes())
        per = 50000
        for s0 in range(0, n, per):  # bulk-written segments (same layout as write_segment)
            keys = [f'{i // 10000:05d}/{i:09d}.jpg'.encode() for i in range(s0, min(n, s0 + per))]
            rows = np.zeros(len(keys), store_lib.ENTRY_DTYPE)
            lens = np.array([len(k) for k in keys]) + len(payload)
            rows['offset'] = np.concatenate(([0], np.cumsum(lens)[:-1]))
            rows['keylen'] = [len(k) for k in keys]
            rows['length'] = len(payload)
            rows['h'], rows['w'], rows['itemsize'] = 8, 8, 1
            rows['hash'] = [store_lib.key_hash(k.decode()) for k in keys]
            name = f'bulk{s0:09d}'
            with open(osp.join(root, 'segments', name + '.bin'), 'wb') as f:
                f.write(b''.join(k + payload for k in keys))
            np.save(osp.join(root, 'segments', name + '.idx.npy'), rows)
        total = store_lib.build_table(root)
        print(f'built a {total}-entry store in {time.time() - t:.1f}s')
        store = store_lib.SuperpixelStore(root)
        idx = rng.integers(0, n, args.reads)
        keys = [f'{i // 10000:05d}/{i:09d}.jpg' for i in idx]
        times = []
        for k in keys:
            t0 = time.perf_counter()
            m = store[k]
            times.append(time.perf_counter() - t0)
        assert np.array_equal(m, small)
        print(f'superpixel store, {n} entries: median {1000 * np.median(times):.3f} ms per random read '
              f'(p99 {1000 * np.percentile(times, 99):.3f} ms; 8x8 maps: lookup + pread + inflate)')
        # full-size maps: the inflate + copy part of a real read
        root2 = osp.join(tmp, 'sp2')
        os.makedirs(root2)
        with open(osp.join(root2, 'meta.json'), 'w') as f:
            json.dump(dict(format='segments-v1', params={}), f)
        maps = {}
        for i in range(2000):
            low = rng.integers(0, 150, (224 // 16 + 1, 298 // 16 + 1))
            maps[f'img{i}.jpg'] = np.kron(low, np.ones((16, 16), np.int64))[:224, :298]
        store_lib.write_segment(root2, 'seg0', maps)
        store_lib.build_table(root2)
        store2 = store_lib.SuperpixelStore(root2)
        keys = [f'img{i}.jpg' for i in rng.integers(0, 2000, 5000)]
        times = []
        for k in keys:
            t0 = time.perf_counter()
            store2[k]
            times.append(time.perf_counter() - t0)
        print(f'superpixel store, 224x298 maps (~150 segments): median {1000 * np.median(times):.3f} ms per read')


def superpixel_throughput(args):
    import importlib.util

    spec = importlib.util.spec_from_file_location('sp', osp.join(ROOT, 'data_prep/segclip_superpixels.py'))
    sp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sp)
    rng = np.random.default_rng(0)
    images = [Image.fromarray(synthetic_photo(rng, *args.size)) for _ in range(args.images)]
    sp.superpixels(images[0])
    t = time.time()
    counts = [int(sp.superpixels(img).max()) + 1 for img in images]
    dt = time.time() - t
    print(f'Felzenszwalb superpixels: {len(images) / dt:.1f} images/s per core '
          f'({1000 * dt / len(images):.1f} ms/image, {args.size[0]}x{args.size[1]} input pre-resized to '
          f'short side 224; {np.mean(counts):.0f} segments on average)')


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('what', choices=['pixelclip-loader', 'segclip-loader', 'index-startup', 'superpixel-store',
                                         'superpixels'])
    parser.add_argument('--images', type=int, default=None)
    parser.add_argument('--masks', type=int, default=100)
    parser.add_argument('--size', type=int, nargs=2, default=None, help='H W')
    parser.add_argument('--step-time', type=float, default=None,
                        help='seconds per training step on one GPU (default: 1.0 PixelCLIP, 0.5 SegCLIP)')
    parser.add_argument('--rows', type=int, default=3_500_000)
    parser.add_argument('--legacy-rows', type=int, default=20000)
    parser.add_argument('--entries', type=int, default=3_500_000)
    parser.add_argument('--reads', type=int, default=20000)
    args = parser.parse_args()
    if args.what == 'pixelclip-loader':
        args.size = args.size or (750, 1000)
        args.images = args.images or 20
        args.step_time = args.step_time or 1.0
        pixelclip_loader(args)
    elif args.what == 'segclip-loader':
        args.images = args.images or 200
        args.step_time = args.step_time or 0.5
        segclip_loader(args)
    elif args.what == 'index-startup':
        index_startup(args)
    elif args.what == 'superpixel-store':
        superpixel_store(args)
    else:
        args.images = args.images or 40
        args.size = args.size or (375, 500)
        superpixel_throughput(args)


if __name__ == '__main__':
    main()
