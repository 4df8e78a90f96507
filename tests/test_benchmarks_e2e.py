"""tools/benchmark_all.py end to end: converters -> configs -> Runner.test() -> Markdown/CSV tables,
on tiny synthetic trees of all eight benchmarks with a tiny random CLIP."""
import csv
import glob
import os
import os.path as osp
import shutil
import sys

import numpy as np
import pytest

from . import _benchmark_trees as trees

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(ROOT, 'data_prep'))
sys.path.insert(0, osp.join(ROOT, 'tools'))

BENCHES = ['voc21', 'context60', 'coco_object', 'voc20', 'cityscapes', 'context59', 'ade150', 'coco_stuff171']


TINY_MODEL = {
    'clip_baseline': "model = dict(backbone=dict(model_cfg={tiny!r}), text_encoder=dict(model_cfg={tiny!r}))\n",
    # the SCLIP-family protocol (one template instead of 80 to keep the CPU test short)
    'clip_baseline_sclip': ("model = dict(backbone=dict(model_cfg={tiny!r}), text_encoder=dict(model_cfg={tiny!r}),\n"
                            "             templates='single')\n"),
    'segclip': ("model = dict(backbone=dict(model_name=None, model_cfg={tiny!r}, pretrained=None),\n"
                "             text_encoder=dict(model_name=None, model_cfg={tiny!r}, pretrained=None),\n"
                "             first_stage_layers=2, reconstruction=None)\n"),
    'pixelclip': ("model = dict(backbone=dict(model_cfg={tiny!r}), text_encoder=dict(model_cfg={tiny!r}),\n"
                  "             decode_head=dict(num_clusters=8, mask_resolution=(32, 32),\n"
                  "                              decoder=dict(mid_channels=(16, 16, 16))),\n"
                  "             clip_resolution=(64, 64), feature_size=(16, 16))\n"),
}


def _tiny_configs(tmp, method='clip_baseline', prefix='clip_vitb16', benches=BENCHES):
    """Per-benchmark configs inheriting the shipped ones, with a tiny CLIP and small test scale."""
    from mmengine.config import Config
    tiny = Config.fromfile(osp.join(ROOT, 'configs', '_base_', 'clip', 'tiny_vit.py')).tiny_clip_cfg.to_dict()
    os.makedirs(tmp, exist_ok=True)
    for bench in benches:
        base = osp.join(ROOT, 'configs', 'benchmarks', method, f'{prefix}_{bench}.py')
        shipped = Config.fromfile(base)
        pipeline = shipped.test_pipeline
        for t in pipeline:  # keep the protocol's transforms, shrink the sizes for CPU tests
            if t['type'] == 'Resize':
                t['scale'] = (512, 96) if t['scale'][1] > 224 else (1024, 112)
        test_cfg = {}
        if shipped.model.get('test_cfg', {}).get('mode') == 'slide':
            test_cfg.update(crop_size=(112, 112), stride=(112, 112))
        if shipped.model.get('test_cfg', {}).get('squash_size'):
            test_cfg.update(squash_size=(96, 96))
        text = (f'_base_ = [{base!r}]\n' + TINY_MODEL[method].format(tiny=tiny) +
                (f'model.update(test_cfg={test_cfg!r})\n' if test_cfg else '') +
                f'test_pipeline = {list(pipeline)!r}\n'
                'test_dataloader = dict(num_workers=0, dataset=dict(pipeline=test_pipeline))\n'
                "default_hooks = dict(logger=dict(type='LoggerHook', interval=1))\n")
        with open(osp.join(tmp, f'tiny_{prefix}_{bench}.py'), 'w') as f:
            f.write(text)
    return osp.join(tmp, f'tiny_{prefix}_{{bench}}.py')


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    import convert_coco_object
    import prepare_benchmarks
    root = str(tmp_path_factory.mktemp('bench_e2e'))
    data = osp.join(root, 'data')
    t = trees.make_all(data)
    # official downloads -> the layouts the configs expect, through the shipped converters
    prepare_benchmarks.main(['context', t['context']['devkit'], t['context']['json']])
    convert_coco_object.main([t['coco']['stuff']])
    prepare_benchmarks.main(['coco_stuff', t['coco']['stuff']])
    prepare_benchmarks.main(['cityscapes', t['cityscapes']['root']])
    prepare_benchmarks.main(['voc', osp.dirname(t['voc']['root'])])
    prepare_benchmarks.main(['ade20k', t['ade']['root']])
    cfgs = osp.join(root, 'cfgs')
    return dict(data=data, trees=t, template=_tiny_configs(cfgs), root=root)


def _read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_benchmark_all_eight_benchmarks(setup):
    import benchmark_all
    wd = osp.join(setup['root'], 'wd_all')
    rc = benchmark_all.main([setup['template'], '--data-root', setup['data'], '--work-dir', wd,
                             '--device', 'cpu'])
    assert rc == 0
    rows = _read_csv(osp.join(wd, 'results.csv'))
    assert [r['benchmark'] for r in rows] == BENCHES + ['mean']
    vals = [float(r['mIoU']) for r in rows[:-1]]
    assert all(r['status'] == 'ok' for r in rows[:-1]), rows
    assert all(0.0 <= v <= 100.0 for v in vals)
    assert float(rows[-1]['mIoU']) == pytest.approx(np.mean(vals), abs=1e-3)
    assert rows[-1]['status'] == '8/8 benchmarks'
    md = open(osp.join(wd, 'results.md')).read()
    assert md.count('| ok |') == 8 and '**mean** (8/8)' in md
    print(md)


def test_benchmark_all_missing_and_overrides(setup):
    """A missing dataset is a table row, not a crash; --cfg-options reaches the model (bg_thresh=1.0
    predicts background everywhere, whose mIoU follows from the ground truth alone)."""
    import benchmark_all
    data2 = osp.join(setup['root'], 'data_partial')
    shutil.copytree(osp.join(setup['data'], 'VOCdevkit', 'VOC2012'), osp.join(data2, 'VOCdevkit', 'VOC2012'),
                    symlinks=True)
    wd = osp.join(setup['root'], 'wd_partial')
    rc = benchmark_all.main([setup['template'], '--data-root', data2, '--work-dir', wd, '--device', 'cpu',
                             '--benchmarks', 'voc21', 'ade150', '--cfg-options', 'model.bg_thresh=1.0'])
    assert rc == 0
    rows = {r['benchmark']: r for r in _read_csv(osp.join(wd, 'results.csv'))}
    missing = osp.join(data2, 'ade', 'ADEChallengeData2016', 'images', 'validation')
    assert rows['ade150']['status'] == f'missing: {missing}' and rows['ade150']['mIoU'] == ''
    # all-background prediction: IoU(background) = bg / valid pixels, 0 for every other GT class
    gts = np.stack(setup['trees']['voc']['maps'])
    valid = gts != 255
    present = np.unique(gts[valid])
    expected = 100.0 * ((gts == 0).sum() / valid.sum()) / len(present)
    assert float(rows['voc21']['mIoU']) == pytest.approx(expected, abs=0.01)
    assert rows['mean']['status'] == '1/2 benchmarks'
    assert f'missing: {missing}' in open(osp.join(wd, 'results.md')).read()


def test_benchmark_all_reports_errors_and_missing_configs(setup, tmp_path):
    import benchmark_all
    bad = tmp_path / 'bad_voc20.py'
    bad.write_text(open(setup['template'].format(bench='voc20')).read() + "model = dict(dense_mode='nope')\n")
    wd = str(tmp_path / 'wd')
    rc = benchmark_all.main([str(tmp_path), '--data-root', setup['data'], '--work-dir', wd, '--device', 'cpu',
                             '--benchmarks', 'voc20', 'context59'])
    assert rc == 1
    rows = {r['benchmark']: r for r in _read_csv(osp.join(wd, 'results.csv'))}
    assert rows['voc20']['status'].startswith('error: ') and 'dense_mode' in rows['voc20']['status']
    assert rows['context59']['status'].startswith('missing: no *_context59.py config')


def _save_checkpoint(config, path):
    """A checkpoint of the config's (random) model, as the runner would save it."""
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    import mmseg_ovs  # noqa: F401
    init_default_scope('mmseg')
    torch.manual_seed(1)
    model = MODELS.build(Config.fromfile(config).model)
    torch.save(dict(meta=dict(), state_dict=model.state_dict()), path)


@pytest.mark.parametrize('method,prefix,benches', [
    ('segclip', 'segclip_vitb16', ['voc21', 'context60', 'coco_object']),
    ('pixelclip', 'pixelclip_vitb16', ['voc20', 'cityscapes', 'context59', 'ade150', 'coco_stuff171']),
])
def test_benchmark_all_method_configs(setup, tmp_path, method, prefix, benches):
    """The shipped SegCLIP / PixelCLIP benchmark configs (tiny towers) with a checkpoint: the folder mode
    finds exactly the method's benchmarks, the others are reported as missing configs."""
    import benchmark_all
    template = _tiny_configs(str(tmp_path / 'cfgs'), method, prefix, benches)
    ckpt = str(tmp_path / 'ckpt.pth')
    _save_checkpoint(template.format(bench=benches[0]), ckpt)
    wd = str(tmp_path / 'wd')
    rc = benchmark_all.main([str(tmp_path / 'cfgs'), '--checkpoint', ckpt, '--data-root', setup['data'],
                             '--work-dir', wd, '--device', 'cpu'])
    assert rc == 0
    rows = {r['benchmark']: r for r in _read_csv(osp.join(wd, 'results.csv'))}
    for bench in BENCHES:
        if bench in benches:
            assert rows[bench]['status'] == 'ok', rows[bench]
            assert 0.0 <= float(rows[bench]['mIoU']) <= 100.0
        else:
            assert rows[bench]['status'].startswith('missing: no *_' + bench)
    assert rows['mean']['status'] == f'{len(benches)}/8 benchmarks'


def test_benchmark_all_sclip_protocol(setup, tmp_path):
    """The SCLIP-family configs (configs/benchmarks/clip_baseline_sclip/, SCLIPProtocolBaseline with the
    cls_*_sclip.txt vocabularies and probability thresholds) give a full eight-benchmark table."""
    import benchmark_all
    template = _tiny_configs(str(tmp_path / 'cfgs'), 'clip_baseline_sclip', 'clip_vitb16')
    wd = str(tmp_path / 'wd')
    rc = benchmark_all.main([str(tmp_path / 'cfgs'), '--data-root', setup['data'], '--work-dir', wd,
                             '--device', 'cpu'])
    assert rc == 0 and template
    rows = _read_csv(osp.join(wd, 'results.csv'))
    assert [r['benchmark'] for r in rows] == BENCHES + ['mean']
    assert all(r['status'] == 'ok' for r in rows[:-1]), rows
    assert all(0.0 <= float(r['mIoU']) <= 100.0 for r in rows[:-1])


def test_benchmark_all_two_processes_match_one(setup, tmp_path, monkeypatch):
    """--gpus 2 (two gloo processes on CPU, through torch.distributed.run and DDP) gives the same
    mIoU as one process for the same checkpoint."""
    import socket

    import benchmark_all
    template = setup['template']
    ckpt = str(tmp_path / 'ckpt.pth')
    _save_checkpoint(template.format(bench='voc20'), ckpt)
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        monkeypatch.setenv('PORT', str(s.getsockname()[1]))
    miou = []
    for gpus in ('1', '2'):
        wd = str(tmp_path / f'wd{gpus}')
        rc = benchmark_all.main([template, '--benchmarks', 'voc20', '--checkpoint', ckpt, '--data-root',
                                 setup['data'], '--work-dir', wd, '--device', 'cpu', '--gpus', gpus])
        assert rc == 0
        rows = _read_csv(osp.join(wd, 'results.csv'))
        assert rows[0]['status'] == 'ok'
        miou.append(float(rows[0]['mIoU']))
        logs = ''.join(open(p).read() for p in glob.glob(osp.join(wd, 'voc20', '*', '*.log')))
        assert ('GPU number: 2' in logs and 'Distributed launcher: pytorch' in logs) == (gpus == '2')
    assert miou[0] == miou[1]
