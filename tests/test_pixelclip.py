"""PixelCLIP unit tests (tiny random models, synthetic masks; the numerical parity lives in
tests/parity/test_pixelclip_parity.py)."""
import json
import os.path as osp

import numpy as np
import pytest
import torch


# ------------------------------------------------------------------------------------------ helpers
@pytest.fixture(scope='module')
def tiny_clip_cfg():
    """A tiny QuickGELU open_clip CLIP (random weights)."""
    return dict(embed_dim=32, quick_gelu=True,
                vision_cfg=dict(image_size=64, patch_size=8, width=64, layers=3, head_width=16),
                text_cfg=dict(context_length=77, vocab_size=49408, width=64, heads=4, layers=2))


def tiny_segmentor(tiny_clip_cfg, **kw):
    import mmseg_ovs  # noqa: F401
    from mmseg.registry import MODELS
    cfg = dict(type='PixelCLIPSegmentor',
               backbone=dict(type='PixelCLIPDenseViT', model_cfg=tiny_clip_cfg),
               text_encoder=dict(type='OpenCLIPTextEncoder', model_cfg=tiny_clip_cfg),
               decode_head=dict(type='OnlineClusterHead', num_clusters=8, mask_resolution=(32, 32),
                                decoder=dict(type='PixelCLIPMaskDecoder', mid_channels=(16, 16, 16))),
               clip_resolution=(64, 64), feature_size=(16, 16), class_names=['cat', 'dog', 'sky'],
               input_channel_order='rgb')
    cfg.update(kw)
    torch.manual_seed(0)
    return MODELS.build(cfg)


def random_masks(n, h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    masks = torch.zeros(n, h, w, dtype=torch.bool)
    for i in range(n):  # test-data construction only
        y0, x0 = torch.randint(0, h // 2, (2,), generator=g).tolist()
        dy, dx = torch.randint(4, h // 2, (2,), generator=g).tolist()
        masks[i, y0:y0 + dy, x0:x0 + dx] = True
    return masks


# ------------------------------------------------------------------------------------------ sinkhorn
def test_sinkhorn_equipartition_and_softmax_init():
    from mmseg_ovs.models.heads.sinkhorn import distributed_sinkhorn
    torch.manual_seed(0)
    logits = 100 * (0.2 + 0.05 * torch.randn(300, 16))
    q = distributed_sinkhorn(logits)
    assert torch.allclose(q.sum(1), torch.ones(300), atol=1e-5)
    # cluster masses become close to uniform (equipartition)
    mass = q.sum(0)
    assert (mass.max() / mass.min()) < 1.5
    # empty input: no crash, empty output
    assert distributed_sinkhorn(torch.zeros(0, 16)).shape == (0, 16)


# ------------------------------------------------------------------------------------------ head
def test_cluster_targets_union_overlap_and_empty():
    from mmseg_ovs.models.heads.cluster_targets import build_cluster_targets
    torch.manual_seed(0)
    feat = torch.randn(3, 8, 5, 5)
    emb = torch.randn(4, 8)
    m0 = random_masks(6, 40, 40)
    m0[1] = m0[0]  # duplicate: two overlapping masks
    masks = [m0, torch.zeros(0, 40, 40, dtype=torch.bool), random_masks(3, 40, 40, 1)]
    t, det = build_cluster_targets(feat, masks, emb, 100.0, (20, 20), return_details=True)
    assert t.shape == (3, 4, 20, 20)
    assert t[1].sum() == 0  # image without masks
    # union: every kept mask is contained in its assigned cluster's target
    down = det['downsized_masks'][0][det['keep'][0]]
    hard = det['hard_assignment'][:down.shape[0]]
    assert bool((t[0][hard].bool() | ~down).all())
    # a whole batch without masks trains without crashing
    t2 = build_cluster_targets(feat, [torch.zeros(0, 40, 40, dtype=torch.bool)] * 3, emb, 100.0, (20, 20))
    assert t2.sum() == 0


def test_head_loss_zero_masks_is_finite():
    import mmseg_ovs  # noqa: F401
    from mmseg.registry import MODELS
    head = MODELS.build(dict(type='OnlineClusterHead', num_clusters=4, mask_resolution=(16, 16),
                             decoder=dict(type='PixelCLIPMaskDecoder', mid_channels=(16, 16, 16))))
    preds = torch.randn(2, 4, 16, 16, requires_grad=True)
    loss, valid = head.masked_bce(preds, torch.zeros(2, 4, 16, 16))
    loss.backward()
    assert loss.item() == 0 and valid.sum() == 0 and torch.isfinite(preds.grad).all()


# ------------------------------------------------------------------------------------------ segmentor
def test_segmentor_train_step_ema_and_zero_masks(tiny_clip_cfg):
    from mmseg.structures import SegDataSample
    model = tiny_segmentor(tiny_clip_cfg).train()
    # trainable set: attention projections + positional embedding, prompts, decoder; text frozen
    train = {n for n, p in model.named_parameters() if p.requires_grad}
    assert 'decode_head.prompt_tokens' in train and 'backbone.visual.positional_embedding' in train
    assert all(('.attn.' in n or 'positional_embedding' in n) for n in train if n.startswith('backbone'))
    assert not any(n.startswith(('text_encoder', 'teacher')) for n in train)
    assert not any('mlp' in n or 'ln_' in n for n in train)
    imgs = torch.randint(0, 255, (2, 6, 48, 48)).float()
    samples = [SegDataSample(), SegDataSample()]
    samples[0].unlabeled_masks = random_masks(5, 48, 48)
    samples[1].unlabeled_masks = torch.zeros(0, 48, 48, dtype=torch.bool)  # image without masks
    with torch.no_grad():  # make student != teacher
        model.backbone.visual.positional_embedding.add_(1.0)
    t_before = model.teacher.visual.positional_embedding.clone()
    s = model.backbone.visual.positional_embedding
    expected = t_before.clone().mul_(0.999).add_(s, alpha=1 - 0.999)
    losses = model.loss(imgs, samples)
    assert torch.equal(model.teacher.visual.positional_embedding, expected)  # EMA before teacher fwd
    losses['loss_masks'].backward()
    assert torch.isfinite(losses['loss_masks']) and losses['loss_masks'] > 0
    assert model.decode_head.prompt_tokens.grad is not None
    assert model.backbone.visual.transformer.resblocks[0].attn.in_proj_weight.grad is not None
    # a batch with no mask at all: loss 0, finite gradients
    model.zero_grad()
    for smp in samples:
        smp.unlabeled_masks = torch.zeros(0, 48, 48, dtype=torch.bool)
    losses = model.loss(imgs, samples)
    losses['loss_masks'].backward()
    assert losses['loss_masks'].item() == 0
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_segmentor_predict_batch_and_fp16_classifier(tiny_clip_cfg):
    from mmseg.structures import SegDataSample
    model = tiny_segmentor(tiny_clip_cfg).eval()
    x = torch.randint(0, 255, (2, 3, 40, 56)).float()
    ds = [SegDataSample(metainfo=dict(ori_shape=(30, 42), img_shape=(40, 56))),
          SegDataSample(metainfo=dict(ori_shape=(20, 20), img_shape=(32, 32)))]
    with torch.no_grad():
        out = model.predict(x, ds)
        single = model.predict(x[1:, :, :32, :32], [SegDataSample(metainfo=dict(ori_shape=(20, 20),
                                                                                img_shape=(32, 32)))])
    assert out[0].seg_logits.data.shape == (3, 30, 42) and out[1].pred_sem_seg.data.shape == (1, 20, 20)
    torch.testing.assert_close(out[1].seg_logits.data, single[0].seg_logits.data, atol=1e-5, rtol=1e-5)
    fp32 = model.text_encoder().clone()
    model.text_encoder.cache_dtype = 'float16'
    model.text_encoder.invalidate_cache()
    fp16 = model.text_encoder()
    assert fp16.dtype == torch.float32 and 0 < (fp16 - fp32).abs().max() < 1e-2


def test_init_weights_resyncs_teacher_and_prompts(tiny_clip_cfg):
    model = tiny_segmentor(tiny_clip_cfg)
    ref = model.decode_head.prompt_tokens
    with torch.no_grad():
        model.text_encoder.token_embedding.weight.mul_(2)
        model.backbone.visual.conv1.weight.add_(1)
    model.init_weights()
    assert model.decode_head.prompt_tokens is ref  # same Parameter (optimizer keeps it)
    ids = model.decode_head.prompt_word_ids
    torch.testing.assert_close(ref.data, model.text_encoder.token_embedding.weight[ids])
    assert torch.equal(model.teacher.visual.conv1.weight, model.backbone.visual.conv1.weight)


# ------------------------------------------------------------------------------------------ data
def write_sa1b(tmp_path, n_masks=130, h=60, w=80, stem='sa_1'):
    from pycocotools import mask as mask_utils
    from PIL import Image
    rng = np.random.default_rng(0)
    masks = np.zeros((h, w, n_masks), np.uint8)
    for i in range(n_masks):
        y0, x0 = rng.integers(0, h - 10), rng.integers(0, w - 10)
        masks[y0:y0 + rng.integers(3, 30), x0:x0 + rng.integers(3, 30), i] = 1
    masks[:, :, 1] = masks[:, :, 0]  # overlapping duplicates stay separate
    rles = mask_utils.encode(np.asfortranarray(masks))
    anns = [dict(segmentation=dict(size=r['size'], counts=r['counts'].decode()), area=1) for r in rles]
    (tmp_path / 'images' / 'sh').mkdir(parents=True, exist_ok=True)
    (tmp_path / 'annotations' / 'sh').mkdir(parents=True, exist_ok=True)
    # the image encodes mask 2 in its red channel, to check alignment after geometric transforms
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = masks[:, :, min(2, n_masks - 1)] * 255
    Image.fromarray(img).save(tmp_path / 'images' / 'sh' / f'{stem}.png')
    with open(tmp_path / 'annotations' / 'sh' / f'{stem}.json', 'w') as f:
        json.dump(dict(image=dict(height=h, width=w), annotations=anns), f)
    return masks.transpose(2, 0, 1).astype(bool)


def test_mask_pipeline_alignment_cutout_and_packing(tmp_path):
    import mmseg_ovs  # noqa: F401
    from mmseg.registry import TRANSFORMS
    from mmseg_ovs.datasets.transforms.loading_unlabeled_masks import unpack_masks
    from mmseg_ovs.models.segmentors.pixelclip_segmentor import unpack_mask_bits
    masks = write_sa1b(tmp_path)
    load = TRANSFORMS.build(dict(type='LoadUnlabeledMasks'))
    res = load(dict(img_path=str(tmp_path / 'images/sh/sa_1.png'),
                    mask_path=str(tmp_path / 'annotations/sh/sa_1.json'), img_shape=(60, 80)))
    assert res['unlabeled_masks'].shape == (60, 80, 17) and res['num_unlabeled_masks'] == 130
    np.testing.assert_array_equal(unpack_masks(res['unlabeled_masks'], 130).transpose(2, 0, 1), masks)
    from PIL import Image
    res['img'] = np.asarray(Image.open(tmp_path / 'images/sh/sa_1.png'))[..., ::-1].copy()  # BGR
    np.random.seed(3)
    geo = TRANSFORMS.build(dict(type='ResizeCropFlipWithMasks', short_edges=120, max_size=400,
                                crop_size=(64, 64), flip_prob=1.0))
    res = geo(res)
    m = unpack_masks(res['unlabeled_masks'], 130)
    # nearest-resized image channel and mask 2 went through the same geometry
    red = res['img'][..., 2] > 127
    assert (red == m[..., 2]).mean() > 0.97
    strong = TRANSFORMS.build(dict(type='PixelCLIPStrongView'))
    res = strong(res)
    y0, y1, x0, x1 = res['cutout_box']
    m = unpack_masks(res['unlabeled_masks'], 130)
    assert not m[y0:y1, x0:x1].any() and (res['img_strong'][y0:y1, x0:x1] == 0).all()
    packed = TRANSFORMS.build(dict(type='PackPixelCLIPInputs'))(res)
    assert packed['inputs'].shape == (6, 64, 64)
    ds = packed['data_samples']
    got = unpack_mask_bits(ds.unlabeled_masks_packed, ds.metainfo['num_unlabeled_masks'])
    assert torch.equal(got, torch.from_numpy(m.transpose(2, 0, 1).copy()))


def test_mask_loading_errors(tmp_path):
    import mmseg_ovs  # noqa: F401
    from mmseg.registry import TRANSFORMS
    load = TRANSFORMS.build(dict(type='LoadUnlabeledMasks'))
    bad = tmp_path / 'bad.json'
    bad.write_text('{not json')
    with pytest.raises(ValueError, match='bad.json'):
        load(dict(mask_path=str(bad), img_shape=(10, 10)))
    write_sa1b(tmp_path, n_masks=3)
    with pytest.raises(ValueError, match='do not|but the image'):
        load(dict(mask_path=str(tmp_path / 'annotations/sh/sa_1.json'), img_shape=(30, 30)))
    empty = tmp_path / 'empty.json'
    empty.write_text('{"annotations": []}')
    res = load(dict(mask_path=str(empty), img_shape=(10, 12)))
    assert res['num_unlabeled_masks'] == 0 and res['unlabeled_masks'].shape == (10, 12, 0)


def test_sa1b_dataset_lists_and_skips(tmp_path):
    import mmseg_ovs  # noqa: F401
    from mmseg.registry import DATASETS
    write_sa1b(tmp_path, n_masks=2, stem='a')
    write_sa1b(tmp_path, n_masks=2, stem='b')
    (tmp_path / 'annotations/sh/b.json').unlink()
    ds = DATASETS.build(dict(type='SA1BDataset', data_root=str(tmp_path), img_suffix='.png',
                             pipeline=[], serialize_data=False))
    assert len(ds) == 1 and ds[0]['mask_path'].endswith('a.json')


# ------------------------------------------------------------------------------------------ prep/configs
def test_dino_kmeans_masks_partition(tmp_path):
    from PIL import Image
    import mmseg_ovs  # noqa: F401
    from mmseg.registry import TRANSFORMS
    from data_prep.dino_masks import build_dino, dino_masks, run
    torch.manual_seed(0)
    model = build_dino(None)
    img = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    masks = dino_masks(model, img, n_clusters=4)
    assert masks.shape[1:] == (48, 64) and 1 <= masks.shape[0] <= 4
    assert (masks.sum(0) == 1).all()  # a partition
    (tmp_path / 'img' / 'a').mkdir(parents=True)
    Image.fromarray(img).save(tmp_path / 'img' / 'a' / 'x.jpg')
    (tmp_path / 'img' / 'a' / 'broken.jpg').write_bytes(b'not an image')
    written, skipped, failed = run(str(tmp_path / 'img'), str(tmp_path / 'out'), model, n_clusters=4)
    assert (written, skipped, len(failed)) == (1, 0, 1)
    assert run(str(tmp_path / 'img'), str(tmp_path / 'out'), model, n_clusters=4)[:2] == (0, 1)  # resumable
    res = TRANSFORMS.build(dict(type='LoadUnlabeledMasks'))(
        dict(mask_path=str(tmp_path / 'out' / 'a' / 'x.json'), img_shape=(48, 64)))
    assert res['num_unlabeled_masks'] >= 1


def test_sa1b_subset_resizes_masks_with_images(tmp_path):
    import io
    import tarfile
    from PIL import Image
    from data_prep.sa1b_subset import process_shard
    src = tmp_path / 'src'
    masks = write_sa1b(src, n_masks=4, h=40, w=60, stem='sa_7')
    tar_path = tmp_path / 'sa_000020.tar'
    with tarfile.open(tar_path, 'w') as tar:
        buf = io.BytesIO()
        Image.open(src / 'images/sh/sa_7.png').save(buf, format='JPEG')
        info = tarfile.TarInfo('sa_7.jpg')
        info.size = len(buf.getvalue())
        tar.addfile(info, io.BytesIO(buf.getvalue()))
        tar.add(src / 'annotations/sh/sa_7.json', arcname='sa_7.json')
    out = tmp_path / 'out'
    assert process_shard(str(tar_path), str(out)) == 1
    assert process_shard(str(tar_path), str(out)) == 0  # resumable
    ann = json.load(open(out / 'annotations/sa_000020/sa_7.json'))
    assert ann['annotations'][0]['segmentation']['size'] == [20, 30]
    assert Image.open(out / 'images/sa_000020/sa_7.jpg').size == (30, 20)


@pytest.mark.parametrize('name', ['pixelclip_vitb16_sa1b', 'pixelclip_vitb16_dino',
                                  'pixelclip_convnextb_sa1b', 'pixelclip_convnextb_dino'])
def test_configs_recipe(project_root, name):
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(project_root, 'configs/pixelclip', name + '.py'))
    assert cfg.default_scope == 'mmseg' and cfg.custom_imports.imports == ['mmseg_ovs']
    assert cfg.train_dataloader.batch_size * 4 == 48 and cfg.train_cfg.max_iters == 10000
    opt = cfg.optim_wrapper
    assert opt.optimizer.lr == 2e-4 and opt.optimizer.weight_decay == 1e-4 and opt.clip_grad.max_norm == 0.01
    assert opt.paramwise_cfg.custom_keys['backbone'].lr_mult == 0.01
    assert opt.paramwise_cfg.custom_keys['decode_head.prompt_tokens'].lr_mult == 10
    assert cfg.param_scheduler[0].eta_min_ratio == 0.5
    vit = 'vitb16' in name
    assert cfg.model.decode_head.eps == (100.0 if vit else 1.0)
    assert tuple(cfg.model.clip_resolution) == ((320, 320) if vit else (640, 640))
    assert cfg.model.finetune == ('attention' if vit else 'full')
    masks = cfg.train_dataloader.dataset.data_prefix.mask_path
    assert cfg.train_dataloader.dataset.ann_file.endswith('index.npz')  # a sample index: no folder walk
    if 'dino' in name:  # online DINO k-means masks (the paper's); no mask files are read
        assert cfg.model.data_preprocessor.type == 'OnlineDINOMaskPreProcessor'
        assert cfg.model.data_preprocessor.num_clusters == 16
        assert cfg.train_dataloader.dataset.with_masks is False
        assert not any(t['type'] == 'LoadUnlabeledMasks' for t in cfg.train_dataloader.dataset.pipeline)
    else:
        assert masks == 'annotations'


def test_convnext_student_full_finetune():
    """ConvNeXt path (tiny timm convnext_atto through open_clip): whole tower trains, EPS 1."""
    from mmseg.structures import SegDataSample
    import mmseg_ovs  # noqa: F401
    from mmseg.registry import MODELS
    cfg = dict(embed_dim=32, vision_cfg=dict(timm_model_name='convnext_atto', timm_model_pretrained=False,
                                             timm_pool='', timm_proj='linear', image_size=64),
               text_cfg=dict(context_length=77, vocab_size=49408, width=64, heads=4, layers=2))
    model = MODELS.build(dict(
        type='PixelCLIPSegmentor', backbone=dict(type='OpenCLIPConvNeXt', model_cfg=cfg),
        text_encoder=dict(type='OpenCLIPTextEncoder', model_cfg=cfg),
        decode_head=dict(type='OnlineClusterHead', num_clusters=8, eps=1.0, mask_resolution=(32, 32)),
        finetune='full', clip_resolution=(64, 64), class_names=['a', 'b'], input_channel_order='rgb'))
    assert all(p.requires_grad for p in model.backbone.parameters())
    sample = SegDataSample()
    sample.unlabeled_masks = random_masks(4, 48, 48)
    losses = model.train().loss(torch.rand(1, 6, 48, 48) * 255, [sample])
    losses['loss_masks'].backward()
    assert torch.isfinite(losses['loss_masks'])
    assert model.backbone.visual.trunk.stem[0].weight.grad is not None
    pred = model.eval().predict(torch.rand(1, 3, 48, 48) * 255)
    assert pred[0].seg_logits.data.shape == (2, 48, 48)


def test_runner_two_iterations_with_recipe(tmp_path, tiny_clip_cfg, project_root):
    """The shipped ViT config trains end to end (tiny model, synthetic SA-1B folder) and its optimizer
    applies the recipe's lr multipliers and norm weight decay."""
    from mmengine.config import Config
    from mmengine.runner import Runner
    for i in range(2):
        write_sa1b(tmp_path, n_masks=20, h=60, w=80, stem=f'img{i}')
    cfg = Config.fromfile(osp.join(project_root, 'configs/pixelclip/pixelclip_vitb16_sa1b.py'))
    cfg.work_dir = str(tmp_path / 'work')
    cfg.model.backbone = dict(type='PixelCLIPDenseViT', model_cfg=tiny_clip_cfg)
    cfg.model.text_encoder = dict(type='OpenCLIPTextEncoder', model_cfg=tiny_clip_cfg)
    cfg.model.decode_head.num_clusters = 8
    cfg.model.decode_head.mask_resolution = (32, 32)
    cfg.model.clip_resolution = (64, 64)
    cfg.model.class_names = ['cat', 'dog']
    cfg.model.data_preprocessor.size = (48, 48)
    cfg.train_dataloader.update(batch_size=2, num_workers=0, persistent_workers=False)
    cfg.train_dataloader.dataset.update(data_root=str(tmp_path), ann_file='', img_suffix='.png')
    cfg.train_dataloader.dataset.pipeline[2].update(short_edges=64, max_size=200, crop_size=(48, 48))
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=2, val_interval=100)
    cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
    cfg.test_dataloader = cfg.test_evaluator = cfg.test_cfg = None
    cfg.param_scheduler[0].update(T_max=2, end=2)
    cfg.default_hooks.logger.interval = 1
    runner = Runner.from_cfg(cfg)
    model = runner.model
    teacher0 = model.teacher.visual.positional_embedding.clone()
    runner.train()
    groups = runner.optim_wrapper.optimizer.param_groups
    by_param = {id(p): g for g in groups for p in g['params']}
    assert by_param[id(model.decode_head.prompt_tokens)]['initial_lr'] == pytest.approx(2e-3)
    attn = model.backbone.visual.transformer.resblocks[0].attn.in_proj_weight
    assert by_param[id(attn)]['initial_lr'] == pytest.approx(2e-6)
    gn = model.decode_head.decoder.conv1.double_conv[1].weight
    assert by_param[id(gn)]['weight_decay'] == 0
    assert by_param[id(model.decode_head.decoder.conv0.weight)]['weight_decay'] == pytest.approx(1e-4)
    assert not torch.equal(teacher0, model.teacher.visual.positional_embedding)  # EMA followed the student
