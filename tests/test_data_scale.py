"""Data at real scale: sample indexes, the superpixel store, the lazy mask loader, data validation."""
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from tests.utils import ROOT, run_tool


def _scope():
    import mmseg_ovs  # noqa: F401
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')


# --------------------------------------------------------------------------- sample index
def _cc3m_tree(root, n=6, missing_caption=(2,)):
    rng = np.random.default_rng(0)
    for i in range(n):
        shard = root / f'{i // 3:05d}'
        shard.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(shard / f'{i:09d}.jpg')
        if i not in missing_caption:
            (shard / f'{i:09d}.txt').write_text(f'caption {i}')


def test_index_build_resume_and_lazy_dataset(tmp_path):
    from mmseg.registry import DATASETS
    _scope()
    data = tmp_path / 'cc3m'
    _cc3m_tree(data)
    out = str(tmp_path / 'cc3m_index.npz')
    proc = run_tool([sys.executable, 'data_prep/build_index.py', 'cc3m', str(data), out, '--sizes', '--workers', '1'])
    assert 'wrote 5 rows' in proc.stdout and 'skipped 1' in proc.stdout
    assert '000000002.jpg' in open(out + '.skipped.txt').read()
    # a re-run reuses the finished folders (kill -9 leaves only complete, atomically written parts)
    os.remove(out)
    proc = run_tool([sys.executable, 'data_prep/build_index.py', 'cc3m', str(data), out, '--workers', '1'])
    assert '2 already indexed' in proc.stdout and 'wrote 5 rows' in proc.stdout
    ds = DATASETS.build(dict(type='CC3MCaptionDataset', data_root=str(data), ann_file=out,
                             superpixel_root='sp', pipeline=[]))
    assert len(ds) == 5 and ds.data_list == []  # nothing materialised at start-up
    info = ds.get_data_info(2)
    assert info['caption'] == 'caption 3' and info['superpixel_key'] == '00001/000000003.jpg'
    assert info['img_path'] == osp.join(str(data), '00001', '000000003.jpg')
    # spawn-safe: pickling never copies the memory maps
    import pickle
    assert len(pickle.dumps(ds)) < 4000 and pickle.loads(pickle.dumps(ds)).get_data_info(4)['caption'] == 'caption 5'


def test_index_malformed_rows_are_counted_and_skipped(tmp_path):
    from mmseg.registry import DATASETS
    from mmseg_ovs.datasets.sample_index import SampleIndex, write_index
    _scope()
    path = str(tmp_path / 'idx.npz')
    write_index(path, dict(img=['a.jpg', '', 'c.jpg'], caption=['x', 'y', '']))
    index = SampleIndex(path)
    assert index.bad_rows == 2 and list(index.valid_rows) == [0]
    ds = DATASETS.build(dict(type='CC3MCaptionDataset', data_root=str(tmp_path), ann_file=path, pipeline=[]))
    assert len(ds) == 1 and ds.get_data_info(0)['caption'] == 'x'
    (tmp_path / 'bad.npz').write_bytes(b'PK\x03\x04 garbage')
    with pytest.raises(ValueError, match='bad.npz'):
        SampleIndex(str(tmp_path / 'bad.npz'))


def test_broken_sample_mid_epoch_is_counted_skip_then_threshold(tmp_path):
    from mmseg.registry import DATASETS
    from mmseg_ovs.datasets.indexed_dataset import BrokenDataError
    from mmseg_ovs.datasets.sample_index import write_index
    _scope()
    rng = np.random.default_rng(0)
    names = []
    for i in range(10):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(tmp_path / f'{i}.png')
        names.append(f'{i}.png')
    (tmp_path / '3.png').write_bytes(b'truncated')  # broken in the middle
    path = str(tmp_path / 'idx.npz')
    write_index(path, dict(img=names, caption=[f'c{i}' for i in range(10)]))
    cfg = dict(type='CC3MCaptionDataset', data_root=str(tmp_path), ann_file=path,
               pipeline=[dict(type='LoadImageFromFile')], max_broken_fraction=0.2, broken_check_after=5)
    ds = DATASETS.build(cfg)
    np.random.seed(0)
    out = [ds[i]['img_path'] for i in range(10)]  # no crash; the broken one is replaced
    assert ds.num_broken == 1 and all(not p.endswith('/3.png') for p in out)
    for i in range(4, 7):
        (tmp_path / f'{i}.png').write_bytes(b'')
    ds = DATASETS.build(cfg)
    with pytest.raises(BrokenDataError, match='max_broken_fraction'):
        for i in range(10):
            ds[i]
    strict = DATASETS.build(dict(cfg, max_broken_fraction=0))
    with pytest.raises(Exception, match='3.png'):
        strict[3]


# --------------------------------------------------------------------------- superpixel store
def _images(folder, n, rng, size=(30, 40)):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        arr = rng.integers(0, 255, size + (3, ), dtype=np.uint8)
        arr[:, :size[1] // 2] //= 3
        Image.fromarray(arr).save(folder / f'img{i:03d}.png')


def _sp_args(img_root, out, *extra):
    return [sys.executable, 'data_prep/segclip_superpixels.py', str(img_root), str(out), '--short-side', '0',
            '--scale', '20', '--min-size', '10', *extra]


def _procs_with(text):
    """pids whose command line contains ``text`` (Linux /proc)."""
    pids = []
    for pid in os.listdir('/proc'):
        try:
            with open(f'/proc/{pid}/cmdline', 'rb') as f:
                if text.encode() in f.read():
                    pids.append(int(pid))
        except (OSError, ValueError):
            pass
    return pids


def test_superpixel_store_kill9_resume_and_new_images(tmp_path):
    from skimage.segmentation import felzenszwalb
    from mmseg_ovs.datasets.superpixel_store import SuperpixelStore
    rng = np.random.default_rng(0)
    img_root, out = tmp_path / 'imgs', tmp_path / 'sp'
    _images(img_root / 'a', 24, rng)
    # img010 is a FIFO until the kill: the writer blocks on it, so it is killed mid-run however fast it is
    blocker = img_root / 'a' / 'img010.png'
    blocker.unlink()
    os.mkfifo(blocker)
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.Popen(_sp_args(img_root, out, '--workers', '1', '--segment-size', '1'), cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    seg_dir = out / 'segments'
    deadline = time.time() + 120
    while time.time() < deadline and (not seg_dir.is_dir() or
                                      len([n for n in os.listdir(seg_dir) if n.endswith('.idx.npy')]) < 3):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # the main process only: its pool workers must not outlive it
    proc.wait()
    deadline = time.time() + 10
    while time.time() < deadline and _procs_with(str(out)):
        time.sleep(0.1)
    assert not _procs_with(str(out)), 'orphaned superpixel workers'
    done_before = len([n for n in os.listdir(seg_dir) if n.endswith('.idx.npy')])
    assert 3 <= done_before <= 10, 'the writer must be killed mid-run'
    blocker.unlink()
    _images(img_root / 'a', 24, np.random.default_rng(0))  # the same pixels as before (same seed)
    assert not (out / 'table.npz').exists()
    with pytest.raises(FileNotFoundError, match='interrupted'):
        SuperpixelStore(str(out))
    _images(img_root / 'b', 2, rng)  # images added after the first run
    res = run_tool(_sp_args(img_root, out, '--workers', '2'))
    assert f'26 images, {done_before} already in the store' in res.stdout
    assert 'wrote' in res.stdout and '(26 in the store)' in res.stdout
    assert not [n for n in os.listdir(seg_dir) if n.endswith('.tmp')]
    store = SuperpixelStore(str(out))
    for rel in ['a/img000.png', 'a/img023.png', 'b/img001.png']:
        ref = felzenszwalb(np.asarray(Image.open(img_root / rel).convert('RGB')), scale=20, sigma=0.9, min_size=10)
        assert np.array_equal(store[rel], ref)
    with pytest.raises(KeyError, match='missing.png'):
        store['a/missing.png']
    res = run_tool(_sp_args(img_root, out, '--workers', '1'))
    assert '26 already in the store, 0 to compute' in res.stdout


def test_superpixels_follow_exif_orientation_like_the_loader(tmp_path):
    from mmcv.transforms import LoadImageFromFile
    from mmseg_ovs.datasets.superpixel_store import SuperpixelStore
    img_root, out = tmp_path / 'imgs', tmp_path / 'sp'
    img_root.mkdir()
    arr = np.zeros((40, 64, 3), np.uint8)
    arr[:, :20] = 200
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
    Image.fromarray(arr).save(img_root / 'rot.jpg', exif=exif.tobytes(), quality=95)
    loaded = LoadImageFromFile()(dict(img_path=str(img_root / 'rot.jpg')))['img']
    assert loaded.shape[:2] == (64, 40)  # the loader (cv2) applies the orientation
    run_tool(_sp_args(img_root, out, '--workers', '1'))
    sp = SuperpixelStore(str(out))['rot.jpg']
    assert sp.shape == loaded.shape[:2]
    # the bright band (left in the file) is on top after the rotation, in the image and in the map
    assert loaded[:15, :, 0].mean() > 150 and loaded[-30:, :, 0].mean() < 50
    assert len(np.intersect1d(np.unique(sp[:15]), np.unique(sp[-30:]))) == 0


def test_training_images_official_resize_upright(tmp_path):
    from data_prep.training_images import main, official_size
    assert official_size(500, 375) == (298, 224) and official_size(375, 500) == (224, 298)
    assert official_size(200, 900) == (200, 900)
    src = tmp_path / 'src'
    src.mkdir()
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.full((300, 500, 3), 90, np.uint8)).save(src / 'a.jpg', exif=exif.tobytes())
    (src / 'bad.jpg').write_bytes(b'nope')
    stored, failures = main([str(src), str(tmp_path / 'out'), '--workers', '1'])
    assert stored == 1 and len(failures) == 1 and 'bad.jpg' in failures[0]
    with Image.open(tmp_path / 'out' / 'a.jpg') as im:
        assert im.size == (224, 373) and im.getexif().get(0x0112, 1) == 1  # upright, short side 224


def test_superpixel_map_shape_checked(tmp_path):
    from mmseg_ovs.datasets.transforms.random_resized_crop_with_superpixels import (
        RandomResizedCropWithSuperpixels, check_superpixel_shape)
    check_superpixel_shape((224, 298), (375, 500))  # short side 224 of the image: fine
    check_superpixel_shape((30, 40), (30, 40))
    t = RandomResizedCropWithSuperpixels(size=32, patch_size=8)
    res = dict(img=np.zeros((30, 40, 3), np.uint8), superpixels=np.zeros((40, 30), np.int64),
               img_path='x/photo.jpg', superpixel_key='photo.jpg')
    with pytest.raises(ValueError, match='photo.jpg'):
        t(res)  # transposed
    with pytest.raises(ValueError, match='does not fit'):
        t(dict(res, superpixels=np.zeros((30, 60), np.int64)))


# --------------------------------------------------------------------------- masks
def _rle(mask):
    from pycocotools import mask as mask_utils
    r = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return dict(size=r['size'], counts=r['counts'].decode('ascii'))


def _write_masks(path, masks):
    with open(path, 'w') as f:
        json.dump(dict(annotations=[dict(segmentation=_rle(m)) for m in masks]), f)


def test_rle_validation_and_uncompressed_counts(tmp_path):
    from mmseg_ovs.datasets.transforms import LoadUnlabeledMasks
    from mmseg_ovs.datasets.transforms.loading_unlabeled_masks import rle_string_counts
    from mmseg_ovs.utils.mask_bits import unpack_masks
    from pycocotools import mask as mask_utils
    rng = np.random.default_rng(0)
    m = rng.random((20, 30)) > 0.5
    enc = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
    flat = m.T.reshape(-1)  # column-major runs, first run = zeros
    change = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
    runs = np.diff(np.concatenate(([0], change, [flat.size])))
    runs = np.concatenate(([0], runs)) if flat[0] else runs
    assert np.array_equal(rle_string_counts(enc['counts']), runs)
    path = tmp_path / 'm.json'
    seg_list = dict(size=[20, 30], counts=[int(v) for v in runs])
    path.write_text(json.dumps(dict(annotations=[dict(segmentation=seg_list), dict(segmentation=_rle(m))])))
    res = LoadUnlabeledMasks()(dict(mask_path=str(path), img=np.zeros((20, 30, 3), np.uint8)))
    got = unpack_masks(res['unlabeled_masks'], 2)
    assert np.array_equal(got[..., 0], m) and np.array_equal(got[..., 1], m)
    for bad in ([int(v) for v in runs[:-1]], [int(v) for v in runs] + [5]):
        path.write_text(json.dumps(dict(annotations=[dict(segmentation=dict(size=[20, 30], counts=bad))])))
        with pytest.raises(ValueError, match=r'm\.json: mask 0: RLE runs cover'):
            LoadUnlabeledMasks()(dict(mask_path=str(path), img=np.zeros((20, 30, 3), np.uint8)))
    short = mask_utils.encode(np.asfortranarray(m[:, :29].astype(np.uint8)))['counts'].decode()
    path.write_text(json.dumps(dict(annotations=[dict(segmentation=dict(size=[20, 30], counts=short))])))
    with pytest.raises(ValueError, match='600'):
        LoadUnlabeledMasks(lazy=True)(dict(mask_path=str(path), img=np.zeros((20, 30, 3), np.uint8)))


def _sa1b_tree(root, shapes, n_masks, rng):
    (root / 'images').mkdir(parents=True)
    (root / 'annotations').mkdir()
    for i, (h, w) in enumerate(shapes):
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(root / 'images' / f'{i}.jpg')
        yy, xx = np.mgrid[:h, :w]
        masks = []
        for _ in range(n_masks):
            cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(0.1, 0.6) * min(h, w)
            masks.append((yy - cy) ** 2 + (xx - cx) ** 2 < r * r)
        _write_masks(root / 'annotations' / f'{i}.json', masks)


def test_lazy_mask_pipeline_identical_to_eager(tmp_path):
    """The configured PixelCLIP pipeline (lazy RLE masks) == the eager one, for the same random state,
    incl. flips and padding (an elongated image smaller than the crop after the max-size cap)."""
    import torch
    from mmengine.config import Config
    from mmseg.registry import DATASETS
    _scope()
    _sa1b_tree(tmp_path, [(75, 100), (100, 75), (40, 400), (64, 64)], 21, np.random.default_rng(0))
    cfg = Config.fromfile(osp.join(ROOT, 'configs/pixelclip/pixelclip_vitb16_sa1b.py')).train_dataloader.dataset
    cfg.update(data_root=str(tmp_path), ann_file='')  # scan the folders (no index)
    lazy = [t for t in cfg.pipeline if t['type'] == 'LoadUnlabeledMasks'][0]
    assert lazy.get('lazy') is True, 'the recipe uses the lazy loader'
    eager_cfg = cfg.copy()
    eager_cfg.pipeline = [dict(t, lazy=False) if t['type'] == 'LoadUnlabeledMasks' else t for t in cfg.pipeline]
    ds_lazy, ds_eager = DATASETS.build(cfg), DATASETS.build(eager_cfg)
    flips = set()
    for seed in range(6):
        for i in range(len(ds_lazy)):
            np.random.seed(seed), torch.manual_seed(seed)
            a = ds_lazy[i]
            np.random.seed(seed), torch.manual_seed(seed)  # the strong view's jitter draws from torch
            b = ds_eager[i]
            assert a['inputs'].equal(b['inputs'])
            pa, pb = a['data_samples'].unlabeled_masks_packed, b['data_samples'].unlabeled_masks_packed
            assert pa.shape == (3, 640, 640) and pa.equal(pb) and pa.is_contiguous()
            assert pa.any()
            flips.add(a['data_samples'].metainfo['flip'])
    assert flips == {True, False}


def test_zero_masks_everywhere_is_an_error(tmp_path):
    from mmengine.config import Config
    from mmseg.registry import DATASETS
    from mmseg_ovs.datasets.sample_index import write_index
    _scope()
    rng = np.random.default_rng(0)
    (tmp_path / 'images').mkdir()
    (tmp_path / 'annotations').mkdir()
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(tmp_path / 'images' / f'{i}.jpg')
        _write_masks(tmp_path / 'annotations' / f'{i}.json', [])
    cfg = Config.fromfile(osp.join(ROOT, 'configs/pixelclip/pixelclip_vitb16_sa1b.py')).train_dataloader.dataset
    cfg.update(data_root=str(tmp_path), ann_file='')  # scan the folders (no index)
    ds = DATASETS.build(cfg)
    with pytest.raises(ValueError, match='none of the 3 samples'):
        for i in range(3):
            ds[i]
    path = str(tmp_path / 'idx.npz')
    write_index(path, dict(img=[f'images/{i}.jpg' for i in range(3)], mask=[f'annotations/{i}.json' for i in range(3)]),
                dict(num_masks=[0, 0, 0]))
    with pytest.raises(ValueError, match='every image has 0 masks'):
        DATASETS.build(dict(cfg, ann_file=path))


def test_mask_bits_numpy_and_torch_agree():
    import torch
    from mmseg_ovs.utils.mask_bits import pack_masks, unpack_mask_bits, unpack_masks
    m = np.random.default_rng(0).random((7, 9, 19)) > 0.5
    packed = pack_masks(m)
    assert packed.shape == (7, 9, 3) and np.array_equal(packed, np.packbits(m, axis=2, bitorder='little'))
    assert np.array_equal(unpack_masks(packed, 19), m)
    t = unpack_mask_bits(torch.from_numpy(np.ascontiguousarray(packed.transpose(2, 0, 1))), 19)
    assert np.array_equal(t.numpy().transpose(1, 2, 0), m)


def test_segclip_recipe_reads_indexes(tmp_path):
    """configs/segclip_vitb16.py: CC3M + COCO through their sample indexes (ConcatDataset, lazy), seeded
    per sample (the recipe's sampler's keys reach the right samples)."""
    from mmengine.config import Config
    from mmseg.registry import DATA_SAMPLERS, DATASETS
    from mmseg_ovs.datasets.sample_index import write_index
    _scope()
    loader = Config.fromfile(osp.join(ROOT, 'configs/segclip_vitb16.py')).train_dataloader
    cfg = loader.dataset
    assert cfg.type == 'PerSampleSeedDataset' and loader.sampler.type == 'PerSampleSeedSampler'
    cc3m, coco = cfg.dataset.datasets
    assert cc3m.ann_file.endswith('.npz') and coco.ann_file.endswith('.npz')
    write_index(str(tmp_path / 'cc.npz'), dict(img=['00000/a.jpg', '00000/b.jpg'], caption=['x', 'y']))
    write_index(str(tmp_path / 'co.npz'), dict(img=['train2014/c.jpg'] * 3, caption=['p', 'q', 'r']))
    cc3m.update(data_root=str(tmp_path), ann_file='cc.npz')
    coco.update(data_root=str(tmp_path), ann_file='co.npz')
    ds = DATASETS.build(cfg)
    assert len(ds) == 5
    info = ds.get_data_info(4)
    assert info['caption'] == 'r' and info['img_path'] == osp.join(str(tmp_path), coco.img_dir, 'train2014/c.jpg')
    sampler = DATA_SAMPLERS.build(loader.sampler, default_args=dict(dataset=ds, seed=0))
    sampler.set_epoch(2)
    keys = list(sampler)
    assert sorted(k - 3 * 5 for k in keys) == [0, 1, 2, 3, 4]  # epoch 2: keys (2 + 1) * N + index


def test_build_index_sa1b_and_coco(tmp_path):
    from data_prep.build_index import main
    from mmseg_ovs.datasets.sample_index import SampleIndex
    rng = np.random.default_rng(0)
    _sa1b_tree(tmp_path / 'sa1b', [(20, 30), (30, 20)], 3, rng)
    (tmp_path / 'sa1b' / 'images' / 'sub').mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / 'sa1b' / 'images' / 'sub' / 'nomask.jpg')
    n, skipped = main(['sa1b', str(tmp_path / 'sa1b'), str(tmp_path / 'sa1b.npz'), '--count-masks', '--workers', '1'])
    idx = SampleIndex(str(tmp_path / 'sa1b.npz'))
    assert n == 2 and len(skipped) == 1 and 'sub/nomask.jpg' in skipped[0]
    assert idx.str('img', 1) == 'images/1.jpg' and idx.str('mask', 1) == 'annotations/1.json'
    assert list(np.asarray(idx._arrays['num_masks'])) == [3, 3]
    ann = dict(images=[dict(filepath='train2014', filename='a.jpg', split='train',
                            sentences=[dict(raw='one'), dict(raw=' two ')]),
                       dict(filepath='val2014', filename='b.jpg', split='restval', sentences=[dict(raw='x')])])
    (tmp_path / 'coco').mkdir()
    (tmp_path / 'coco' / 'k.json').write_text(json.dumps(ann))
    n, _ = main(['coco', str(tmp_path / 'coco'), str(tmp_path / 'coco.npz'), '--karpathy', 'k.json'])
    idx = SampleIndex(str(tmp_path / 'coco.npz'))
    assert n == 2 and [idx.str('caption', i) for i in range(2)] == ['one', 'two']
    assert idx.str('img', 0) == 'train2014/a.jpg'


def test_build_index_kill9_resume(tmp_path):
    """kill -9 while indexing: only whole folder parts exist, no index; the re-run resumes."""
    from mmseg_ovs.datasets.sample_index import SampleIndex
    data = tmp_path / 'cc3m'
    for s in range(300):
        shard = data / f'{s:05d}'
        shard.mkdir(parents=True)
        (shard / '000.jpg').write_bytes(b'x')  # never decoded without --sizes
        (shard / '000.txt').write_text(f'caption {s}')
    out = tmp_path / 'index.npz'
    proc = subprocess.Popen([sys.executable, 'data_prep/build_index.py', 'cc3m', str(data), str(out),
                             '--workers', '1'], cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parts = tmp_path / 'index.npz.parts'
    deadline = time.time() + 60
    while time.time() < deadline and not (parts.is_dir() and len(os.listdir(parts)) >= 5):
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = [n for n in os.listdir(parts) if n.endswith('.npz')]
    if out.exists():
        pytest.skip('the indexer finished before it could be killed')
    for n in done:  # every finished part is a complete, readable index
        assert len(SampleIndex(str(parts / n))) == 1
    res = run_tool([sys.executable, 'data_prep/build_index.py', 'cc3m', str(data), str(out), '--workers', '1'])
    assert f'{len(done)} already indexed' in res.stdout and 'wrote 300 rows' in res.stdout
    idx = SampleIndex(str(out))
    assert sorted(idx.str('caption', i) for i in range(300)) == sorted(f'caption {s}' for s in range(300))
