"""One row per bad input, each with its expected outcome (README "Reliability"):

* ``error``: a clear exception naming the file or value (``match`` is searched in the message);
* ``skip``:  a counted and logged skip (``match`` is searched in the log, e.g. the file and the tally);
* ``ok``:    handled correctly as it is (the row asserts what "correct" means, e.g. converted to 3 channels).

Training datasets run their real pipelines (the quickstart toy configs) on a copy of the toy data.
"""
import logging
import os
import os.path as osp
import pickle
import re
import shutil
import sys
from collections import namedtuple
from contextlib import contextmanager

import numpy as np
import pytest
import torch
from PIL import Image

from tests.utils import ROOT, run_tool

sys.path.insert(0, osp.join(ROOT, 'tools'))

Row = namedtuple('Row', 'name fn expect match')


# --------------------------------------------------------------------------- fixtures and helpers
@pytest.fixture(autouse=True, scope='module')
def mmseg_scope():
    import mmseg_ovs  # noqa: F401  (registration)
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')


@pytest.fixture(scope='module')
def toy(toy_data_root, tmp_path_factory):
    """The toy data with superpixels (read-only for the rows: each row copies what it breaks)."""
    root = str(tmp_path_factory.mktemp('bad_inputs_toy'))
    shutil.copytree(toy_data_root, root, dirs_exist_ok=True)
    sp = osp.join(root, 'train', 'superpixels')
    if not osp.isdir(sp):
        run_tool([sys.executable, 'data_prep/segclip_superpixels.py', osp.join(root, 'train'), sp,
                  '--workers', '1', '--short-side', '0', '--min-size', '18'])
    return root


@pytest.fixture(scope='module')
def inferencer(tmp_path_factory):
    """OVSInferencer on the SegCLIP toy config with a random tiny model saved as a checkpoint."""
    import mmseg_ovs  # noqa: F401
    from mmengine.config import Config
    from mmseg.registry import MODELS

    from mmseg_ovs.apis import OVSInferencer
    cfg = Config.fromfile(osp.join(ROOT, 'configs/quickstart/segclip_toy.py'))
    cfg.model.backbone.pretrained = cfg.model.text_encoder.pretrained = None
    path = str(tmp_path_factory.mktemp('inf') / 'model.pth')
    torch.save({'state_dict': MODELS.build(cfg.model).state_dict()}, path)
    return OVSInferencer(osp.join(ROOT, 'configs/quickstart/segclip_toy.py'), path, device='cpu')


@contextmanager
def captured_log():
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    records = []

    class _Collect(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    handler = _Collect()
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


def _cfg(name):
    from mmengine.config import Config
    return Config.fromfile(osp.join(ROOT, 'configs/quickstart', name))


def _truncate(path, keep=0.4):
    data = open(path, 'rb').read()
    with open(path, 'wb') as f:
        f.write(data[:int(len(data) * keep)])


def _iterate(dataset) -> str:
    """Prepare every sample (broken ones are refetched); returns the log."""
    with captured_log() as records:
        for i in range(len(dataset)):
            assert dataset[i] is not None
    return '\n'.join(records)


def _copy_train(toy, tmp):
    dst = osp.join(str(tmp), 'train')
    shutil.copytree(osp.join(toy, 'train'), dst)
    return dst


def _coco_caption(train, **kw):
    from mmseg_ovs.datasets import COCOCaptionDataset
    return COCOCaptionDataset(data_root=train, ann_file='dataset_coco.json', split='train',
                              superpixel_root=osp.join(train, 'superpixels'),
                              pipeline=_cfg('segclip_toy.py').train_pipeline, **kw)


def _sa1b(train, **kw):
    from mmseg_ovs.datasets import SA1BDataset
    return SA1BDataset(data_root=train, img_suffix='.png', data_prefix=dict(img_path='images', mask_path='sa1b'),
                       pipeline=_cfg('pixelclip_toy.py').train_pipeline, **kw)


def _first_image(train):
    return osp.join(train, 'images', sorted(os.listdir(osp.join(train, 'images')))[0])


def _mask_json(train):
    return osp.join(train, 'sa1b', sorted(os.listdir(osp.join(train, 'sa1b')))[0])


# --------------------------------------------------------------------------- training data
def truncated_png_coco_caption(toy, tmp):
    train = _copy_train(toy, tmp)
    bad = _first_image(train)
    _truncate(bad)
    log = _iterate(_coco_caption(train))
    assert osp.basename(bad) in log
    return log


def truncated_jpeg_cc3m(toy, tmp):
    from mmseg_ovs.datasets import CC3MCaptionDataset
    train = _copy_train(toy, tmp)
    shard = osp.join(str(tmp), 'cc3m', '00000')
    os.makedirs(shard)
    for i, name in enumerate(sorted(os.listdir(osp.join(train, 'images')))[:6]):
        Image.open(osp.join(train, 'images', name)).convert('RGB').save(osp.join(shard, f'{i:09d}.jpg'), quality=90)
        open(osp.join(shard, f'{i:09d}.txt'), 'w').write('a red circle on a striped background')
    run_tool([sys.executable, 'data_prep/segclip_superpixels.py', osp.join(str(tmp), 'cc3m'),
              osp.join(str(tmp), 'cc3m_sp'), '--workers', '1', '--short-side', '0', '--min-size', '18'])
    _truncate(osp.join(shard, '000000003.jpg'))
    ds = CC3MCaptionDataset(data_root=osp.join(str(tmp), 'cc3m'), superpixel_root=osp.join(str(tmp), 'cc3m_sp'),
                            pipeline=_cfg('segclip_toy.py').train_pipeline)
    return _iterate(ds)


def truncated_png_sa1b(toy, tmp):
    train = _copy_train(toy, tmp)
    _truncate(_first_image(train))
    return _iterate(_sa1b(train))


def too_many_broken_samples(toy, tmp):
    train = _copy_train(toy, tmp)
    for name in sorted(os.listdir(osp.join(train, 'images')))[:6]:
        _truncate(osp.join(train, 'images', name))
    _iterate(_sa1b(train, max_broken_fraction=0.25, broken_check_after=8))


def corrupt_sa1b_json(toy, tmp):
    train = _copy_train(toy, tmp)
    bad = _mask_json(train)
    _truncate(bad, 0.5)
    log = _iterate(_sa1b(train))
    assert 'corrupt mask JSON' in log
    return log


def _load_masks(json_path, img_shape):
    from mmseg_ovs.datasets.transforms import LoadUnlabeledMasks
    return LoadUnlabeledMasks().transform(dict(mask_path=json_path, img_shape=img_shape))


def _write_rle(tmp, counts, size=(8, 8)):
    import json
    path = osp.join(str(tmp), 'masks.json')
    json.dump(dict(image=dict(height=size[0], width=size[1]),
                   annotations=[dict(segmentation=dict(size=list(size), counts=counts))]), open(path, 'w'))
    return path


def rle_runs_do_not_cover_the_image(toy, tmp):
    _load_masks(_write_rle(tmp, [10, 20, 5]), (8, 8))  # 35 of 64 pixels


def rle_size_disagrees_with_image(toy, tmp):
    _load_masks(_write_rle(tmp, [32, 32]), (8, 9))


def garbage_rle_counts(toy, tmp):
    _load_masks(_write_rle(tmp, 'not an RLE \x01\x02'), (8, 8))


def uncompressed_list_counts_rle(toy, tmp):
    out = _load_masks(_write_rle(tmp, [8, 16, 40]), (8, 8))  # valid COCO list counts
    assert out['num_unlabeled_masks'] == 1
    return 'accepted'


def every_sample_has_zero_masks(toy, tmp):
    import json
    train = _copy_train(toy, tmp)
    for name in os.listdir(osp.join(train, 'sa1b')):
        path = osp.join(train, 'sa1b', name)
        rec = json.load(open(path))
        rec['annotations'] = []
        json.dump(rec, open(path, 'w'))
    _iterate(_sa1b(train))


def missing_superpixel_map(toy, tmp):
    train = _copy_train(toy, tmp)
    Image.open(_first_image(train)).save(osp.join(train, 'images', 'added_later.png'))
    import json
    ann = json.load(open(osp.join(train, 'dataset_coco.json')))
    ann['images'].append(dict(ann['images'][0], filename='added_later.png', imgid=999))
    json.dump(ann, open(osp.join(train, 'dataset_coco.json'), 'w'))
    return _iterate(_coco_caption(train))


def transposed_superpixel_map(toy, tmp):
    from mmseg_ovs.datasets.transforms import RandomResizedCropWithSuperpixels
    t = RandomResizedCropWithSuperpixels(size=32, patch_size=8)
    t.transform(dict(img=np.zeros((48, 64, 3), np.uint8), superpixels=np.zeros((64, 48), np.int32),
                     img_path='scene_48x64.png', superpixel_key='scene_48x64.png'))


def _load_image(path):
    from mmcv.transforms import LoadImageFromFile
    return LoadImageFromFile().transform(dict(img_path=path))['img']


def grayscale_png(toy, tmp):
    path = osp.join(str(tmp), 'gray.png')
    Image.fromarray(np.full((10, 12), 77, np.uint8)).save(path)
    img = _load_image(path)
    assert img.shape == (10, 12, 3) and (img == 77).all()
    return 'loaded as 3 channels'


def rgba_png(toy, tmp):
    path = osp.join(str(tmp), 'rgba.png')
    arr = np.zeros((10, 12, 4), np.uint8)
    arr[..., 0], arr[..., 3] = 200, 10  # red, almost transparent
    Image.fromarray(arr, 'RGBA').save(path)
    img = _load_image(path)
    assert img.shape == (10, 12, 3) and (img[..., 2] == 200).all()  # BGR, alpha dropped
    return 'loaded as 3 channels'


def sixteen_bit_png(toy, tmp):
    path = osp.join(str(tmp), 'depth16.png')
    arr = np.full((10, 12), 51400, np.uint16)
    Image.fromarray(arr).save(path)
    img = _load_image(path)
    assert img.dtype == np.uint8 and img.shape == (10, 12, 3) and (img == 51400 >> 8).all()
    return 'scaled to 8 bits'


# --------------------------------------------------------------------------- inference
def rgba_array_at_inference(inferencer, tmp):
    inferencer(np.zeros((16, 16, 4), np.uint8))


def sixteen_bit_array_at_inference(inferencer, tmp):
    inferencer(np.zeros((16, 16, 3), np.uint16))


def zero_byte_image_at_inference(inferencer, tmp):
    path = osp.join(str(tmp), 'empty.png')
    open(path, 'wb').close()
    inferencer(path)


def one_pixel_image_at_inference(inferencer, tmp):
    pred = inferencer(np.full((1, 1, 3), 128, np.uint8))['predictions']
    assert np.asarray(pred).shape == (1, 1)
    return 'predicted 1x1'


def very_large_image_at_inference(inferencer, tmp):
    path = osp.join(str(tmp), 'large.png')
    Image.new('RGB', (2048, 1536)).save(path)
    old = inferencer.max_logit_bytes
    inferencer.max_logit_bytes = 64 * 2**20  # 64 MiB budget: 6 classes x 2048 x 1536 x 4 B = 72 MiB
    try:
        inferencer(path)
    finally:
        inferencer.max_logit_bytes = old


def unicode_and_spaces_in_paths(inferencer, tmp):
    folder = osp.join(str(tmp), 'données d\'été ü')
    os.makedirs(folder)
    path = osp.join(folder, 'a picture ö.png')
    Image.new('RGB', (20, 16), (200, 40, 40)).save(path)
    pred = inferencer(path)['predictions']
    assert np.asarray(pred).shape == (16, 20)
    return 'read'


def empty_vocabulary(inferencer, tmp):
    inferencer(np.zeros((8, 8, 3), np.uint8), vocabulary=[])


def duplicate_vocabulary(inferencer, tmp):
    inferencer(np.zeros((8, 8, 3), np.uint8), vocabulary=['cat', 'dog', 'cat'])


def one_class_vocabulary(inferencer, tmp):
    try:
        pred = inferencer(np.zeros((8, 8, 3), np.uint8), vocabulary=['circle'])['predictions']
    finally:
        inferencer.set_vocabulary(_cfg('segclip_toy.py').toy_classes)
    assert np.asarray(pred).shape == (8, 8) and (np.asarray(pred) == 0).all()
    return 'every pixel is class 0'


def caption_longer_than_context(toy, tmp):
    from mmseg_ovs.datasets.transforms import TokenizeCaption
    out = TokenizeCaption(context_length=32).transform(dict(caption=' '.join(['red circle'] * 100), img_path='x'))
    tokens = np.asarray(out['caption_tokens'])
    assert tokens.shape == (32,) and tokens[-1] == 49407 and tokens[0] == 49406  # SOT ... EOT kept
    return 'truncated, EOT kept'


# --------------------------------------------------------------------------- weights and checkpoints
def _clip_into_tiny(path):
    from mmengine.config import Config

    from mmseg_ovs.models.clip.builder import build_open_clip, load_clip_weights_into
    cfg = Config.fromfile(osp.join(ROOT, 'configs/_base_/clip/tiny_vit.py')).tiny_clip_cfg.to_dict()
    load_clip_weights_into(build_open_clip(None, model_cfg=cfg), path)


def missing_clip_weights(toy, tmp):
    _clip_into_tiny(osp.join(str(tmp), 'no_such_clip.pt'))


def truncated_clip_weights(toy, tmp):
    from mmengine.config import Config

    from mmseg_ovs.models.clip.builder import build_open_clip
    cfg = Config.fromfile(osp.join(ROOT, 'configs/_base_/clip/tiny_vit.py')).tiny_clip_cfg.to_dict()
    path = osp.join(str(tmp), 'tiny_clip_cut.pt')
    torch.save(build_open_clip(None, model_cfg=cfg).state_dict(), path)
    _truncate(path, 0.5)
    _clip_into_tiny(path)


def random_bytes_clip_weights(toy, tmp):
    path = osp.join(str(tmp), 'random_clip.pt')
    open(path, 'wb').write(os.urandom(50000))
    _clip_into_tiny(path)


def _small_checkpoint(tmp):
    path = osp.join(str(tmp), 'iter_4.pth')
    torch.save({'meta': {'iter': 4}, 'state_dict': {'w': torch.randn(64, 64)}}, path)
    return path


def truncated_checkpoint(toy, tmp):
    from mmseg_ovs.utils.checkpoint import safe_torch_load
    path = _small_checkpoint(tmp)
    _truncate(path, 0.5)
    safe_torch_load(path)


def truncated_checkpoint_resume(toy, tmp):
    from train import resolve_resume
    path = _small_checkpoint(tmp)
    _truncate(path, 0.5)
    resolve_resume(path, str(tmp), False)


def random_bytes_checkpoint(toy, tmp):
    from mmseg_ovs.utils.checkpoint import safe_torch_load
    path = osp.join(str(tmp), 'random.pth')
    open(path, 'wb').write(os.urandom(20000))
    safe_torch_load(path)


class _Plant:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, 'w'))


def foreign_pickle_global_checkpoint(toy, tmp):
    from mmseg_ovs.utils.checkpoint import safe_torch_load
    marker = osp.join(str(tmp), 'EXECUTED')
    path = osp.join(str(tmp), 'foreign.pth')
    torch.save({'state_dict': {}, 'extra': _Plant(marker)}, path, pickle_module=pickle)
    try:
        safe_torch_load(path)
    finally:
        assert not osp.exists(marker), 'the pickled call was executed'


def nan_loss(toy, tmp):
    from mmengine.optim import OptimWrapper

    from mmseg_ovs.engine.non_finite_loss import _skip_class
    w = torch.nn.Parameter(torch.ones(3))
    wrapper = _skip_class(OptimWrapper)(optimizer=torch.optim.SGD([w], lr=0.1))
    with captured_log() as records:
        wrapper.update_params((w * float('nan')).sum())
        wrapper.update_params((w * 2).sum())
    assert wrapper.skipped_steps == 1 and torch.allclose(w.detach(), torch.full((3,), 0.8))  # 2nd step only
    return '\n'.join(records)


def _toy_model_and_dataset(toy, **model_overrides):
    import mmseg_ovs  # noqa: F401
    from mmseg.registry import DATASETS, MODELS
    cfg = _cfg('segclip_toy.py')
    cfg.model.backbone.pretrained = cfg.model.text_encoder.pretrained = None
    cfg.model.update(model_overrides)
    ds_cfg = cfg.test_dataloader.dataset
    ds_cfg.data_root = toy
    return MODELS.build(cfg.model), DATASETS.build(ds_cfg)


def wrong_class_count_at_evaluation(toy, tmp):
    from mmseg_ovs.engine.evaluation_guards import check_class_count
    model, dataset = _toy_model_and_dataset(toy, class_names='voc20')
    check_class_count(model, dataset)


def checkpoint_leaving_parameters_uninitialised(toy, tmp):
    from mmseg_ovs.engine.evaluation_guards import EvaluationGuardError, missing_checkpoint_keys
    model, _ = _toy_model_and_dataset(toy)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith('neck.')}  # e.g. a PixelCLIP ckpt
    missing = missing_checkpoint_keys(model, state)
    if missing:
        raise EvaluationGuardError(f'does not initialise {len(missing)}: {missing[:3]}')


def corrupt_caption_annotation(toy, tmp):
    train = _copy_train(toy, tmp)
    _truncate(osp.join(train, 'dataset_coco.json'), 0.5)
    _coco_caption(train)


# --------------------------------------------------------------------------- the table
ROWS = [
    Row('truncated PNG, COCOCaptionDataset (SegCLIP)', truncated_png_coco_caption, 'skip',
        r'skipped broken sample .*train_\d+\.png.*\(1 broken of \d+ prepared'),
    Row('truncated JPEG, CC3MCaptionDataset (SegCLIP)', truncated_jpeg_cc3m, 'skip',
        r'skipped broken sample .*000000003\.jpg.*\(1 broken of \d+ prepared'),
    Row('truncated PNG, SA1BDataset (PixelCLIP)', truncated_png_sa1b, 'skip',
        r'skipped broken sample .*train_000000\.png.*\(1 broken of \d+ prepared'),
    Row('more broken samples than max_broken_fraction', too_many_broken_samples, 'error',
        r'samples are broken \(> max_broken_fraction=0.25\)'),
    Row('corrupt SA-1B JSON', corrupt_sa1b_json, 'skip', r'corrupt mask JSON .*train_000000\.json'),
    Row('RLE runs do not cover h*w', rle_runs_do_not_cover_the_image, 'error',
        r'masks\.json: mask 0: RLE runs cover 35 pixels but the mask is 8x8 = 64'),
    Row('RLE size disagrees with the image', rle_size_disagrees_with_image, 'error',
        r'masks\.json: mask 0 is \(8, 8\) but the image is \(8, 9\)'),
    Row('garbage RLE counts', garbage_rle_counts, 'error', r'masks\.json: mask 0: corrupt RLE counts'),
    Row('valid uncompressed (list counts) RLE', uncompressed_list_counts_rle, 'ok', 'accepted'),
    Row('every sample has zero masks', every_sample_has_zero_masks, 'error',
        r'none of the \d+ samples prepared so far has a mask pixel .*loss of exactly 0'),
    Row('missing superpixel map (image added after the superpixel run)', missing_superpixel_map, 'skip',
        r'added_later\.png.*\(1 broken of \d+ prepared'),
    Row('transposed superpixel map', transposed_superpixel_map, 'error',
        r'superpixel map \(64, 48\) does not fit image \(48, 64\).*scene_48x64\.png'),
    Row('grayscale PNG', grayscale_png, 'ok', 'loaded as 3 channels'),
    Row('RGBA PNG', rgba_png, 'ok', 'loaded as 3 channels'),
    Row('16-bit PNG', sixteen_bit_png, 'ok', 'scaled to 8 bits'),
    Row('RGBA array at inference', rgba_array_at_inference, 'error',
        r'input 0 \(array of shape \(16, 16, 4\), uint8\): expected an \(H, W\) or \(H, W, 3\)'),
    Row('16-bit array at inference', sixteen_bit_array_at_inference, 'error', r'uint16.*expected uint8'),
    Row('0-byte image at inference', zero_byte_image_at_inference, 'error', r"image '.*empty\.png' is empty"),
    Row('1x1 image at inference', one_pixel_image_at_inference, 'ok', 'predicted 1x1'),
    Row('very large image at inference (bounded memory: refused)', very_large_image_at_inference, 'error',
        r"'.*large\.png' is 1536x2048: its 6-class float32 logits would need"),
    Row('unicode and spaces in paths', unicode_and_spaces_in_paths, 'ok', 'read'),
    Row('empty vocabulary', empty_vocabulary, 'error', r'empty vocabulary'),
    Row('duplicate vocabulary', duplicate_vocabulary, 'error', r"(?i)duplicate.*'cat'"),
    Row('one-class vocabulary', one_class_vocabulary, 'ok', 'every pixel is class 0'),
    Row('caption longer than the context', caption_longer_than_context, 'ok', 'truncated, EOT kept'),
    Row('missing CLIP weight file', missing_clip_weights, 'error', r"CLIP weights not found: '.*no_such_clip\.pt'"),
    Row('truncated CLIP weight file', truncated_clip_weights, 'error', r"tiny_clip_cut\.pt"),
    Row('random-bytes CLIP weight file', random_bytes_clip_weights, 'error', r"random_clip\.pt"),
    Row('truncated checkpoint (load)', truncated_checkpoint, 'error', r"iter_4\.pth"),
    Row('truncated checkpoint (--resume PATH)', truncated_checkpoint_resume, 'error',
        r"iter_4\.pth.*truncated"),
    Row('random-bytes checkpoint', random_bytes_checkpoint, 'error', r"random\.pth"),
    Row('checkpoint with a foreign pickle global (refused, never executed)', foreign_pickle_global_checkpoint,
        'error', r"foreign\.pth"),
    Row('NaN in the loss', nan_loss, 'skip', r'non-finite loss: optimizer step skipped \(1 in a row.*1 in total'),
    Row('model class count differs from the dataset at evaluation', wrong_class_count_at_evaluation, 'error',
        r'the model predicts 20 classes .* has 6'),
    Row('checkpoint leaving model parameters uninitialised', checkpoint_leaving_parameters_uninitialised,
        'error', r'does not initialise \d+: \[.neck\.'),
    Row('corrupt caption annotation file', corrupt_caption_annotation, 'error',
        r'dataset_coco\.json is not a Karpathy dataset_coco\.json'),
]
INFERENCE_ROWS = {fn.__name__ for fn in (
    rgba_array_at_inference, sixteen_bit_array_at_inference, zero_byte_image_at_inference,
    one_pixel_image_at_inference, very_large_image_at_inference, unicode_and_spaces_in_paths,
    empty_vocabulary, duplicate_vocabulary, one_class_vocabulary)}


def test_table_has_at_least_25_rows():
    assert len(ROWS) >= 25 and len({r.name for r in ROWS}) == len(ROWS)


@pytest.mark.parametrize('row', ROWS, ids=[re.sub(r'\W+', '_', r.name).strip('_') for r in ROWS])
def test_bad_input(row, request, tmp_path):
    first = request.getfixturevalue('inferencer' if row.fn.__name__ in INFERENCE_ROWS else 'toy')
    if row.expect == 'error':
        with pytest.raises((Exception, SystemExit)) as info:
            row.fn(first, tmp_path)
        assert re.search(row.match, str(info.value), re.S), f'{type(info.value).__name__}: {info.value}'
    else:
        out = row.fn(first, tmp_path)
        assert re.search(row.match, out, re.S), out


def test_tools_test_refuses_partial_checkpoint_and_wrong_class_count(toy, tmp_path, monkeypatch):
    """tools/test.py end to end (in process): both guards stop it with an error naming the cause."""
    import mmseg_ovs  # noqa: F401
    from mmengine.config import Config
    from mmseg.registry import MODELS

    import importlib.util
    spec = importlib.util.spec_from_file_location('tools_test', osp.join(ROOT, 'tools', 'test.py'))
    tools_test = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tools_test)
    cfg = Config.fromfile(osp.join(ROOT, 'configs/quickstart/segclip_toy.py'))
    cfg.model.backbone.pretrained = cfg.model.text_encoder.pretrained = None
    state = MODELS.build(cfg.model).state_dict()
    partial = str(tmp_path / 'no_neck.pth')
    torch.save({'state_dict': {k: v for k, v in state.items() if not k.startswith('neck.')}}, partial)
    base = ['test.py', 'configs/quickstart/segclip_toy.py', partial, '--work-dir', str(tmp_path / 'w'),
            '--cfg-options', f'test_dataloader.dataset.data_root={toy}', 'model.backbone.pretrained=None',
            'model.text_encoder.pretrained=None']
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, 'argv', base)
    with pytest.raises(SystemExit, match=r"no_neck\.pth' does not initialise \d+ model parameter.*neck\."):
        tools_test.main()
    monkeypatch.setattr(sys, 'argv', base + ['model.class_names=voc20'])
    with pytest.raises(SystemExit, match=r'the model predicts 20 classes .* has 6'):
        tools_test.main()
