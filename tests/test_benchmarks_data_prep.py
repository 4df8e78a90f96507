"""Benchmark converters (data_prep/) on tiny trees in the official download formats."""
import json
import os
import os.path as osp
import sys

import numpy as np
import pytest
from PIL import Image

from . import _benchmark_trees as trees

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(ROOT, 'data_prep'))

import convert_coco_object  # noqa: E402
import prepare_benchmarks  # noqa: E402
from bench_io import DataPrepError  # noqa: E402


def _png(path):
    return np.array(Image.open(path))


def _no_tmp_files(root):
    return [osp.join(d, f) for d, _, fs in os.walk(root) for f in fs if '.tmp' in f]


def test_coco_object_from_instances(tmp_path):
    from pycocotools.coco import COCO
    tree = trees.make_coco(str(tmp_path))
    out = str(tmp_path / 'coco_object_out')
    stats = convert_coco_object.convert(tree['coco'], out)
    assert stats == dict(written=2, skipped=0, images=2)
    lab = _png(osp.join(out, 'annotations', 'val2017', '000000000139_instanceTrainIds.png'))
    empty = _png(osp.join(out, 'annotations', 'val2017', '000000000285_instanceTrainIds.png'))
    assert lab.dtype == np.uint8 and lab.shape == (trees.H, trees.W)
    assert (empty == 0).all()
    # person (COCO id 1 -> 1), the smaller dog (id 18 -> 17) painted on top, crowd toothbrush (90 -> 80)
    assert lab[2, 2] == 1 and lab[15, 25] == 1
    assert lab[7, 10] == 17
    assert lab[34, 45] == 80
    assert lab[39, 55] == 0 and lab[25, 5] == 0
    assert set(np.unique(lab)) == {0, 1, 17, 80}
    # independent per-annotation painter's algorithm (largest first) gives the same map
    coco = COCO(osp.join(tree['coco'], 'annotations', 'instances_val2017.json'))
    ref = np.zeros_like(lab)
    for a in sorted(coco.imgToAnns[1], key=lambda a: -a['area']):
        ref[coco.annToMask(a) > 0] = trees.COCO_THING_IDS.index(a['category_id']) + 1
    np.testing.assert_array_equal(lab, ref)
    # images are linked into the output layout
    assert osp.isfile(osp.join(out, 'images', 'val2017', '000000000139.jpg'))
    assert not _no_tmp_files(out)

    # resumable: a second run writes nothing and leaves the files untouched
    mtime = os.stat(osp.join(out, 'annotations', 'val2017', '000000000139_instanceTrainIds.png')).st_mtime_ns
    assert convert_coco_object.convert(tree['coco'], out) == dict(written=0, skipped=2, images=2)
    assert os.stat(osp.join(out, 'annotations', 'val2017',
                            '000000000139_instanceTrainIds.png')).st_mtime_ns == mtime

    # --crowd ignore marks crowd regions 255
    out2 = str(tmp_path / 'ignore')
    convert_coco_object.main([tree['coco'], '-o', out2, '--crowd', 'ignore', '--copy'])
    lab2 = _png(osp.join(out2, 'annotations', 'val2017', '000000000139_instanceTrainIds.png'))
    assert lab2[34, 45] == 255 and lab2[7, 10] == 17
    assert not osp.islink(osp.join(out2, 'images', 'val2017', '000000000139.jpg'))


def test_coco_object_bad_inputs(tmp_path):
    tree = trees.make_coco(str(tmp_path))
    ann = osp.join(tree['coco'], 'annotations', 'instances_val2017.json')
    data = json.load(open(ann))
    # a listed image missing on disk -> error naming it
    os.remove(osp.join(tree['coco'], 'val2017', '000000000285.jpg'))
    with pytest.raises(DataPrepError, match='000000000285.jpg'):
        convert_coco_object.convert(tree['coco'], str(tmp_path / 'o1'))
    # malformed json -> error naming the json
    with open(ann, 'w') as f:
        f.write('{"images": [')
    with pytest.raises(DataPrepError, match='instances_val2017.json'):
        convert_coco_object.convert(tree['coco'], str(tmp_path / 'o2'))
    # wrong category set
    data['categories'] = data['categories'][:5]
    with open(ann, 'w') as f:
        json.dump(data, f)
    with pytest.raises(DataPrepError, match='expected 80 thing categories'):
        convert_coco_object.convert(tree['coco'], str(tmp_path / 'o3'))
    with pytest.raises(SystemExit, match='missing COCO val2017 image directory'):
        convert_coco_object.main([str(tmp_path / 'nowhere'), '-o', str(tmp_path / 'o4')])


def test_coco_stuff_uses_mmseg_table(tmp_path):
    tree = trees.make_coco(str(tmp_path))
    stats = prepare_benchmarks.prepare_coco_stuff(tree['stuff'])
    assert stats == dict(images=2, written=2, skipped=0)
    for name, expected in zip(tree['files'], tree['expected_stuff']):
        out = osp.join(tree['stuff'], 'annotations', 'val2017', name.replace('.jpg', '_labelTrainIds.png'))
        np.testing.assert_array_equal(_png(out), expected)
    assert prepare_benchmarks.prepare_coco_stuff(tree['stuff'])['skipped'] == 2
    # COCO-Object outputs in the same folder are not mistaken for stuffthingmaps
    convert_coco_object.convert(tree['coco'], tree['stuff'])
    assert prepare_benchmarks.prepare_coco_stuff(tree['stuff'])['images'] == 2


def test_cityscapes_label_ids_to_train_ids(tmp_path):
    tree = trees.make_cityscapes(str(tmp_path))
    prepare_benchmarks.main(['cityscapes', tree['root']])
    for (city, stem), expected in zip(tree['stems'], tree['expected']):
        out = osp.join(tree['root'], 'gtFine', 'val', city, stem + '_gtFine_labelTrainIds.png')
        np.testing.assert_array_equal(_png(out), expected)
    assert open(osp.join(tree['root'], 'val.txt')).read().split() == [f'{c}/{s}' for c, s in tree['stems']]
    assert not _no_tmp_files(tree['root'])


def test_layout_checks_name_missing_files(tmp_path):
    voc = trees.make_voc2012(str(tmp_path))
    ade = trees.make_ade20k(str(tmp_path))
    assert prepare_benchmarks.prepare_voc(osp.dirname(voc['root']))['images'] == 2
    assert prepare_benchmarks.prepare_ade20k(ade['root'])['images'] == 2
    os.remove(osp.join(voc['root'], 'SegmentationClass', '2007_000042.png'))
    with pytest.raises(DataPrepError, match='SegmentationClass/2007_000042.png'):
        prepare_benchmarks.prepare_voc(osp.dirname(voc['root']))
    os.remove(osp.join(ade['root'], 'annotations', 'validation', 'ADE_val_00000002.png'))
    with pytest.raises(SystemExit, match='ADE_val_00000002.png'):
        prepare_benchmarks.main(['ade20k', ade['root']])
    # a corrupt label map is reported with its path
    bad = osp.join(str(tmp_path), 'cityscapes', 'gtFine', 'val', 'x', 'x_000000_000000_gtFine_labelIds.png')
    trees.make_cityscapes(str(tmp_path))
    os.makedirs(osp.dirname(bad))
    with open(bad, 'wb') as f:
        f.write(b'not a png')
    os.makedirs(osp.join(str(tmp_path), 'cityscapes', 'leftImg8bit', 'val', 'x'), exist_ok=True)
    with pytest.raises(DataPrepError, match='x_000000_000000_gtFine_labelIds.png'):
        prepare_benchmarks.prepare_cityscapes(osp.join(str(tmp_path), 'cityscapes'))


def test_context_reports_missing_detail_api(tmp_path):
    pytest.importorskip('mmseg')
    try:
        import detail  # noqa: F401
        pytest.skip('the detail API is installed; this test covers its absence')
    except ImportError:
        pass
    ctx = trees.make_voc2010_context(str(tmp_path))
    json_path = tmp_path / 'trainval_merged.json'
    json_path.write_text('{}')
    with pytest.raises(DataPrepError, match="pascal_context.py needs a missing package.*detail"):
        prepare_benchmarks.prepare_context(osp.dirname(ctx['root']), str(json_path))
    with pytest.raises(DataPrepError, match='missing PASCAL-Context trainval_merged.json'):
        prepare_benchmarks.prepare_context(osp.dirname(ctx['root']), str(tmp_path / 'absent.json'))
