"""tools/benchmark_all.py end to end: converters -> configs -> Runner.test() -> Markdown/CSV tables,
on tiny synthetic trees of all eight benchmarks with a tiny random CLIP."""
import csv
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


def _tiny_configs(tmp, method='clip_baseline', prefix='clip_vitb16'):
    """Per-benchmark configs inheriting the shipped ones, with a tiny CLIP and small test scale."""
    from mmengine.config import Config
    tiny = trees.open_clip_model_cfg(
        Config.fromfile(osp.join(ROOT, 'configs', '_base_', 'clip', 'tiny_vit.py')).tiny_clip_cfg.to_dict())
    for bench in BENCHES:
        base = osp.join(ROOT, 'configs', 'benchmarks', method, f'{prefix}_{bench}.py')
        pipeline = Config.fromfile(base).test_pipeline
        for t in pipeline:
            if t['type'] == 'Resize' and t['scale'][1] > 224:
                t['scale'] = (512, 96)  # keep the protocol's transform, shrink the size for CPU tests
        text = (f'_base_ = [{base!r}]\n'
                f'model = dict(backbone=dict(model_cfg={tiny!r}), text_encoder=dict(model_cfg={tiny!r}))\n'
                f'test_pipeline = {list(pipeline)!r}\n'
                'test_dataloader = dict(num_workers=0, dataset=dict(pipeline=test_pipeline))\n'
                "default_hooks = dict(logger=dict(type='LoggerHook', interval=1))\n")
        with open(osp.join(tmp, f'tiny_{bench}.py'), 'w') as f:
            f.write(text)
    return osp.join(tmp, 'tiny_{bench}.py')


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    import convert_coco_object
    import prepare_benchmarks
    root = str(tmp_path_factory.mktemp('bench_e2e'))
    data = osp.join(root, 'data')
    t = trees.make_all(data)
    # official downloads -> the layouts the configs expect, through the shipped converters
    convert_coco_object.main([t['coco']['coco'], '-o', t['coco']['stuff']])
    prepare_benchmarks.main(['coco_stuff', t['coco']['stuff']])
    prepare_benchmarks.main(['cityscapes', t['cityscapes']['root']])
    prepare_benchmarks.main(['voc', osp.dirname(t['voc']['root'])])
    prepare_benchmarks.main(['ade20k', t['ade']['root']])
    cfgs = osp.join(root, 'cfgs')
    os.makedirs(cfgs)
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
