"""DenseCLIPBaseline (training-free dense CLIP) with a tiny random open_clip model."""
import os.path as osp

import pytest
import torch
import torch.nn.functional as F

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.fixture(scope='module')
def tiny_cfg(tiny_clip_cfg):
    return tiny_clip_cfg


def build(tiny_cfg, **kwargs):
    import mmseg_ovs  # noqa: F401
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    torch.manual_seed(0)
    cfg = dict(
        type='DenseCLIPBaseline',
        backbone=dict(type='OpenCLIPViT', model_cfg=tiny_cfg),
        text_encoder=dict(type='OpenCLIPTextEncoder', model_cfg=tiny_cfg),
        data_preprocessor=dict(type='SegDataPreProcessor', mean=[0., 0., 0.], std=[1., 1., 1.]))
    cfg.update(kwargs)
    return MODELS.build(cfg).eval()


def _diag_attention(block, x):
    """Each token attends only to itself: the MHA output is out_proj(v) (independent of our code)."""
    y = block.ln_1(x)
    mask = torch.full((x.shape[1], x.shape[1]), float('-inf'))
    mask.fill_diagonal_(0.)
    return block.attn(y, y, y, need_weights=False, attn_mask=mask)[0]


@pytest.mark.parametrize('mode', ['value', 'plain', 'pixelclip'])
def test_dense_modes(tiny_cfg, mode):
    model = build(tiny_cfg, class_names=['cat', 'dog'], dense_mode=mode)
    img = torch.randn(2, 3, 48, 80)
    with torch.no_grad():
        feats = model.extract_feat(img)
        bb = model.backbone
        if mode == 'plain':
            ref = bb.dense_features(img)
        else:
            x = bb.forward_blocks(bb.embed(img), 0, bb.num_layers - 1)
            blk = bb.blocks[-1]
            v = _diag_attention(blk, x)
            if mode == 'pixelclip':
                v = v + x[:, :1]
                v = v + blk.mlp(blk.ln_2(v))
            ref = bb.project(v[:, 1:]).transpose(1, 2).reshape(2, -1, *bb.grid_size(img))
    p = tiny_cfg['vision_cfg']['patch_size']
    assert feats.shape == (2, tiny_cfg['embed_dim'], 48 // p, 80 // p)
    torch.testing.assert_close(feats, F.normalize(ref, dim=1), atol=1e-5, rtol=1e-5)


def test_logits_synonyms_and_background(tiny_cfg):
    model = build(tiny_cfg, class_names=[['background'], ['cat', 'kitty'], ['dog']], bg_thresh=0.6,
                  logit_scale=50.0, templates=['a photo of a {}.', 'art of the {}.'])
    feats = F.normalize(torch.randn(1, tiny_cfg['embed_dim'], 4, 4), dim=1)
    with torch.no_grad():
        out = model.class_logits(feats)
        te = model.text_encoder
        emb = torch.stack([te.compute_class_embeddings([n])[0] for n in ('cat', 'kitty', 'dog')])
    # synonyms: the mean of the normalised synonym embeddings (the text encoder, as every segmentor)
    emb = torch.stack([F.normalize(emb[:2].mean(0), dim=0), emb[2]])
    fg = torch.einsum('bchw,nc->bnhw', feats, emb) * 50.0
    torch.testing.assert_close(out[:, 1:], fg.softmax(1), atol=1e-5, rtol=1e-5)
    assert (out[:, 0] == 0.6).all()
    with pytest.raises(ValueError, match='needs "background" as the first class'):
        build(tiny_cfg, class_names=['cat', 'dog'], bg_thresh=0.5)


def test_slide_matches_mmseg_and_background_threshold(tiny_cfg):
    from mmseg.models.segmentors import EncoderDecoder
    from mmseg.structures import SegDataSample
    model = build(tiny_cfg, class_names='voc21', bg_thresh=0.5,
                  test_cfg=dict(mode='slide', crop_size=(32, 32), stride=(20, 20), slide_batch=3))
    img = torch.randn(1, 3, 50, 70)
    metas = [dict(img_shape=(50, 70), ori_shape=(50, 70), pad_shape=(50, 70), padding_size=[0, 0, 0, 0])]
    with torch.no_grad():
        ours = model.slide_inference(img, [dict(m) for m in metas])
        # mmseg's crop loop on the per-crop logits resized to the crop (what mmseg's heads return)
        class _PerCrop:
            test_cfg, out_channels = model.test_cfg, model.out_channels

            def encode_decode(self, x, metas):
                return F.interpolate(model.encode_decode(x, metas), size=x.shape[-2:], mode='bilinear',
                                     align_corners=False)
        ref = EncoderDecoder.slide_inference(_PerCrop(), img, [dict(m) for m in metas])
    assert ours.shape == (1, 21, 50, 70)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)
    # threshold 1.0: no class reaches it -> all background; 0.0: never background
    sample = SegDataSample(metainfo=dict(metas[0], ori_shape=(25, 35)))
    for thr, check in ((1.0, lambda p: (p == 0).all()), (0.0, lambda p: (p > 0).all())):
        model.bg_thresh = thr
        pred = model.predict(img, [sample.clone()])[0].pred_sem_seg.data
        assert pred.shape == (1, 25, 35) and check(pred)


def test_whole_squash_and_feature_size(tiny_cfg):
    model = build(tiny_cfg, class_names='voc20', test_cfg=dict(mode='whole', squash_size=(64, 64),
                                                               feature_size=(8, 8)))
    with torch.no_grad():
        logits = model.inference(torch.randn(2, 3, 40, 90), [{}] * 2)  # at the feature size
        pred = model.predict(torch.randn(2, 3, 40, 90))  # resized once to the image
        feats = model.extract_feat(torch.randn(1, 3, 64, 64))
    assert logits.shape == (2, 20, 8, 8) and feats.shape[-2:] == (8, 8)
    assert pred[0].seg_logits.data.shape == (20, 40, 90)
    with pytest.raises(ValueError, match='dense_mode'):
        build(tiny_cfg, dense_mode='nope')
    with pytest.raises(NotImplementedError):
        model.loss(None, None)
