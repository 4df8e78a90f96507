"""The training-free family's protocol: SCLIP/NACLIP class-name files, SCLIPProtocolBaseline's scoring
(against a re-statement of SCLIP's postprocess_result) and the clip_baseline_sclip configs."""
import glob
import os.path as osp

import numpy as np
import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
BENCHES = ['voc21', 'context60', 'coco_object', 'voc20', 'cityscapes', 'context59', 'ade150', 'coco_stuff171']
BG_WORDS = ('sky, wall, tree, wood, grass, road, sea, river, mountain, sands, desk, bed, building, cloud, lamp, '
            'door, window, wardrobe, ceiling, shelf, curtain, stair, floor, hill, rail, fence').split(', ')
PERSON = ['person', 'person in shirt', 'person in jeans', 'person in dress', 'person in sweater',
          'person in skirt', 'person in jacket']
TV = ['television monitor', 'tv monitor', 'monitor', 'television', 'screen']


def _diff(bench):
    from mmseg_ovs.datasets.class_names import load_class_names
    ours, theirs = load_class_names(bench), load_class_names(bench, 'sclip')
    assert len(ours) == len(theirs), bench
    return {a[0]: b for a, b in zip(ours, theirs) if a != b}


def test_sclip_class_name_files_differ_as_published():
    assert _diff('voc21') == {'background': BG_WORDS, 'boat': ['ship'], 'diningtable': ['table'],
                              'person': PERSON, 'tvmonitor': TV}
    assert _diff('voc20') == {'boat': ['ship'], 'diningtable': ['table'], 'person': PERSON, 'tvmonitor': TV}
    assert _diff('coco_object') == {'background': BG_WORDS, 'person': PERSON + ['body']}
    assert _diff('context60') == {} and _diff('context59') == {}
    assert _diff('cityscapes') == {'traffic light': ['trafficlight'], 'traffic sign': ['trafficsign']}
    ade, stuff = _diff('ade150'), _diff('coco_stuff171')
    assert len(ade) == 15 and ade['chest of drawers'] == ['chestofdrawers'] and ade['crt screen'] == ['crtscreen']
    assert len(stuff) == 15 and stuff['hair drier'] == ['hairdrier'] and stuff['dining table'] == ['diningtable']
    assert all(len(v) == 1 and v[0] == k.replace(' ', '') for k, v in {**ade, **stuff}.items())


def test_proxyclip_class_name_files():
    """ProxyCLIP's files ('; '-separated, written here with ', '): SCLIP's, except a 17-word COCO-Object
    background line and no person/tv synonyms."""
    from mmseg_ovs.datasets.class_names import load_class_names
    for bench in BENCHES:
        proxy, sclip = load_class_names(bench, 'proxyclip'), load_class_names(bench, 'sclip')
        diff = {i: (a, b) for i, (a, b) in enumerate(zip(proxy, sclip)) if a != b}
        if bench in ('voc21', 'voc20'):
            off = 1 if bench == 'voc21' else 0
            assert diff == {14 + off: (['person'], PERSON), 19 + off: (['tvmonitor'], TV)}
        elif bench == 'coco_object':
            bg17 = [w for w in BG_WORDS if w not in ('lamp', 'door', 'window', 'wardrobe', 'ceiling', 'shelf',
                                                       'curtain', 'stair', 'fence')]
            assert diff == {0: (bg17, BG_WORDS), 1: (['person'], PERSON + ['body'])} and len(bg17) == 17
        else:
            assert diff == {}, bench


def test_clearclip_voc21_file():
    assert _diff_variant('voc21', 'clearclip') == {'boat': ['ship'], 'diningtable': ['table']}


def _diff_variant(bench, variant):
    from mmseg_ovs.datasets.class_names import load_class_names
    return {a[0]: b for a, b in zip(load_class_names(bench), load_class_names(bench, variant)) if a != b}


def sclip_postprocess_reference(seg_logits, query_idx, logit_scale, prob_thd, area_thd):
    """SCLIP clip_segmentor.py postprocess_result for one image, restated: seg_logits (Q, H, W) cosines."""
    seg_logits = seg_logits * logit_scale
    seg_logits = seg_logits.softmax(0)
    num_cls, num_queries = max(query_idx) + 1, len(query_idx)
    if num_cls != num_queries:
        seg_logits = seg_logits.unsqueeze(0)
        cls_index = torch.nn.functional.one_hot(torch.tensor(query_idx))
        cls_index = cls_index.T.view(num_cls, num_queries, 1, 1)
        seg_logits = (seg_logits * cls_index).max(1)[0]
    if area_thd is not None:
        predictions = torch.nn.functional.one_hot(seg_logits.argmax(0), num_cls).to(seg_logits.dtype)
        area_pred = predictions[:, :, 1:].sum((0, 1), keepdim=True)
        area_pred = (area_pred > area_thd * area_pred.sum()).to(seg_logits.dtype)
        seg_logits[1:] *= area_pred.transpose(0, -1)
    seg_pred = seg_logits.argmax(0, keepdim=True)
    seg_pred[seg_logits.max(0, keepdim=True)[0] < prob_thd] = 0
    return seg_logits, seg_pred


def _model(bench='voc21', **kw):
    import mmseg_ovs  # noqa: F401
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    tiny = Config.fromfile(osp.join(ROOT, 'configs', '_base_', 'clip', 'tiny_vit.py')).tiny_clip_cfg.to_dict()
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'benchmarks', 'clip_baseline_sclip', f'clip_vitb16_{bench}.py'))
    cfg.merge_from_dict(dict(model=dict(backbone=dict(model_name=None, model_cfg=tiny),
                                        text_encoder=dict(model_name=None, model_cfg=tiny),
                                        test_cfg=dict(crop_size=(48, 48), stride=(24, 24)),
                                        templates='single', **kw)))  # 1 template: fast (80 shipped)
    torch.manual_seed(0)
    return MODELS.build(cfg.model).eval()


@pytest.mark.parametrize('bench', ['voc21', 'coco_object'])
def test_sclip_protocol_baseline_equals_sclip_postprocess(bench):
    from mmseg.structures import SegDataSample
    from mmseg_ovs.datasets.class_names import load_class_names
    model = _model(bench)
    classes = load_class_names(bench, 'sclip')
    query_idx = [c for c, names in enumerate(classes) for _ in names]  # SCLIP get_cls_idx
    assert model.num_classes == len(classes) and model.slot_class.tolist() == query_idx
    if bench == 'coco_object':  # 'bed' is both a background word and a class, as published
        names = [n for ns in classes for n in ns]
        assert names.count('bed') == 2 and model.out_channels == len(names)
    x = torch.rand(1, 3, 70, 90) * 255
    meta = dict(ori_shape=(56, 72), img_shape=(70, 90))
    with torch.no_grad():
        out = model.test_step(dict(inputs=[x[0]], data_samples=[SegDataSample(metainfo=meta)]))[0]
        # SCLIP: per-query cosines averaged over the slide crops, bilinear to the original size
        prep = model.data_preprocessor(dict(inputs=[x[0]], data_samples=[SegDataSample(metainfo=meta)]))
        cos = model.inference(prep['inputs'], [meta])[0] / model.logit_scale
        cos = torch.nn.functional.interpolate(cos[None], size=(56, 72), mode='bilinear')[0]
    cfg = model
    ref_probs, ref_pred = sclip_postprocess_reference(cos, query_idx, cfg.logit_scale, cfg.prob_thresh,
                                                      cfg.area_thresh)
    torch.testing.assert_close(out.seg_logits.data, ref_probs, rtol=1e-5, atol=1e-6)
    assert torch.equal(out.pred_sem_seg.data, ref_pred)
    assert out.pred_sem_seg.data.shape == (1, 56, 72)


def test_sclip_protocol_thresholds_act():
    from mmseg.structures import SegDataSample
    x = torch.rand(1, 3, 64, 64) * 255
    preds = {}
    for thd in (0.0, 1.01):
        model = _model('voc21', prob_thresh=thd, area_thresh=None)
        with torch.no_grad():
            out = model.test_step(dict(inputs=[x[0]], data_samples=[SegDataSample(
                metainfo=dict(ori_shape=(64, 64), img_shape=(64, 64)))]))[0]
        preds[thd] = out.pred_sem_seg.data
    assert (preds[1.01] == 0).all()  # no probability reaches it: all background
    assert (preds[0.0] > 0).any()  # tiny random model: some foreground
    with pytest.raises(ValueError, match='prob_thresh, not bg_thresh'):
        _model('voc21', bg_thresh=0.5)


def test_sclip_protocol_configs():
    from mmengine.config import Config
    expected = dict(  # SCLIP configs/cfg_<bench>.py: (short side, logit scale, prob_thd, area_thd)
        voc21=(336, 65, 0.1, 0.1), context60=(336, 50, 0.1, None), coco_object=(336, 50, 0.1, None),
        voc20=(336, 40, 0.0, None), cityscapes=(560, 40, 0.0, None), context59=(336, 40, 0.0, None),
        ade150=(336, 40, 0.0, None), coco_stuff171=(448, 40, 0.0, None))
    paths = sorted(glob.glob(osp.join(ROOT, 'configs', 'benchmarks', 'clip_baseline_sclip', '*.py')))
    assert len(paths) == 8
    for path in paths:
        cfg = Config.fromfile(path)
        bench = cfg.bench
        short, scale, prob, area = expected[bench]
        m = cfg.model
        assert (m.type, m.class_names, m.class_names_variant, m.templates) == (
            'SCLIPProtocolBaseline', bench, 'sclip', 'imagenet'), path
        assert (m.logit_scale, m.prob_thresh, m.area_thresh, m.bg_thresh) == (scale, prob, area, None), path
        assert (m.test_cfg.mode, tuple(m.test_cfg.crop_size), tuple(m.test_cfg.stride)) == (
            'slide', (224, 224), (112, 112))
        resize = [t for t in cfg.test_pipeline if t.type == 'Resize']
        assert len(resize) == 1 and tuple(resize[0].scale) == (2048, short) and resize[0].keep_ratio
        names = [t.type for t in cfg.test_pipeline]
        assert names.index('LoadAnnotations') > names.index('Resize')  # scored at the original size
        assert cfg.test_dataloader.dataset.pipeline == cfg.test_pipeline
    assert np.isclose(expected['voc21'][1], 65)
