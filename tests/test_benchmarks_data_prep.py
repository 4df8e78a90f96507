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
import convert_pascal_context  # noqa: E402
import prepare_benchmarks  # noqa: E402
from bench_io import DataPrepError  # noqa: E402


def _png(path):
    return np.array(Image.open(path))


def _no_tmp_files(root):
    return [osp.join(d, f) for d, _, fs in os.walk(root) for f in fs if '.tmp' in f]


def test_coco_object_from_stuffthingmaps_default(tmp_path):
    """The field's COCO-Object (GroupViT's table): things -> 1..80, stuff and 255 -> 0, no ignore."""
    tree = trees.make_coco(str(tmp_path))
    lut = convert_coco_object.stuffthing_to_object_lut()
    # the table, id class by id class
    things = [i for i in range(90) if i not in (11, 25, 28, 29, 44, 65, 67, 68, 70, 82)]
    assert [int(lut[i]) for i in things] == list(range(1, 81))
    assert (lut[91:182] == 0).all() and lut[255] == 0
    for impossible in (11, 25, 28, 29, 44, 65, 67, 68, 70, 82, 90, 182, 254):
        assert lut[impossible] == convert_coco_object.INVALID
    # a miniature stuffthingmap with every valid id: each pixel maps as the table says
    every = np.array(things + list(range(91, 182)) + [255], np.uint8).reshape(1, -1)
    got = convert_coco_object.object_label_map(every)
    assert got.tolist() == [list(range(1, 81)) + [0] * 91 + [0]]

    # default CLI: in place on the COCO-Stuff root, *_instanceTrainIds.png next to the stuffthingmaps
    convert_coco_object.main([tree['stuff']])
    for name, expected in zip(tree['files'], tree['expected_object']):
        out = osp.join(tree['stuff'], 'annotations', 'val2017', name.replace('.jpg', '_instanceTrainIds.png'))
        lab = _png(out)
        assert lab.dtype == np.uint8
        np.testing.assert_array_equal(lab, expected)
        assert 255 not in lab
    assert not _no_tmp_files(tree['stuff'])
    # resumable; the outputs are not mistaken for stuffthingmaps
    assert convert_coco_object.convert_stuffthingmaps(tree['stuff']) == dict(written=0, skipped=2, images=2)
    # prepare_benchmarks' subcommand is the same route; a separate output root gets linked images
    out = str(tmp_path / 'obj_out')
    prepare_benchmarks.main(['coco_object', tree['stuff'], '-o', out])
    np.testing.assert_array_equal(
        _png(osp.join(out, 'annotations', 'val2017', '000000000285_instanceTrainIds.png')), tree['expected_object'][1])
    assert osp.islink(osp.join(out, 'images', 'val2017', '000000000139.jpg'))


def test_coco_object_stuffthingmap_bad_ids(tmp_path):
    tree = trees.make_coco(str(tmp_path))
    bad = osp.join(tree['stuff'], 'annotations', 'val2017', '000000000139.png')
    trees._label(bad, trees._blocks([0, 11, 90]))  # unused thing id 11 and the unused 90
    with pytest.raises(SystemExit, match=r'000000000139.png: ids \[11, 90\] are not COCO-Stuff'):
        convert_coco_object.main([tree['stuff']])
    with pytest.raises(DataPrepError, match='missing COCO-Stuff val2017 stuffthingmaps'):
        convert_coco_object.convert_stuffthingmaps(str(tmp_path / 'nowhere'))


def test_coco_object_from_instances(tmp_path):
    from pycocotools.coco import COCO
    tree = trees.make_coco(str(tmp_path))
    out = str(tmp_path / 'coco_object_out')
    stats = convert_coco_object.convert_from_instances(tree['coco'], out)
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
    assert convert_coco_object.convert_from_instances(tree['coco'], out) == dict(written=0, skipped=2, images=2)
    assert os.stat(osp.join(out, 'annotations', 'val2017',
                            '000000000139_instanceTrainIds.png')).st_mtime_ns == mtime

    # --crowd ignore marks crowd regions 255
    out2 = str(tmp_path / 'ignore')
    convert_coco_object.main([tree['coco'], '-o', out2, '--from-instances', '--crowd', 'ignore', '--copy'])
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
        convert_coco_object.convert_from_instances(tree['coco'], str(tmp_path / 'o1'))
    # malformed json -> error naming the json
    with open(ann, 'w') as f:
        f.write('{"images": [')
    with pytest.raises(DataPrepError, match='instances_val2017.json'):
        convert_coco_object.convert_from_instances(tree['coco'], str(tmp_path / 'o2'))
    # wrong category set
    data['categories'] = data['categories'][:5]
    with open(ann, 'w') as f:
        json.dump(data, f)
    with pytest.raises(DataPrepError, match='expected 80 thing categories'):
        convert_coco_object.convert_from_instances(tree['coco'], str(tmp_path / 'o3'))
    with pytest.raises(SystemExit, match='missing COCO val2017 image directory'):
        convert_coco_object.main([str(tmp_path / 'nowhere'), '-o', str(tmp_path / 'o4'), '--from-instances'])
    with pytest.raises(SystemExit, match='--from-instances needs -o'):
        convert_coco_object.main([tree['coco'], '--from-instances'])


def test_coco_stuff_uses_mmseg_table(tmp_path):
    tree = trees.make_coco(str(tmp_path))
    stats = prepare_benchmarks.prepare_coco_stuff(tree['stuff'])
    assert stats == dict(images=2, written=2, skipped=0)
    for name, expected in zip(tree['files'], tree['expected_stuff']):
        out = osp.join(tree['stuff'], 'annotations', 'val2017', name.replace('.jpg', '_labelTrainIds.png'))
        np.testing.assert_array_equal(_png(out), expected)
    assert prepare_benchmarks.prepare_coco_stuff(tree['stuff'])['skipped'] == 2
    # COCO-Object outputs in the same folder are not mistaken for stuffthingmaps
    convert_coco_object.convert_stuffthingmaps(tree['stuff'])
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


def _detail_get_mask(data, img):
    """Independent re-statement of detail-api's ``Detail.getMask(img)`` (class mask): zeros, then every
    ``annos_segmentation`` entry of the image in file order, its category id painted over its mask."""
    from pycocotools import mask as mask_utils
    mask = np.zeros((img['height'], img['width']))
    for ann in data['annos_segmentation']:
        if ann['image_id'] == img['image_id']:
            mask[np.nonzero(mask_utils.decode(ann['segmentation']))] = ann['category_id']
    return mask


def test_pascal_context_from_trainval_merged_json(tmp_path):
    ctx = trees.make_voc2010_context(str(tmp_path))
    stats = prepare_benchmarks.prepare_context(ctx['devkit'], ctx['json'])
    assert (stats['train'], stats['val'], stats['written'], stats['skipped']) == (1, 2, 3, 0)
    out = osp.join(ctx['root'], 'SegmentationClassContext')
    data = json.load(open(ctx['json']))
    mapping = sorted([0] + list(convert_pascal_context.CONTEXT59_CATEGORY_IDS))  # mmseg's _mapping
    assert len(mapping) == 60 and mapping[1:] == list(convert_pascal_context.CONTEXT59_CATEGORY_IDS)
    for stem, expected in zip(ctx['ids'] + ctx['train_ids'], ctx['maps'] + ctx['train_maps']):
        lab = _png(osp.join(out, stem + '.png'))
        assert lab.dtype == np.uint8
        np.testing.assert_array_equal(lab, expected)
        # the mmseg converter's route: getMask, then np.digitize over the sorted 60-id table
        img = next(i for i in data['images'] if i['file_name'] == stem + '.jpg')
        raw = _detail_get_mask(data, img)
        ref = np.digitize(raw.ravel(), mapping, right=True).reshape(raw.shape)
        np.testing.assert_array_equal(lab, ref)
    split_dir = osp.join(ctx['root'], 'ImageSets', 'SegmentationContext')
    assert open(osp.join(split_dir, 'val.txt')).read().split() == sorted(ctx['ids'])
    assert open(osp.join(split_dir, 'train.txt')).read().split() == ctx['train_ids']
    assert not _no_tmp_files(ctx['root'])
    # the 59 ids are the cls_context59 classes in order (names of the 459-class labels.txt)
    from mmseg_ovs.datasets.class_names import load_class_names
    names = [n[0] for n in load_class_names('context59')]
    for cat in data['categories']:
        assert names[mapping.index(cat['category_id']) - 1] == cat['name']
    # resumable
    again = convert_pascal_context.convert(ctx['devkit'], ctx['json'])
    assert (again['written'], again['skipped']) == (0, 3)


def test_pascal_context_bad_inputs(tmp_path):
    ctx = trees.make_voc2010_context(str(tmp_path))
    data = json.load(open(ctx['json']))
    # an id outside the 59 classes (3 = an unevaluated 459-class id) -> error naming the image
    data['annos_segmentation'][3]['category_id'] = 3
    bad = tmp_path / 'bad.json'
    bad.write_text(json.dumps(data))
    with pytest.raises(SystemExit, match=r'2008_000003.jpg has category ids outside the 59.*\[3\]'):
        convert_pascal_context.main([ctx['devkit'], str(bad)])
    # a mask of the wrong size -> error naming image and annotation
    data = json.load(open(ctx['json']))
    data['annos_segmentation'][0]['segmentation'] = trees._rle(np.ones((5, 5), bool))
    bad.write_text(json.dumps(data))
    with pytest.raises(DataPrepError, match=r'2008_000002.jpg annotation 1: mask size \(5, 5\)'):
        convert_pascal_context.convert(ctx['devkit'], str(bad))
    # orphan annotations are skipped and counted
    data = json.load(open(ctx['json']))
    data['annos_segmentation'].append(dict(data['annos_segmentation'][0], id=99, image_id=1))
    bad.write_text(json.dumps(data))
    assert convert_pascal_context.convert(ctx['devkit'], str(bad))['orphan_annotations'] == 1
    bad.write_text('{"images": []')
    with pytest.raises(DataPrepError, match='malformed PASCAL-Context json.*bad.json'):
        convert_pascal_context.convert(ctx['devkit'], str(bad))
    bad.write_text('{"images": []}')
    with pytest.raises(DataPrepError, match='no list "annos_segmentation"'):
        convert_pascal_context.convert(ctx['devkit'], str(bad))
    with pytest.raises(SystemExit, match='missing PASCAL-Context trainval_merged.json'):
        prepare_benchmarks.main(['context', ctx['devkit'], str(tmp_path / 'absent.json')])
