"""One vocabulary owner and one inference path for every open-vocabulary segmentor (tiny random
models): vocabulary forms through config / set_vocabulary / OVSInferencer / tools/demo.py, one
class, empty and duplicate entries, mixed-size batches equal to batch size 1, TTA with SegTTAModel."""
import os.path as osp
import runpy
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from tests.utils import ROOT

METHODS = ('segclip', 'pixelclip', 'clip_baseline')
CONFIGS = {m: osp.join(ROOT, f'configs/quickstart/{m}_toy.py') for m in METHODS}


def toy_cfg(method, **model):
    """The quickstart toy config of ``method`` with random weights (no CLIP file) and the
    ``model`` overrides; test images keep their aspect ratio (mixed sizes in a batch)."""
    from mmengine.config import Config
    cfg = Config.fromfile(CONFIGS[method])
    cfg.model.backbone.pretrained = None
    cfg.model.text_encoder.pretrained = None
    cfg.model.update(model)
    for t in cfg.test_dataloader.dataset.pipeline:
        if t['type'] == 'Resize':
            t.update(scale=(96, 48), keep_ratio=True)
    return cfg


def build(method, **model):
    import mmseg_ovs  # noqa: F401
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    torch.manual_seed(0)
    return MODELS.build(toy_cfg(method, **model).model).eval()


BG = {'segclip': dict(bg_thresh=0.5), 'clip_baseline': dict(bg_thresh=0.5)}


# ------------------------------------------------------------------------------ the one parser
def test_parse_vocabulary_forms_and_errors(tmp_path):
    from mmseg_ovs.datasets.class_names import load_class_names, parse_vocabulary, parse_vocabulary_text
    voc = parse_vocabulary('voc21')
    assert len(voc) == 21 and voc[0] == ['background'] and voc[1] == ['aeroplane']  # not 'v','o',...
    assert parse_vocabulary('context59_pixelclip') == load_class_names('context59', 'pixelclip')
    assert parse_vocabulary('voc21', variant='segclip')[11] == ['table']
    f = tmp_path / 'cls_mine.txt'
    f.write_text('cat, kitty\ndog\n')
    assert parse_vocabulary(str(f)) == [['cat', 'kitty'], ['dog']]
    assert parse_vocabulary(['cat', ['tv', 'monitor'], 'car|automobile']) == \
        [['cat'], ['tv', 'monitor'], ['car', 'automobile']]
    assert parse_vocabulary_text('background,tv|monitor,plant') == [['background'], ['tv', 'monitor'], ['plant']]
    assert parse_vocabulary_text('voc20') == parse_vocabulary('voc20')
    for bad, match in [([], 'empty vocabulary'), (['cat', ''], r"entry 1 \(''\)"),
                       (['cat', ['dog', ' ']], 'entry 1'), (['cat', 'dog', 'Cat'], "duplicate class name 'Cat'"),
                       (['tv|tv'], "duplicate class name 'tv'"), ('vocc21', "'vocc21' is neither"),
                       ('cat,dog', 'neither a benchmark key')]:
        with pytest.raises(ValueError, match=match):
            parse_vocabulary(bad)
    with pytest.raises(FileNotFoundError, match='missing.txt'):
        parse_vocabulary('/nope/missing.txt')
    with pytest.raises(TypeError, match='entry 0'):
        parse_vocabulary([3])


# ------------------------------------------------------------------------------ every segmentor
@pytest.mark.parametrize('method', METHODS)
def test_vocabulary_forms_in_config_and_set_vocabulary(method, tmp_path):
    model = build(method, class_names='voc20')  # a benchmark key in the config
    assert model.num_classes == 20 and model.class_names[:2] == ['aeroplane', 'bicycle']
    te = model.text_encoder
    # synonyms: the mean of the normalised synonym embeddings, the same in every segmentor
    model.set_vocabulary([['tv', 'monitor'], 'cat|kitty', 'dog'])
    assert model.class_names == ['tv', 'cat', 'dog']
    with torch.no_grad():
        emb = model.class_embeddings()
        single = {n: te.compute_class_embeddings([n])[0] for n in ('tv', 'monitor', 'cat', 'kitty', 'dog')}
    for row, names in zip(emb, (('tv', 'monitor'), ('cat', 'kitty'), ('dog',))):
        ref = F.normalize(torch.stack([single[n] for n in names]).mean(0), dim=0)
        torch.testing.assert_close(row, ref, atol=1e-6, rtol=1e-5)
    # a cls_*.txt path
    f = tmp_path / 'cls_x.txt'
    f.write_text('circle\nsquare, box\n')
    model.set_vocabulary(str(f))
    assert model.vocabulary == [['circle'], ['square', 'box']]
    # one class, no background: a label map, no crash (every pixel is that class)
    model.set_vocabulary(['cat'])
    pred = model.predict(torch.randn(1, 3, 64, 64))[0]
    assert pred.seg_logits.data.shape == (1, 64, 64) and (pred.pred_sem_seg.data == 0).all()
    # empty / duplicate: ValueError naming the entry, the previous vocabulary stays
    for bad, match in [([], 'empty'), (['cat', 'cat'], "duplicate class name 'cat'"),
                       (['cat', ' '], 'entry 1')]:
        with pytest.raises(ValueError, match=match):
            model.set_vocabulary(bad)
        with pytest.raises(ValueError, match=match):
            build(method, class_names=bad)
    assert model.class_names == ['cat']


@pytest.mark.parametrize('method', ('segclip', 'clip_baseline'))
def test_one_class_with_thresholded_background(method):
    model = build(method, class_names=['background', 'cat'], **BG[method])
    assert model.has_background and model.num_classes == 2
    assert model.class_embeddings().shape[0] == 1  # background is not prompted
    pred = model.predict(torch.randn(2, 3, 64, 64))
    assert all(p.seg_logits.data.shape == (2, 64, 64) and p.pred_sem_seg.data.max() <= 1 for p in pred)
    with pytest.raises(ValueError, match='background'):
        model.set_vocabulary(['background'])


def _mixed_batch(model, sizes, seed=0):
    """Images of different sizes through the model's OVSDataPreProcessor: padded batch vs one by one."""
    from mmseg.structures import SegDataSample
    g = torch.Generator().manual_seed(seed)
    imgs = [torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8) for h, w in sizes]

    def samples(ims):
        return [SegDataSample(metainfo=dict(ori_shape=(int(h * 1.5), w + 3), img_shape=(h, w)))
                for _, h, w in (x.shape for x in ims)]
    with torch.no_grad():
        batch = model.test_step(dict(inputs=list(imgs), data_samples=samples(imgs)))
        alone = [model.test_step(dict(inputs=[x], data_samples=samples([x])))[0] for x in imgs]
    return batch, alone


@pytest.mark.parametrize('method,test_cfg', [
    ('segclip', dict(mode='slide', crop_size=(32, 32), stride=(24, 24), slide_batch=4)),
    ('segclip', dict(mode='whole')),
    ('pixelclip', None),  # squash to clip_resolution
    ('clip_baseline', dict(mode='slide', crop_size=(32, 32), stride=(20, 20))),
    ('clip_baseline', dict(mode='squash', squash_size=(48, 48), feature_size=(16, 16))),
])
def test_mixed_size_batch_equals_batch_size_one(method, test_cfg):
    model = build(method, **({} if test_cfg is None else dict(test_cfg=test_cfg)))
    assert type(model.data_preprocessor).__name__ == 'OVSDataPreProcessor'
    sizes = [(40, 56), (64, 48), (64, 48), (33, 70)]
    batch, alone = _mixed_batch(model, sizes)
    for (h, w), b, a in zip(sizes, batch, alone):
        assert b.pred_sem_seg.shape == (int(h * 1.5), w + 3)
        assert b.padding_size == (0, 70 - w, 0, 64 - h)
        assert torch.equal(b.pred_sem_seg.data, a.pred_sem_seg.data)  # identical label maps
        assert torch.equal(b.seg_logits.data, a.seg_logits.data)


def test_pixelclip_squash_logits_resized_once_to_original(tmp_path):
    """64^2-style feature logits go to the original size in one bilinear resize (official)."""
    from mmseg.structures import SegDataSample
    model = build('pixelclip')
    x = torch.randint(0, 256, (1, 3, 48, 72)).float()
    with torch.no_grad():
        small = model.inference(x, [{}])  # logits at feature_size
        pred = model.predict(x, [SegDataSample(metainfo=dict(ori_shape=(97, 131), img_shape=(48, 72)))])[0]
    assert small.shape[-2:] == tuple(model.feature_size)
    torch.testing.assert_close(pred.seg_logits.data,
                               F.interpolate(small, size=(97, 131), mode='bilinear', align_corners=False)[0])
    # the PixelCLIP-protocol baseline likewise: feature_size logits -> original, once
    base = build('clip_baseline', test_cfg=dict(mode='squash', squash_size=(64, 64), feature_size=(16, 16)))
    xn = torch.randn(1, 3, 48, 72)
    with torch.no_grad():
        small = base.inference(xn, [{}])
        pred = base.predict(xn, [SegDataSample(metainfo=dict(ori_shape=(97, 131), img_shape=(48, 72)))])[0]
    assert small.shape[-2:] == (16, 16)
    torch.testing.assert_close(pred.seg_logits.data,
                               F.interpolate(small, size=(97, 131), mode='bilinear', align_corners=False)[0])


def test_dense_features_are_nchw_for_every_backbone():
    model = build('pixelclip')
    img = torch.randn(2, 3, 64, 48)
    with torch.no_grad():
        dense = model.backbone.dense_features(img)
        (fwd,) = model.backbone(img)
    p = model.backbone.patch_size[0]
    assert dense.shape == (2, model.backbone.embed_dim, 64 // p, 48 // p) and torch.equal(dense, fwd)


# ------------------------------------------------------------------------------ apis and tools
@pytest.fixture(scope='module')
def toy_checkpoints(tmp_path_factory):
    """A checkpoint of each toy model (random weights) and its config, with images of mixed sizes."""
    out = tmp_path_factory.mktemp('ovs_ckpt')
    ckpts = {}
    for method in METHODS:
        model = build(method)
        path = str(out / f'{method}.pth')
        torch.save(dict(state_dict=model.state_dict(), meta={}), path)
        cfg_path = str(out / f'{method}_cfg.py')
        toy_cfg(method).dump(cfg_path)
        ckpts[method] = (cfg_path, path)
    rng = np.random.default_rng(0)
    images = []
    for i, (h, w) in enumerate([(40, 60), (64, 64), (50, 30)]):
        p = str(out / f'img{i}.png')
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(p)
        images.append(p)
    return ckpts, images


@pytest.mark.parametrize('method', METHODS)
def test_ovs_inferencer_vocabularies_and_mixed_size_batches(method, toy_checkpoints):
    from mmseg_ovs.apis import OVSInferencer
    ckpts, images = toy_checkpoints
    cfg, ckpt = ckpts[method]
    inf = OVSInferencer(cfg, ckpt, vocabulary='voc20', device='cpu', batch_size=3)
    assert len(inf.model.class_names) == 20 and inf.model.dataset_meta['classes'][0] == 'aeroplane'
    vocab = (['background', 'circle|ring', ['square', 'box']] if method in BG else
             ['circle|ring', ['square', 'box'], 'star'])
    if method in BG:
        inf.model.bg_thresh = 0.5
    batched = OVSInferencer.label_maps(inf(images, vocabulary=vocab))
    single = [OVSInferencer.label_maps(inf(p, batch_size=1))[0] for p in images]
    sizes = [np.asarray(Image.open(p)).shape[:2] for p in images]
    for b, s, hw in zip(batched, single, sizes):
        assert b.shape == hw and np.array_equal(b, s) and b.max() < 3
    assert inf.model.dataset_meta['classes'] == tuple(n if isinstance(n, str) else n[0] for n in
                                                      (v.split('|')[0] if isinstance(v, str) else v for v in vocab))
    if method == 'clip_baseline':
        inf.model.bg_thresh = None  # a vocabulary without background
    one = OVSInferencer.label_maps(inf(images[0], vocabulary=['cat']))[0]
    assert (one == 0).all()
    for bad, match in [([], 'empty'), (['cat', 'cat'], 'duplicate'), ('notakey', 'neither')]:
        with pytest.raises(ValueError, match=match):
            inf(images[0], vocabulary=bad)


@pytest.mark.parametrize('method', METHODS)
def test_demo_vocab_forms(method, toy_checkpoints, tmp_path, monkeypatch, capsys):
    ckpts, images = toy_checkpoints
    cfg, ckpt = ckpts[method]
    vocab = 'background,tv|monitor,cat' if method in BG else 'tv|monitor,cat'
    opts = ['--cfg-options', 'model.bg_thresh=0.5', 'model.class_names=voc21'] if method in BG else []

    def demo(v, out):
        monkeypatch.setattr(sys, 'argv', ['demo.py', images[0], '--config', cfg, '--checkpoint', ckpt,
                                          '--vocab', v, '--out', out, '--device', 'cpu'] + opts)
        runpy.run_path(osp.join(ROOT, 'tools/demo.py'), run_name='__main__')
    out = str(tmp_path / 'demo.png')
    demo(vocab, out)
    printed = capsys.readouterr().out
    assert 'tv=' in printed and 'monitor' not in printed and 'cat=' in printed
    assert np.asarray(Image.open(out)).shape[1] == 60 + 160
    demo('voc21' if method in BG else 'voc20', out)
    assert 'aeroplane=' in capsys.readouterr().out
    for bad, match in [('cat,,dog', 'entry 1'), ('cat,Cat', 'duplicate')]:
        with pytest.raises(SystemExit, match=match):
            demo(bad, out)


# ------------------------------------------------------------------------------ TTA
@pytest.mark.parametrize('protocol,method,one_class', [('segclip_eval', 'segclip', False),
                                                      ('pixelclip_eval', 'pixelclip', False),
                                                      ('pixelclip_eval', 'pixelclip', True)])
def test_tta_through_seg_tta_model(protocol, method, one_class, toy_checkpoints):
    """The protocol's tta_pipeline/tta_model (flip x scales) run through mmseg's SegTTAModel; the
    merge equals the mean of the per-view softmaxes computed view by view."""
    from mmcv.transforms import Compose
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmseg.registry import MODELS
    ckpts, images = toy_checkpoints
    proto = Config.fromfile(osp.join(ROOT, f'configs/_base_/protocols/{protocol}.py'))
    leaf = Config.fromfile(osp.join(ROOT, 'configs/benchmarks', method, f'{method}_vitb16_context59.py'
                                    if method == 'pixelclip' else f'{method}_vitb16_voc21.py'))
    assert leaf.tta_model.type == 'OVSTTAModel' and leaf.tta_pipeline == proto.tta_pipeline
    model = build(method)
    if one_class:
        model.set_vocabulary(['circle'])
    tta = MODELS.build(dict(leaf.tta_model, module=model)).eval()
    pipeline = proto.tta_pipeline
    for t in pipeline:
        if t['type'] == 'TestTimeAug':  # two of the protocol's scales; no ground truth here
            t['transforms'][0] = t['transforms'][0][:2]
            t['transforms'] = [ts for ts in t['transforms'] if ts[0]['type'] != 'LoadAnnotations']
    data = Compose(pipeline)(dict(img_path=images[0]))
    n_views = len(data['inputs'])
    assert n_views == 4  # 2 scales x (no flip, flip)
    with torch.no_grad():
        merged = tta.test_step(pseudo_collate([data]))[0]
        probs = []
        for inp, ds in zip(data['inputs'], data['data_samples']):
            out = model.test_step(dict(inputs=[inp], data_samples=[ds]))[0]
            probs.append(out.seg_logits.data.softmax(0))
    ref = torch.stack(probs).mean(0).argmax(0)
    assert merged.pred_sem_seg.data.shape[-2:] == np.asarray(Image.open(images[0])).shape[:2]
    assert torch.equal(merged.pred_sem_seg.data.squeeze(0), ref)
    if one_class:  # mmseg's SegTTAModel would take its binary-head path (decode_head.threshold) here
        assert merged.pred_sem_seg.data.max() == 0 and merged.seg_logits.data.shape[0] == 1
    # a flipped view is flipped back: its prediction matches the unflipped view's up to resampling
    assert data['data_samples'][1].flip and not data['data_samples'][0].flip


# ------------------------------------------------------------------------------ tools/test.py
@pytest.fixture(scope='module')
def mixed_size_split(tmp_path_factory):
    """A labeled split of images of different sizes (toy layout: val/images, val/labels)."""
    root = tmp_path_factory.mktemp('mixed')
    rng = np.random.default_rng(1)
    for sub in ('images', 'labels'):
        (root / 'val' / sub).mkdir(parents=True)
    for i, (h, w) in enumerate([(40, 60), (64, 64), (50, 30), (33, 47), (64, 40)]):
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(root / 'val' / 'images' / f'{i}.png')
        Image.fromarray(rng.integers(0, 7, (h, w), dtype=np.uint8)).save(root / 'val' / 'labels' / f'{i}.png')
    return str(root)


@pytest.mark.parametrize('method', METHODS)
def test_tools_test_mixed_size_batches_equal_batch_size_one(method, toy_checkpoints, mixed_size_split,
                                                           tmp_path, monkeypatch, capsys):
    """tools/test.py with batch size 3 on images of different sizes writes exactly the label maps
    of batch size 1."""
    ckpts, _ = toy_checkpoints
    cfg, ckpt = ckpts[method]
    monkeypatch.syspath_prepend(osp.join(ROOT, 'tools'))
    outs = {}
    for bs in (1, 3):
        out = tmp_path / f'bs{bs}'
        monkeypatch.setattr(sys, 'argv', [
            'test.py', cfg, ckpt, '--work-dir', str(tmp_path / f'wd{bs}'), '--out', str(out), '--cfg-options',
            f'test_dataloader.batch_size={bs}', f'test_dataloader.dataset.data_root={mixed_size_split}'])
        runpy.run_path(osp.join(ROOT, 'tools/test.py'), run_name='__main__')
        outs[bs] = {p: np.asarray(Image.open(out / p)) for p in sorted(f.name for f in out.iterdir())}
    assert len(outs[1]) == 5 and outs[1].keys() == outs[3].keys()
    for name, label in outs[1].items():
        assert np.array_equal(label, outs[3][name]), name
    assert {v.shape for v in outs[3].values()} == {(40, 60), (64, 64), (50, 30), (33, 47), (64, 40)}


@pytest.mark.parametrize('method', METHODS)
def test_tools_test_tta(method, toy_checkpoints, mixed_size_split, tmp_path, monkeypatch):
    """tools/test.py --tta (the toy protocol's flip x 2 scales through OVSTTAModel) writes a label map
    of each image's own size; batch size 2 of mixed sizes."""
    ckpts, _ = toy_checkpoints
    cfg, ckpt = ckpts[method]
    monkeypatch.syspath_prepend(osp.join(ROOT, 'tools'))
    out = tmp_path / 'tta'
    monkeypatch.setattr(sys, 'argv', [
        'test.py', cfg, ckpt, '--tta', '--work-dir', str(tmp_path / 'wd'), '--out', str(out), '--cfg-options',
        'test_dataloader.batch_size=2', f'test_dataloader.dataset.data_root={mixed_size_split}'])
    runpy.run_path(osp.join(ROOT, 'tools/test.py'), run_name='__main__')
    shapes = {np.asarray(Image.open(p)).shape for p in out.iterdir()}
    assert shapes == {(40, 60), (64, 64), (50, 30), (33, 47), (64, 40)}
