"""Benchmark datasets, class-name files and base dataset configs on tiny synthetic trees."""
import os.path as osp
import sys

import numpy as np
import pytest

from . import _benchmark_trees as trees

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(ROOT, 'data_prep'))

BENCH_DATASET = {
    'voc21': 'PascalVOCDataset', 'context60': 'PascalContextDataset', 'coco_object': 'COCOObjectDataset',
    'voc20': 'PascalVOC20Dataset', 'cityscapes': 'CityscapesDataset', 'context59': 'PascalContextDataset59',
    'ade150': 'ADE20KDataset', 'coco_stuff171': 'COCOStuffDataset'}


def test_class_name_files_match_dataset_classes():
    import mmseg_ovs  # noqa: F401
    from mmseg.registry import DATASETS
    from mmseg_ovs.datasets.class_names import BENCHMARKS, load_class_names
    assert sorted(BENCHMARKS) == sorted(BENCH_DATASET)
    for bench, ds in BENCH_DATASET.items():
        names = load_class_names(bench)
        classes = DATASETS.get(ds).METAINFO['classes']
        assert [n[0] for n in names] == [c.strip() for c in classes], bench


def test_class_name_variants_and_format(tmp_path):
    from mmseg_ovs.datasets.class_names import load_class_names, parse_class_names
    voc = load_class_names('voc21')
    seg = load_class_names('voc21', variant='segclip')
    changed = {a[0]: b[0] for a, b in zip(voc, seg) if a != b}
    assert changed == {'diningtable': 'table', 'pottedplant': 'plant', 'tvmonitor': 'monitor'}
    ctx = {a[0]: b[0] for a, b in zip(load_class_names('context60'), load_class_names('context60', 'segclip'))
           if a != b}
    assert ctx == {'aeroplane': 'airplane', 'pottedplant': 'plant', 'tvmonitor': 'monitor'}
    pc59 = {a[0]: b[0] for a, b in zip(load_class_names('context59'), load_class_names('context59', 'pixelclip'))
            if a != b}
    assert pc59 == {'table': 'diningtable'}
    f = tmp_path / 'my.txt'
    f.write_text('sky, clouds\n\nperson in shirt,person\n')
    assert load_class_names(str(f)) == [['sky', 'clouds'], ['person in shirt', 'person']]
    with pytest.raises(ValueError, match='empty vocabulary'):
        parse_class_names('\n\n', 'x.txt')
    with pytest.raises(ValueError, match='x.txt:1: empty class name'):
        parse_class_names('a,,b', 'x.txt')
    with pytest.raises(FileNotFoundError, match='shipped'):
        load_class_names('voc21', variant='nope')
    with pytest.raises(FileNotFoundError, match='not found'):
        load_class_names(str(tmp_path / 'absent.txt'))


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    """All eight benchmark trees, converted with data_prep/ where a conversion exists."""
    import convert_coco_object
    import prepare_benchmarks
    root = str(tmp_path_factory.mktemp('bench_data'))
    t = trees.make_all(root)
    prepare_benchmarks.prepare_context(t['context']['devkit'], t['context']['json'])
    convert_coco_object.convert_stuffthingmaps(t['coco']['stuff'])
    prepare_benchmarks.prepare_coco_stuff(t['coco']['stuff'])
    prepare_benchmarks.prepare_cityscapes(t['cityscapes']['root'])
    return root, t


def _build(bench, root):
    import mmseg_ovs  # noqa: F401
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS
    init_default_scope('mmseg')
    cfg = Config.fromfile(osp.join(ROOT, 'configs', '_base_', 'datasets', f'{bench}.py'))
    assert 'default_scope' not in cfg  # set by leaf configs (mmengine forbids duplicates among bases)
    assert cfg.test_dataloader.dataset.type == BENCH_DATASET[bench]
    ds_cfg = cfg.test_dataloader.dataset
    assert ds_cfg.data_root.startswith('data/')
    ds_cfg.data_root = osp.join(root, ds_cfg.data_root[len('data/'):])
    return DATASETS.build(ds_cfg)


def _labels(ds):
    out = []
    for i in range(len(ds)):
        item = ds[i]
        out.append(item['data_samples'].gt_sem_seg.data.squeeze(0).numpy())
        assert tuple(item['data_samples'].ori_shape) == out[-1].shape == (trees.H, trees.W)
    return out


def _reduce(m):
    m = m.astype(np.int64)
    r = m - 1
    r[m == 0] = 255
    r[m == 255] = 255
    return r


def test_benchmark_datasets_load_real_layouts(data_root):
    root, t = data_root
    voc21 = _build('voc21', root)
    assert len(voc21) == 2 and len(voc21.metainfo['classes']) == 21
    for got, ref in zip(_labels(voc21), t['voc']['maps']):  # palette PNG -> indices, 255 kept
        np.testing.assert_array_equal(got, ref)
    voc20 = _build('voc20', root)
    assert len(voc20.metainfo['classes']) == 20 and voc20.metainfo['classes'][0] == 'aeroplane'
    for got, ref in zip(_labels(voc20), t['voc']['maps']):  # background and boundary ignored
        np.testing.assert_array_equal(got, _reduce(ref))
    for got, ref in zip(_labels(_build('context60', root)), t['context']['maps']):
        np.testing.assert_array_equal(got, ref)
    for got, ref in zip(_labels(_build('context59', root)), t['context']['maps']):
        np.testing.assert_array_equal(got, _reduce(ref))
    for got, ref in zip(_labels(_build('ade150', root)), t['ade']['maps']):
        np.testing.assert_array_equal(got, _reduce(ref))
    for got, ref in zip(_labels(_build('cityscapes', root)), t['cityscapes']['expected']):
        np.testing.assert_array_equal(got, ref)
    for got, ref in zip(_labels(_build('coco_stuff171', root)), t['coco']['expected_stuff']):
        np.testing.assert_array_equal(got, ref)
    obj = _build('coco_object', root)
    assert len(obj.metainfo['classes']) == 81 and obj.metainfo['classes'][:2] == ('background', 'person')
    labs = _labels(obj)
    assert obj.get_data_info(0)['seg_map_path'].endswith('000000000139_instanceTrainIds.png')
    for got, ref in zip(labs, t['coco']['expected_object']):  # the field's stuffthingmaps route
        np.testing.assert_array_equal(got, ref)


def _bench_configs(method):
    import glob
    return sorted(glob.glob(osp.join(ROOT, 'configs', 'benchmarks', method, '*.py')))


def test_benchmark_configs_follow_the_protocols():
    """Every shipped benchmark config loads, registers the plugin and carries its paper's protocol."""
    from mmengine.config import Config
    seg_bg = dict(voc21=0.80, context60=0.25, coco_object=0.65)
    no_bg = {'voc20', 'context59', 'coco_stuff171', 'cityscapes', 'ade150'}
    seen = {}
    for method in ('clip_baseline', 'segclip', 'pixelclip'):
        for path in _bench_configs(method):
            cfg = Config.fromfile(path)
            bench = cfg.bench
            assert path.endswith(f'_{bench}.py')
            assert cfg.default_scope == 'mmseg' and cfg.custom_imports.imports == ['mmseg_ovs'], path
            assert cfg.test_dataloader.dataset.type == BENCH_DATASET[bench], path
            assert cfg.test_dataloader.dataset.pipeline == cfg.test_pipeline
            resize = [t for t in cfg.test_pipeline if t.type == 'Resize']
            assert len(resize) == 1 and resize[0].keep_ratio, path
            model = cfg.model
            if bench in seg_bg:  # SegCLIP protocol
                assert tuple(resize[0].scale) == (2048, 224)
                assert model.bg_thresh == seg_bg[bench] and model.templates == 'single'
                assert model.test_cfg.mode == 'slide'
                assert tuple(model.test_cfg.crop_size) == tuple(model.test_cfg.stride) == (224, 224)
            else:  # PixelCLIP protocol
                assert bench in no_bg
                assert tuple(resize[0].scale) == (2560, 640) and resize[0].backend == 'pillow'
                assert model.templates == 'imagenet_select' and not model.get('bg_thresh')
                squash = model.get('clip_resolution') or model.test_cfg.squash_size
                assert tuple(squash) == ((640, 640) if 'convnext' in path else (320, 320))
                assert tuple(model.get('feature_size') or model.test_cfg.feature_size) == (64, 64)
            seen.setdefault(method, set()).add(bench)
    assert seen['clip_baseline'] == set(BENCH_DATASET)
    assert seen['segclip'] == set(seg_bg) and seen['pixelclip'] == no_bg
