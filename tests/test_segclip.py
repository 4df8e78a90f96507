"""SegCLIP components with tiny random models: the group neck (any backbone, any head count),
losses (incl. DDP gathering), a training step with the recipe's optimiser settings, batched
inference, the data pipeline, and mixing with stock mmseg models."""
import json
import math
import os.path as osp
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.utils import ROOT, run_tool


def _models():
    import mmseg_ovs  # noqa: F401
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    return MODELS


# --------------------------------------------------------------------------- group neck
def test_group_neck_inputs_heads_and_gradients():
    MODELS = _models()
    torch.manual_seed(0)
    # width 48 with 3 heads of 16: head count independent of the width
    neck = MODELS.build(dict(type='SemanticGroupNeck', in_channels=48, num_heads=3, num_centres=5,
                             num_cross_layers=1))
    neck.init_weights()
    fmap = torch.randn(2, 48, 4, 6)
    tokens = fmap.flatten(2).transpose(1, 2)
    neck.eval()
    with torch.no_grad():
        a, b, c = neck(tokens), neck(fmap), neck((fmap * 0, fmap))
    for k in ('group_tokens', 'hard_assign', 'soft_assign'):
        assert torch.equal(a[k], b[k]) and torch.equal(a[k], c[k])
    assert a['group_tokens'].shape == (2, 5, 48) and a['hard_assign'].shape == (2, 5, 24)
    assert torch.equal(a['hard_assign'].round().sum(1), torch.ones(2, 24))  # one centre per patch
    # eval: plain softmax of the unscaled logits, no noise
    assert torch.allclose(a['soft_assign'], a['assign_logits'].softmax(1))
    # per-image attention: sample 1 alone == sample 1 in the batch
    with torch.no_grad():
        single = neck(tokens[1:])
    assert torch.allclose(single['group_tokens'], a['group_tokens'][1:], atol=1e-5)
    # training: injected noise decides the argmax; gradients reach centres and K/V projections
    neck.train()
    noise = -a['assign_logits'].clone()
    noise[:, 2] += 1.  # every patch -> centre 2, softmax not saturated
    out = neck(tokens, gumbel_noise=noise)
    assert torch.equal(out['hard_assign'].detach().round().argmax(1), torch.full((2, 24), 2))
    out['group_tokens'].sum().backward()
    for name in ('semantic_center', 'k_conv.weight', 'v_conv.weight', 'cross_att.0.attn.in_proj_weight'):
        assert dict(neck.named_parameters())[name].grad.abs().sum() > 0, name
    # sampled noise is random in training
    neck.zero_grad()
    torch.manual_seed(1)
    r1 = neck(tokens)['hard_assign']
    torch.manual_seed(2)
    r2 = neck(tokens)['hard_assign']
    assert not torch.equal(r1, r2)
    # map output for stock decode heads
    neck.output_map = True
    (m, ) = neck(fmap)
    assert m.shape == fmap.shape


def test_grouped_pointwise_matches_grouped_conv1d():
    from mmseg_ovs.models.necks.semantic_group_neck import GroupedPointwise
    torch.manual_seed(0)
    conv = torch.nn.Conv1d(48, 48, 1, groups=3, bias=False)
    gp = GroupedPointwise(48, 3)
    gp.weight.data.copy_(conv.weight.data)
    x = torch.randn(2, 7, 48)
    assert torch.allclose(gp(x), conv(x.transpose(1, 2)).transpose(1, 2), atol=1e-6)


# --------------------------------------------------------------------------- losses
def test_region_mean_matches_dense_superpixel_matrix():
    from mmseg_ovs.models.losses.superpixel_kl_loss import region_mean
    torch.manual_seed(0)
    m = torch.rand(3, 50, 8)
    labels = torch.randint(0, 6, (3, 50)) * 7 - 3  # arbitrary ids, negatives included
    s = (labels[:, :, None] == labels[:, None, :]).float()
    dense = (s @ m) / s.sum(-1, keepdim=True).clamp_min(1)
    assert torch.allclose(region_mean(m, labels), dense, atol=1e-6)
    assert torch.allclose(region_mean(m, labels, dense_max_tokens=0), dense, atol=1e-6)  # scatter


def test_superpixel_patch_labels_legacy_nearest_crop_and_flip():
    from mmseg_ovs.models.losses.superpixel_kl_loss import superpixel_patch_labels
    sp = torch.arange(30 * 20).reshape(30, 20)
    # legacy nearest: src = floor(dst * in / out); patch mean truncated
    out = superpixel_patch_labels(sp, None, img_size=40, patch_size=10)
    rows = (torch.arange(40) * 30 // 40)[:, None]
    cols = (torch.arange(40) * 20 // 40)[None]
    full = sp[rows, cols].double()
    ref = full.reshape(4, 10, 4, 10).mean((1, 3)).long()
    assert torch.equal(out, ref)
    # a crop narrower than 2 px falls back to the whole map; reversed x coords flip
    assert torch.equal(superpixel_patch_labels(sp, [0.5, 0.5, 0.5, 0.9], 40, 10), out)
    flipped = superpixel_patch_labels(sp, [1., 0., 0., 1.], 40, 10)
    assert torch.equal(flipped, superpixel_patch_labels(sp.flip(1), None, 40, 10))


def test_superpixel_kl_loss_ignore_index_and_zero_for_consistent_assignments():
    MODELS = _models()
    loss_fn = MODELS.build(dict(type='SuperpixelKLLoss'))
    labels = torch.tensor([[0, 0, 1, 1]])
    consistent = F.one_hot(torch.tensor([[3, 3, 1, 1]]), 5).float().transpose(1, 2)
    assert loss_fn(consistent, labels).item() == pytest.approx(0.0, abs=1e-7)
    mixed = F.one_hot(torch.tensor([[3, 2, 1, 1]]), 5).float().transpose(1, 2)
    assert loss_fn(mixed, labels).item() > 0
    # ignored tokens are left out of the loss and the normaliser
    lab_ign = torch.tensor([[0, 255, 1, 1]])
    assert loss_fn(mixed, lab_ign, ignore_index=255).item() == pytest.approx(0.0, abs=1e-7)


def test_contrastive_loss_single_process():
    MODELS = _models()
    torch.manual_seed(0)
    v, t = torch.randn(4, 8), torch.randn(4, 8)
    loss = MODELS.build(dict(type='ContrastiveLoss'))(v, t, torch.tensor(10.))
    vn, tn = F.normalize(v, dim=-1), F.normalize(t, dim=-1)
    logits = 10 * tn @ vn.t()
    ref = (F.cross_entropy(logits, torch.arange(4)) + F.cross_entropy(logits.t(), torch.arange(4))) / 2
    assert torch.allclose(loss, ref, atol=1e-6)


def _ddp_worker(rank, world, port, v, t, out):
    import torch.distributed as dist
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank,
                            world_size=world)
    from mmseg_ovs.models.losses.contrastive_loss import ContrastiveLoss
    b = v.shape[0] // world
    vl = v[rank * b:(rank + 1) * b].clone().requires_grad_()
    tl = t[rank * b:(rank + 1) * b].clone().requires_grad_()
    loss = ContrastiveLoss()(vl, tl, torch.tensor(10.))
    loss.backward()
    # the local rows receive the gradient of every rank's loss; DDP then averages parameter
    # gradients over ranks, i.e. the objective is the mean of the per-rank losses
    grads = torch.cat([vl.grad, tl.grad], 1)
    torch.save(dict(loss=loss.detach(), grad=grads / world), f'{out}_{rank}.pt')
    # gloo's all-to-all (the gather's backward) may still have a send in flight: tearing the group
    # down under it aborts the process ("terminate called without an active exception")
    dist.barrier()
    dist.destroy_process_group()


def test_contrastive_loss_gathers_with_gradients_across_ranks(tmp_path):
    """2 gloo ranks x 2 samples == the loss of 4 samples on one process; the local features get
    the gradient of every rank's loss (all_gather with backward), as diffdist in the official code."""
    import socket
    import torch.multiprocessing as mp
    MODELS = _models()
    torch.manual_seed(0)
    v, t = torch.randn(4, 8), torch.randn(4, 8)
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    out = str(tmp_path / 'r')
    mp.spawn(_ddp_worker, args=(2, port, v, t, out), nprocs=2, join=True)
    # single-process reference: mean over ranks of each rank's loss (rows of its local samples)
    vv, tt = v.clone().requires_grad_(), t.clone().requires_grad_()
    vn, tn = F.normalize(vv, dim=-1), F.normalize(tt, dim=-1)
    logits = 10 * tn @ vn.t()
    labels = torch.arange(4)
    per_row = (F.cross_entropy(logits, labels, reduction='none') +
               F.cross_entropy(logits.t(), labels, reduction='none')) / 2
    ref = per_row.mean()  # = mean over ranks of the per-rank mean
    ref.backward()
    r0, r1 = torch.load(f'{out}_0.pt'), torch.load(f'{out}_1.pt')
    assert torch.allclose((r0['loss'] + r1['loss']) / 2, ref.detach(), atol=1e-6)
    grad = torch.cat([vv.grad, tt.grad], 1)
    assert torch.allclose(r0['grad'], grad[:2], atol=1e-6)
    assert torch.allclose(r1['grad'], grad[2:], atol=1e-6)


# --------------------------------------------------------------------------- SegCLIP model
TINY_CLIP = dict(embed_dim=32, quick_gelu=True,
                 vision_cfg=dict(image_size=64, patch_size=8, width=64, layers=12, head_width=16),
                 text_cfg=dict(context_length=77, vocab_size=49408, width=64, heads=4, layers=2))


def tiny_segclip(pretrained=None, **kwargs):
    MODELS = _models()
    tiny = TINY_CLIP
    cfg = dict(
        type='SegCLIP',
        data_preprocessor=dict(type='SegDataPreProcessor', mean=[122.7709383, 116.7460125, 104.09373615],
                               std=[68.5005327, 66.6321579, 70.32316305], bgr_to_rgb=True,
                               size=(64, 64)),
        backbone=dict(type='OpenCLIPViT', model_name=None, model_cfg=tiny, pretrained=pretrained),
        text_encoder=dict(type='OpenCLIPTextEncoder', model_name=None, model_cfg=tiny,
                          pretrained=pretrained),
        neck=dict(type='SemanticGroupNeck', num_centres=8, num_cross_layers=2, tau=0.9),
        first_stage_layers=10,
        reconstruction=dict(mask_ratio=0.75, decoder_dim=32, decoder_depth=1, decoder_heads=8),
        test_cfg=dict(mode='slide', crop_size=(64, 64), stride=(64, 64)))
    cfg.update(kwargs)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def _train_batch(n=2, size=64, seed=0):
    """Image-caption samples through the real SegCLIP data pipeline transforms."""
    from mmcv.transforms import Compose
    rng = np.random.default_rng(seed)
    pipeline = Compose([
        dict(type='RandomResizedCropWithSuperpixels', size=size, scale=(0.5, 1.0), patch_size=8),
        dict(type='TokenizeCaption', context_length=32),
        dict(type='PackSegInputs', meta_keys=('img_shape', 'ori_shape', 'caption', 'caption_tokens',
                                              'superpixel_labels')),
    ])
    inputs, samples = [], []
    for i in range(n):
        img = rng.integers(0, 255, (80, 96, 3), dtype=np.uint8)
        sp = np.repeat(np.repeat(rng.integers(0, 5, (5, 6)), 16, 0), 16, 1)
        out = pipeline(dict(img=img, img_shape=img.shape[:2], ori_shape=img.shape[:2], superpixels=sp,
                            caption=f'a photo of {i} red circles', seg_fields=[]))
        inputs.append(out['inputs'])
        samples.append(out['data_samples'])
    return dict(inputs=inputs, data_samples=samples)


def test_segclip_train_step_with_recipe_optimiser():
    """One step with the config's optimiser: LR groups (4e-3 new / 4e-6 stage 1 + text), frozen
    embeddings untouched, logit scale clamped to ln 100, all three losses finite."""
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    cfg = Config.fromfile(osp.join(ROOT, 'configs/segclip_vitb16.py'))
    torch.manual_seed(0)
    model = tiny_segclip(frozen_patterns=cfg.model.frozen_patterns)
    with torch.no_grad():
        model.text_encoder.logit_scale.fill_(5.0)
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    lrs = {}
    for group in optim.optimizer.param_groups:
        for p in group['params']:
            lrs[id(p)] = (group['lr'], group['weight_decay'])
    named = dict(model.named_parameters())
    frozen = {n for n, p in named.items() if not p.requires_grad}
    assert frozen == {'text_encoder.token_embedding.weight', 'text_encoder.positional_embedding',
                      'backbone.visual.class_embedding', 'backbone.visual.positional_embedding',
                      'backbone.visual.conv1.weight', 'backbone.visual.ln_pre.weight',
                      'backbone.visual.ln_pre.bias'}
    expect = {
        'backbone.visual.transformer.resblocks.0.mlp.c_fc.weight': (4e-6, 0.05),
        'backbone.visual.transformer.resblocks.1.attn.in_proj_bias': (4e-6, 0.),
        'backbone.visual.transformer.resblocks.9.ln_2.weight': (4e-6, 0.05),
        'backbone.visual.transformer.resblocks.10.mlp.c_fc.weight': (4e-3, 0.05),  # stage 3
        'backbone.visual.transformer.resblocks.11.attn.in_proj_bias': (4e-3, 0.),
        'backbone.visual.proj': (4e-3, 0.05), 'backbone.visual.ln_post.weight': (4e-3, 0.05),
        'neck.semantic_center': (4e-3, 0.05), 'neck.k_conv.weight': (4e-3, 0.05),
        'neck.proj_o.mlp.fc1.bias': (4e-3, 0.),
        'reconstruction.decoder.decoder_pred.weight': (4e-3, 0.05),
        'reconstruction.a_fc.weight': (4e-3, 0.05),
        'text_encoder.transformer.resblocks.0.attn.in_proj_weight': (4e-6, 0.05),
        'text_encoder.transformer.resblocks.1.ln_1.bias': (4e-6, 0.),
        'text_encoder.logit_scale': (4e-6, 0.05), 'text_encoder.text_projection': (4e-6, 0.05),
    }
    for name, (lr, wd) in expect.items():
        got = lrs[id(named[name])]
        assert got[0] == pytest.approx(lr) and got[1] == pytest.approx(wd), (name, got)
    before = {n: p.detach().clone() for n, p in named.items()}
    model.train()
    log_vars = model.train_step(_train_batch(), optim)
    for k in ('loss_contrastive', 'loss_superpixel_kl', 'loss_reconstruction'):
        assert math.isfinite(float(log_vars[k])), k
    assert float(log_vars['loss_contrastive']) > 0 and float(log_vars['loss_reconstruction']) > 0
    assert model.text_encoder.logit_scale.item() <= math.log(100.) + 1e-6
    for n in frozen:
        assert torch.equal(before[n], named[n].detach()), n
    for n in ('neck.semantic_center', 'reconstruction.a_fc.weight', 'backbone.visual.proj'):
        assert not torch.equal(before[n], named[n].detach()), n


def test_segclip_init_from_local_clip_file(tmp_path):
    """Both towers load the (local) CLIP file; new modules get the official N(0, 0.02) init."""
    from mmseg_ovs.models.clip.builder import build_open_clip
    torch.manual_seed(0)
    clip = build_open_clip(None, model_cfg=TINY_CLIP)
    path = str(tmp_path / 'clip.pt')
    torch.save(clip.state_dict(), path)
    model = tiny_segclip(pretrained=path)
    assert torch.equal(model.backbone.visual.conv1.weight, clip.visual.conv1.weight)
    assert torch.equal(model.backbone.visual.transformer.resblocks[11].mlp.c_fc.weight,
                       clip.visual.transformer.resblocks[11].mlp.c_fc.weight)
    assert torch.equal(model.text_encoder.token_embedding.weight, clip.token_embedding.weight)
    assert torch.equal(model.text_encoder.logit_scale, clip.logit_scale)
    for w in (model.neck.proj_o.mlp.fc1.weight, model.reconstruction.decoder.decoder_embed.weight,
              model.neck.cross_att[0].attn.out_proj.weight):
        assert abs(w.std().item() - 0.02) < 0.004
    assert model.neck.proj_o.mlp.fc1.bias.abs().max() == 0


def test_segclip_recipe_schedule_warmup_then_cosine():
    """15% linear warm-up from ~0 then cosine to 0 over 10 epochs (per iteration)."""
    from mmengine.config import Config
    from mmengine.registry import PARAM_SCHEDULERS
    _models()
    cfg = Config.fromfile(osp.join(ROOT, 'configs/segclip_vitb16.py'))
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=4e-3)
    epoch_len = 20
    scheds = [PARAM_SCHEDULERS.build(dict(s, optimizer=opt), default_args=dict(epoch_length=epoch_len))
              for s in cfg.param_scheduler]
    lrs = []
    for _ in range(10 * epoch_len):
        lrs.append(opt.param_groups[0]['lr'])
        opt.step()
        for s in scheds:
            s.step()
    warm = int(0.15 * 10 * epoch_len)
    assert lrs[0] < 1e-9 and lrs[warm // 2] == pytest.approx(4e-3 / 2, rel=0.05)
    assert lrs[warm] == pytest.approx(4e-3, rel=1e-6) and max(lrs) <= 4e-3 * (1 + 1e-6)
    mid = warm + (10 * epoch_len - warm) // 2
    assert lrs[mid] == pytest.approx(2e-3, rel=0.02) and lrs[-1] < 4e-3 * 1e-3


def test_segclip_batched_slide_inference_equals_single_images():
    from mmseg.structures import SegDataSample
    torch.manual_seed(0)
    model = tiny_segclip(class_names=['background', 'circle', 'square', 'star'], bg_thresh=0.5,
                         topk=2).eval()
    imgs = torch.randn(2, 3, 64, 100)
    meta = dict(ori_shape=(80, 125), img_shape=(64, 100), pad_shape=(64, 100), padding_size=[0, 0, 0, 0])
    with torch.no_grad():
        both = model.predict(imgs, [SegDataSample(metainfo=meta) for _ in range(2)])
        single = [model.predict(imgs[i:i + 1], [SegDataSample(metainfo=meta)])[0] for i in range(2)]
        logits, det = model.encode_decode(imgs[:, :, :, :64], [{}], return_details=True)
    for b, s in zip(both, single):
        assert torch.equal(b.pred_sem_seg.data, s.pred_sem_seg.data)
        assert torch.allclose(b.seg_logits.data, s.seg_logits.data, atol=1e-5)
    # images of different sizes padded into one batch (bottom/right, as mmseg's stack_batch): each
    # is inferred on its own area, equal to running it alone
    sizes = [(64, 100), (70, 64)]
    imgs = [torch.randn(1, 3, h, w) for h, w in sizes]
    padded = torch.cat([F.pad(x, (0, 100 - x.shape[-1], 0, 70 - x.shape[-2])) for x in imgs])
    metas = [dict(ori_shape=(h, w), img_shape=(h, w), pad_shape=(70, 100),
                  padding_size=[0, 100 - w, 0, 70 - h]) for h, w in sizes]
    with torch.no_grad():
        both = model.predict(padded, [SegDataSample(metainfo=m) for m in metas])
        for x, m, b in zip(imgs, metas, both):
            alone = dict(m, pad_shape=m['img_shape'], padding_size=[0, 0, 0, 0])
            s = model.predict(x, [SegDataSample(metainfo=alone)])[0]
            assert b.pred_sem_seg.shape == m['ori_shape']
            assert torch.equal(b.pred_sem_seg.data, s.pred_sem_seg.data)
    # the prompt-embedding cache follows weight loading and train/eval switches
    with torch.no_grad():
        cached = model.class_embeddings().clone()
        sd = model.state_dict()
        sd['text_encoder.text_projection'] = sd['text_encoder.text_projection'] * -1
        model.load_state_dict(sd)
        assert torch.allclose(model.class_embeddings(), -cached, atol=1e-6)
        model.train()
        model.text_encoder.text_projection.mul_(-1)
        model.eval()
        assert torch.allclose(model.class_embeddings(), cached, atol=1e-6)
    with pytest.raises(ValueError, match='bg_thresh'):
        tiny_segclip(class_names=['background', 'cat'], bg_thresh=None)
    # background: strictly below min(bg_thresh, max group score) of the crop; top-2 filter
    q = det['group_class_scores']
    thr = torch.minimum(q.flatten(1).max(1)[0], torch.tensor(0.5))
    fg_best = logits[:, 1:].max(1)[0]
    assert torch.equal(logits[:, 0] == 1, fg_best < thr[:, None, None])
    assert ((det['masked_affinity_softmax'] > 0).sum(-1) <= 2).all()


# --------------------------------------------------------------------------- data pipeline
def test_superpixel_data_prep_store_and_datasets(tmp_path):
    from PIL import Image
    from skimage.segmentation import felzenszwalb

    _models()
    from mmseg.registry import DATASETS, TRANSFORMS
    from mmseg_ovs.datasets.superpixel_store import SuperpixelStore
    rng = np.random.default_rng(0)
    img_root = tmp_path / 'coco'
    (img_root / 'train2014').mkdir(parents=True)
    names = []
    for i in range(3):
        arr = rng.integers(0, 255, (40 + 10 * i, 60, 3), dtype=np.uint8)
        arr[:, :30] //= 4
        Image.fromarray(arr).save(img_root / 'train2014' / f'img{i}.png')
        names.append(f'img{i}.png')
    (img_root / 'train2014' / 'broken.png').write_bytes(b'not an image')
    out = str(tmp_path / 'sp')
    args = [sys.executable, 'data_prep/segclip_superpixels.py', str(img_root), out, '--num-shards', '2',
            '--workers', '2', '--short-side', '0', '--scale', '20', '--min-size', '10']
    proc = run_tool(args)
    assert 'wrote 3 superpixel maps' in proc.stdout and 'skipped 1 unreadable' in proc.stdout
    proc = run_tool(args)  # resumable: nothing left to do
    assert '3 already in the store' in proc.stdout and 'wrote 0 superpixel maps' in proc.stdout
    store = SuperpixelStore(out)
    arr = np.asarray(Image.open(img_root / 'train2014' / 'img1.png').convert('RGB'))
    ref = felzenszwalb(arr, scale=20, sigma=0.9, min_size=10)
    assert np.array_equal(store['train2014/img1.png'], ref)
    with pytest.raises(KeyError, match='broken'):
        store['train2014/broken.png']
    # Karpathy COCO captions: train split only, one sample per caption
    ann = dict(images=[
        dict(filepath='train2014', filename='img0.png', split='train',
             sentences=[dict(raw='a cat.'), dict(raw='a dog. ')]),
        dict(filepath='train2014', filename='img1.png', split='restval', sentences=[dict(raw='x')]),
        dict(filepath='train2014', filename='img2.png', split='train', sentences=[dict(raw='a red car')]),
    ])
    (tmp_path / 'dataset_coco.json').write_text(json.dumps(ann))
    pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadSuperpixels'),
                dict(type='RandomResizedCropWithSuperpixels', size=32, patch_size=8),
                dict(type='TokenizeCaption', context_length=32),
                dict(type='PackSegInputs', meta_keys=('caption', 'caption_tokens', 'superpixel_labels'))]
    ds = DATASETS.build(dict(type='COCOCaptionDataset', data_root=str(img_root),
                             ann_file=str(tmp_path / 'dataset_coco.json'), superpixel_root=out,
                             pipeline=pipeline))
    assert len(ds) == 3 and [ds.get_data_info(i)['caption'] for i in range(3)] == ['a cat.', 'a dog.',
                                                                                       'a red car']
    sample = ds[2]
    assert sample['inputs'].shape == (3, 32, 32)
    meta = sample['data_samples'].metainfo
    assert meta['caption_tokens'].shape == (32, ) and meta['caption_tokens'][0] == 49406
    assert meta['superpixel_labels'].shape == (4, 4)
    sp2 = store['train2014/img2.png']
    assert 0 <= meta['superpixel_labels'].min() and meta['superpixel_labels'].max() <= sp2.max()
    # CC3M img2dataset "files" layout; images without a caption are skipped
    cc = tmp_path / 'cc3m' / '00000'
    cc.mkdir(parents=True)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(cc / f'00000000{i}.jpg')
    (cc / '000000000.txt').write_text('a caption\n')
    cds = DATASETS.build(dict(type='CC3MCaptionDataset', data_root=str(tmp_path / 'cc3m'),
                              superpixel_root=out, pipeline=[]))
    assert len(cds) == 1 and cds.get_data_info(0)['superpixel_key'] == '00000/000000000.jpg'
    tok = TRANSFORMS.build(dict(type='TokenizeCaption'))
    with pytest.raises(ValueError, match='empty'):
        tok(dict(caption='  ', img_path='x.jpg'))


# --------------------------------------------------------------------------- mixing
def _toy_batch(n=2, size=64, classes=7, seed=0):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(n):
        label = torch.zeros(size, size, dtype=torch.long)
        img = torch.randint(0, 60, (3, size, size), generator=g, dtype=torch.uint8)
        for c in range(1, 4):  # a few bright squares, class = colour
            y, x = torch.randint(0, size - 20, (2, ), generator=g).tolist()
            label[y:y + 20, x:x + 20] = c
            img[:, y:y + 20, x:x + 20] = torch.tensor([80 * c, 255 - 60 * c, 40 * c],
                                                      dtype=torch.uint8)[:, None, None]
        ds = SegDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size),
                                         pad_shape=(size, size)))
        ds.gt_sem_seg = PixelData(data=label[None])
        inputs.append(img)
        samples.append(ds)
    return dict(inputs=inputs, data_samples=samples)


def _train_few(cfg_file, iters=8):
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    MODELS = _models()
    cfg = Config.fromfile(osp.join(ROOT, cfg_file))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    batch = _toy_batch()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    logs = [model.train_step(batch, optim) for _ in range(iters)]
    return model, logs, batch, before


def test_mixing_group_neck_in_stock_encoder_decoder():
    """mmseg VisionTransformer -> SemanticGroupNeck -> stock FCNHead, trained a few iterations."""
    from mmseg.models.segmentors import EncoderDecoder
    model, logs, batch, before = _train_few('configs/examples/group_neck_vit_fcn_toy.py', iters=10)
    assert isinstance(model, EncoderDecoder) and type(model.neck).__name__ == 'SemanticGroupNeck'
    losses = [float(log['decode.loss_ce']) for log in logs]
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0], losses
    for name, p in model.neck.named_parameters():
        assert not torch.equal(p.detach(), before['neck.' + name]), name
    model.eval()
    with torch.no_grad():
        preds = model.test_step(batch)
    assert preds[0].pred_sem_seg.data.shape == (1, 64, 64)


def test_mixing_superpixel_kl_as_extra_loss_of_stock_model():
    model, logs, _, _ = _train_few('configs/examples/vit_fcn_superpixel_kl_toy.py', iters=2)
    assert not model.with_neck and type(model.backbone).__name__ == 'VisionTransformer'
    for log in logs:
        assert 'decode.loss_superpixel_kl' in log and 'decode.loss_ce' in log
        assert math.isfinite(float(log['decode.loss_superpixel_kl']))
        assert float(log['decode.loss_superpixel_kl']) >= 0
