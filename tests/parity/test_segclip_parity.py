"""SegCLIP numerical parity against the official implementation's fixtures
(../shared/fixtures/segclip/README.md): every fixture is loaded through the checkpoint
converter (``mmseg_ovs.utils.convert_segclip``) into :class:`SegCLIP` and every listed output
is compared with the README tolerance. Argmax / integer outputs are compared exactly
(label maps outside ``unstable_mask``, group indices outside ``group_near_tie``).
Max-abs differences per output are printed (``pytest -s``)."""
import math
import os

import pytest
import torch

from tests.parity.fixture_utils import expected, fixture_params, fixtures_by_dir, load_fixture

FWD_GROUP = (1e-5, 1e-5)  # (atol, rtol): group module and text
FWD_IMAGE = (1e-4, 1e-4)  # full image encoder, reconstruction predictions
LOSS = (1e-5, 1e-5)
GRAD = (1e-5, 1e-3)
KL_GRAD = (1e-7, 1e-4)


def check(name, actual, expected, tol):
    if expected is None:  # optional output not stored in this fixture
        print(f'  {name}: skipped (not in the fixture)')
        return
    atol, rtol = tol
    actual = torch.as_tensor(actual).detach().double()
    expected = torch.as_tensor(expected).detach().double()
    assert actual.shape == expected.shape, \
        f'{name}: shape {tuple(actual.shape)} != {tuple(expected.shape)}'
    diff = (actual - expected).abs()
    print(f'  {name}: max_abs={diff.max().item() if diff.numel() else 0.:.3e}')
    bad = diff > atol + rtol * expected.abs()
    assert not bool(bad.any()), \
        f'{name}: {int(bad.sum())} entries off (max_abs {diff.max().item():.3e}, tol {tol})'


def check_exact(name, actual, expected, ignore=None):
    if expected is None:  # optional output not stored in this fixture
        print(f'  {name}: skipped (not in the fixture)')
        return
    actual, expected = torch.as_tensor(actual).cpu(), torch.as_tensor(expected).cpu()
    assert actual.shape == expected.shape, f'{name}: shape {actual.shape} != {expected.shape}'
    mism = actual != expected
    n_all = int(mism.sum())
    if ignore is not None:
        mism &= ~ignore
    print(f'  {name}: mismatches={int(mism.sum())}/{expected.numel()}'
          + (f' ({int(ignore.sum())} ignored, {n_all} mismatches incl. them)'
             if ignore is not None else ''))
    assert not bool(mism.any()), f'{name}: {int(mism.sum())} mismatches'


def clip_model_cfg(cfg):
    """open_clip config of the fixture's tiny CLIP (head count independent of width)."""
    return dict(
        embed_dim=cfg['embed_dim'], quick_gelu=True,
        vision_cfg=dict(image_size=cfg['image_resolution'], layers=cfg['vision_layers'],
                        width=cfg['vision_width'], head_width=cfg['head_dim'],
                        patch_size=cfg['patch_size']),
        text_cfg=dict(context_length=cfg['context_length'], vocab_size=cfg['vocab_size'],
                      width=cfg['text_width'], heads=cfg['text_heads'],
                      layers=cfg['text_layers']))


def build_segclip(cfg, **kwargs):
    import mmseg_ovs  # noqa: F401  (registration)
    from mmseg.registry import MODELS
    mcfg = clip_model_cfg(cfg)
    return MODELS.build(dict(
        type='SegCLIP',
        backbone=dict(type='OpenCLIPViT', model_cfg=mcfg),
        text_encoder=dict(type='OpenCLIPTextEncoder', model_cfg=mcfg),
        neck=dict(type='SemanticGroupNeck', num_centres=cfg['num_centres'],
                  num_cross_layers=cfg['cross_attn_layers'],
                  num_heads=cfg['cross_attn_heads'], kv_groups=cfg['kv_conv_groups'],
                  tau=cfg['gumbel_tau_train']),
        first_stage_layers=cfg['first_stage_layer'],
        reconstruction=dict(mask_ratio=cfg['mae_mask_ratio'],
                            decoder_dim=cfg['mae_decoder_embed_dim'],
                            decoder_depth=cfg['mae_decoder_depth'],
                            decoder_heads=cfg['mae_decoder_heads']),
        **kwargs))


def load_converted(model, fx):
    """Official fixture keys -> converter -> model; every converted key must be used."""
    from mmseg_ovs.utils.convert_segclip import convert_segclip_state_dict
    sd = dict(fx['state_dict'])
    if 'token_embedding_rows' in fx:
        rows = fx['token_embedding_rows']
        emb = torch.zeros(fx['config']['vocab_size'], rows['weight'].shape[1])
        emb[rows['ids']] = rows['weight']
        sd['clip.token_embedding.weight'] = emb
    conv = convert_segclip_state_dict(sd, first_stage_layers=fx['config']['first_stage_layer'])
    res = model.load_state_dict(conv, strict=False)
    assert not res.unexpected_keys, res.unexpected_keys
    return model


# --------------------------------------------------------------------------- group module
@pytest.mark.parametrize('path', fixture_params('segclip', 'group_module'))
def test_group_module(path):
    import mmseg_ovs  # noqa: F401
    from mmseg.registry import MODELS
    fx = load_fixture(path)
    cfg, inp, out = fx['config'], fx['inputs'], fx['outputs']
    # head count (4) is independent of the width (64): not width // 64 as in the official code
    neck = MODELS.build(dict(type='SemanticGroupNeck', in_channels=cfg['vision_width'],
                             num_heads=cfg['cross_attn_heads'], num_centres=cfg['num_centres'],
                             num_cross_layers=cfg['cross_attn_layers'],
                             kv_groups=cfg['kv_conv_groups'])).eval()
    prefix = 'clip.visual.transformer.semantic_layer2.'
    from mmseg_ovs.utils.convert_segclip import convert_segclip_state_dict
    conv = convert_segclip_state_dict(fx['state_dict'])
    neck.load_state_dict({k[len('neck.'):]: v for k, v in conv.items()}, strict=True)
    assert all(k.startswith(prefix) for k in fx['state_dict'])
    with torch.no_grad():
        r = neck(inp['x'], return_intermediates=True)
    check('centres', r['centres'], expected(out, 'centres'), FWD_GROUP)
    check('soft_attn', r['soft_assign'], expected(out, 'soft_attn'), FWD_GROUP)
    check('hard_attn', r['hard_assign'], expected(out, 'hard_attn'), (1e-6, 0))
    check_exact('assignment_index', r['assign_logits'][0].argmax(0), expected(out, 'assignment_index'))
    check('hard_assignment_NL', r['hard_assign'][0].t(), expected(out, 'hard_assignment_NL'), (1e-6, 0))
    check('region_features', r['group_tokens'], expected(out, 'region_features'), FWD_GROUP)
    inter = dict(r['intermediates'], assign_logits=r['assign_logits'])
    for name, ref in (expected(out, 'intermediates') or {}).items():
        check(name, inter[name], ref, FWD_GROUP)
    top2 = r['assign_logits'][0].topk(2, dim=0).values
    check('assign_logit_margin', top2[0] - top2[1], expected(out, 'assign_logit_margin'), FWD_GROUP)
    # batch invariance: per-image cross-attention (the default)
    with torch.no_grad():
        r2 = neck(inp['x_batch2'])
    for mine, ref in [('centres', 'centres'), ('soft_assign', 'soft_attn'),
                      ('hard_assign', 'hard_attn'), ('group_tokens', 'region_features'),
                      ('assign_logits', 'assign_logits')]:
        check(f'batch2.{ref}', r2[mine], expected(expected(out, 'batch2'), ref), FWD_GROUP)
    check('batch2[0] == batch1', r2['group_tokens'][:1], r['group_tokens'], FWD_GROUP)


@pytest.mark.parametrize('path', fixture_params('segclip', 'group_module'))
def test_group_module_batch_mixing_legacy(path):
    """The documented torch-1.8 switch: identical at B=1; at B>1 sample b' reads key row
    i*B+b' of the flattened batch (checked against an explicit gather)."""
    import mmseg_ovs  # noqa: F401
    from mmseg.registry import MODELS
    from mmseg_ovs.utils.convert_segclip import convert_segclip_state_dict
    fx = load_fixture(path)
    cfg, inp, out = fx['config'], fx['inputs'], fx['outputs']
    neck = MODELS.build(dict(type='SemanticGroupNeck', in_channels=cfg['vision_width'],
                             num_heads=cfg['cross_attn_heads'], num_centres=cfg['num_centres'],
                             kv_groups=cfg['kv_conv_groups'], batch_mixing_legacy=True)).eval()
    conv = convert_segclip_state_dict(fx['state_dict'])
    neck.load_state_dict({k[len('neck.'):]: v for k, v in conv.items()})
    with torch.no_grad():
        r1 = neck(inp['x'])
        check('legacy B=1 region_features', r1['group_tokens'], expected(out, 'region_features'), FWD_GROUP)
        x = inp['x_batch2']
        r2 = neck(x)
        B = x.shape[0]
        # explicit emulation of block 0 with the old reshaping, compared on the block output
        blk = neck.cross_att[0]
        q0 = neck.semantic_center.unsqueeze(0).expand(B, -1, -1)
        kv = blk.ln_k(torch.cat([q0, x], 1))
        S = kv.shape[1]
        rows = torch.arange(S)[None] * B + torch.arange(B)[:, None]  # (B, S)
        kv_mixed = kv.reshape(B * S, -1)[rows]
        attn = torch.nn.MultiheadAttention(cfg['vision_width'], cfg['cross_attn_heads'],
                                           batch_first=True)
        attn.load_state_dict(blk.attn.state_dict())
        ref = q0 + attn(blk.ln_x(q0), kv_mixed, kv_mixed, need_weights=False)[0]
        ref = ref + blk.mlp(blk.ln_2(ref))
        check('legacy block0 vs explicit row gather', blk(q0, torch.cat([q0, x], 1)), ref,
              FWD_GROUP)
    # reference: the per-image (default) neck on the same batch
    neck.batch_mixing_legacy = False
    with torch.no_grad():
        per_image = neck(x)['group_tokens']
    diff = (r2['group_tokens'] - per_image).abs().max().item()
    print(f'  legacy B=2 differs from per-image by {diff:.3e}')
    assert diff > 1e-3, 'batch mixing had no effect at B=2'


# --------------------------------------------------------------------------- image encoder
@pytest.mark.parametrize('path', fixture_params('segclip', 'image_encoder'))
def test_image_encoder(path):
    fx = load_fixture(path)
    inp, out = fx['inputs'], fx['outputs']
    model = load_converted(build_segclip(fx['config']), fx).eval()
    with torch.no_grad():
        r = model.encode_image(inp['image'], return_intermediates=True)
        patch_embed = model.backbone.visual.conv1(inp['image'])
    check('image_feature', r['image_feature'], expected(out, 'image_feature'), FWD_IMAGE)
    check('region_features', r['region_features'], expected(out, 'region_features'), FWD_IMAGE)
    check('projected_tokens', r['projected_tokens'], expected(out, 'projected_tokens'), FWD_IMAGE)
    check('soft_attn', r['soft_assign'], expected(out, 'soft_attn'), FWD_IMAGE)
    check('hard_attn', r['hard_assign'], expected(out, 'hard_attn'), (1e-6, 0))
    check('hard_assignment_NL', r['hard_assign'][0].t(), expected(out, 'hard_assignment_NL'), (1e-6, 0))
    check_exact('assignment_index', r['assign_logits'][0].argmax(0), expected(out, 'assignment_index'))
    top2 = r['assign_logits'][0].topk(2, dim=0).values
    check('assign_logit_margin', top2[0] - top2[1], expected(out, 'assign_logit_margin'), FWD_IMAGE)
    mine = dict(r, patch_embed=patch_embed)
    for name, ref in (expected(out, 'intermediates') or {}).items():
        check(f'intermediates.{name}', mine[name], ref, FWD_IMAGE)


# --------------------------------------------------------------------------- text encoder
@pytest.mark.parametrize('path', fixture_params('segclip', 'text_encoder'))
def test_text_encoder(path):
    import open_clip
    fx = load_fixture(path)
    inp, out = fx['inputs'], fx['outputs']
    model = load_converted(build_segclip(fx['config']), fx).eval()
    te = model.text_encoder
    t77, t32 = te.tokenize(inp['texts'], 77), te.tokenize(inp['texts'], 32)
    check_exact('token_ids_77', t77, inp['token_ids_77'])
    check_exact('token_ids_32', t32, inp['token_ids_32'])
    check_exact('eot_index_77', t77.argmax(-1), inp['eot_index_77'])
    check_exact('eot_index_32', t32.argmax(-1), inp['eot_index_32'])
    bpe = open_clip.tokenizer._tokenizer
    for text, ref in zip(inp['texts'], inp['bpe_tokens']):
        ids = bpe.encode(text)
        assert [bpe.decoder[i] for i in ids] == ref, text
    with torch.no_grad():
        f77, f32 = model.encode_text(t77), model.encode_text(t32)
    check('text_features_77', f77, expected(out, 'text_features_77'), FWD_GROUP)
    check('text_features_32', f32, expected(out, 'text_features_32'), FWD_GROUP)
    check('text_features_77_normalized', torch.nn.functional.normalize(f77, dim=-1),
          expected(out, 'text_features_77_normalized'), FWD_GROUP)
    # all positions (the encoder's blocks, ln_final and projection applied to every token)
    for T, tok in ((77, t77), (32, t32)):
        with torch.no_grad():
            x = te.token_embedding(tok) + te.positional_embedding[:T]
            x = te.transformer(x, attn_mask=te.attn_mask[:T, :T])
        check(f'tokens_after_transformer_{T}', x, out[f'tokens_after_transformer_{T}'],
              FWD_GROUP)
        if T == 77:
            check('tokens_after_ln_final_77', te.ln_final(x), expected(out, 'tokens_after_ln_final_77'),
                  FWD_GROUP)
        check(f'projected_tokens_{T}', te.ln_final(x) @ te.text_projection,
              out[f'projected_tokens_{T}'], FWD_GROUP)


# --------------------------------------------------------------------------- superpixel KL
@pytest.mark.parametrize('path', fixture_params('segclip', 'superpixel_kl'))
def test_superpixel_kl_loss(path):
    import skimage
    from skimage.segmentation import felzenszwalb

    import mmseg_ovs  # noqa: F401
    from mmseg.registry import MODELS
    from mmseg_ovs.models.losses.superpixel_kl_loss import superpixel_patch_labels
    from mmseg_ovs.models.necks.semantic_group_neck import hard_gumbel_assign
    fx = load_fixture(path)
    cfg, inp, out = fx['config'], fx['inputs'], fx['outputs']
    if skimage.__version__ == fx['meta']['scikit_image_version']:
        fz = cfg['superpixel_felzenszwalb']
        sp = felzenszwalb(inp['image_uint8_rgb_hwc'].numpy(), scale=fz['scale'],
                          sigma=fz['sigma'], min_size=fz['min_size'])
        check_exact('superpixel_map', torch.from_numpy(sp).long(), inp['superpixel_map'])
    # relative crop coordinates from (i, j, h, w), computed in float32 as officially
    H, W = inp['superpixel_map'].shape
    ijhw = inp['crop_ijhw'].double()
    i, j, h, w = ijhw.unbind(1)
    coord = torch.stack([j / (W - 1), i / (H - 1), (j + w - 1) / (W - 1),
                         (i + h - 1) / (H - 1)], 1).float().double()
    check('crop_coord', coord, inp['crop_coord'], (0, 0))
    labels = torch.stack([superpixel_patch_labels(inp['superpixel_map'], c,
                                                  cfg['image_resolution'], cfg['patch_size'])
                          for c in inp['crop_coord']])
    check_exact('patch_labels', labels, expected(out, 'patch_labels'))
    hard, y = hard_gumbel_assign(inp['assign_logits'], inp['tau'], 1, True, inp['gumbel_noise'])
    check('y_soft', y, expected(out, 'y_soft'), FWD_GROUP)
    check('hard_attn', hard, expected(out, 'hard_attn'), (1e-6, 0))
    loss_fn = MODELS.build(dict(type='SuperpixelKLLoss', input_type='logits',
                                tau=inp['tau'])).train()
    logits = inp['assign_logits'].clone().requires_grad_()
    loss, parts = loss_fn(logits, labels, gumbel_noise=inp['gumbel_noise'], return_parts=True)
    loss.backward()
    check('loss', loss, expected(out, 'loss'), (1e-6, 1e-5))
    check('kl_sum_1', parts['kl_sum_1'], expected(out, 'kl_sum_1'), (1e-4, 1e-5))
    check('kl_sum_2', parts['kl_sum_2'], expected(out, 'kl_sum_2'), (1e-4, 1e-5))
    if expected(out, 'normalizer') is not None:
        assert float(parts['normalizer']) == out['normalizer']
    check('grad_assign_logits', logits.grad, expected(out, 'grad_assign_logits'), KL_GRAD)
    hard_in = (out['hard_attn'] if 'hard_attn' in out else hard.detach()).clone().requires_grad_()
    MODELS.build(dict(type='SuperpixelKLLoss'))(hard_in, labels).backward()
    check('grad_hard_attn', hard_in.grad, expected(out, 'grad_hard_attn'), KL_GRAD)


# --------------------------------------------------------------------------- reconstruction
@pytest.mark.parametrize('path', fixture_params('segclip', 'reconstruction'))
def test_reconstruction_loss(path):
    from mmseg_ovs.models.utils.segclip_reconstruction import sincos_pos_embed_2d
    fx = load_fixture(path)
    inp, out = fx['inputs'], fx['outputs']
    model = load_converted(build_segclip(fx['config']), fx).train()
    rec = {}
    with torch.no_grad():
        loss = model.reconstruction_loss(inp['image'], inp['mask_noise'], inp['gumbel_noise'], rec)
    g = rec.pop('group')
    for name in ('ids_keep', 'ids_restore', 'mask'):
        check_exact(name, rec[name], out[name])
    with torch.no_grad():
        ln_pre = model.backbone.embed(inp['image'])
    check('tokens_after_ln_pre', ln_pre, expected(out, 'tokens_after_ln_pre'), FWD_IMAGE)
    check('assign_logits', g['assign_logits'], expected(out, 'assign_logits'), FWD_IMAGE)
    check('group_hard_attn', g['hard_assign'], expected(out, 'group_hard_attn'), (1e-6, 0))
    check('group_soft_attn', g['soft_assign'], expected(out, 'group_soft_attn'), FWD_IMAGE)
    check('group_centres', g['centres'], expected(out, 'group_centres'), FWD_IMAGE)
    check('group_region_features', g['group_tokens'], expected(out, 'group_region_features'), FWD_IMAGE)
    for name in ('visible_tokens_after_ln_pre', 'visible_tokens_after_stage1',
                 'reconstructed_tokens', 'tokens_after_mae_blocks', 'decoder_input',
                 'decoder_embedded', 'decoder_tokens_unshuffled_with_pos', 'decoder_after_norm',
                 'pred_patches'):
        check(name, rec[name], out[name], FWD_IMAGE)
    check('loss', loss, expected(out, 'loss'), LOSS)
    # the fixed sin-cos table is recomputed, not only loaded
    D = fx['config']['mae_decoder_embed_dim']
    check('decoder_pos_embed (recomputed)', sincos_pos_embed_2d(D, fx['config']['grid_size'])[None],
          fx['state_dict']['vis_mae_decoder.decoder_pos_embed'], (1e-6, 0))


# --------------------------------------------------------------------------- training step
@pytest.mark.parametrize('path', fixture_params('segclip', 'training_step'))
def test_training_step_losses(path):
    from mmseg_ovs.utils.convert_segclip import segclip_key_map
    fx = load_fixture(path)
    cfg, inp, out = fx['config'], fx['inputs'], fx['outputs']
    model = load_converted(build_segclip(cfg), fx).train()
    caption_len = inp['token_ids'].shape[1]  # 32 in the shipped fixture
    check_exact('token_ids', model.text_encoder.tokenize(inp['captions'], caption_len), inp['token_ids'])
    extras = {}
    losses = model.compute_losses(inp['images'][:1], inp['token_ids'][:1], inp['patch_labels'][:1],
                                  inp['gumbel_noise_main'][:1], inp['gumbel_noise_mae'],
                                  inp['mask_noise'], extras)
    b1 = expected(out, 'batch1')
    total = losses['loss_contrastive'] + losses['loss_superpixel_kl'] + \
        losses['loss_reconstruction']
    check('contrastive_loss', losses['loss_contrastive'], expected(b1, 'contrastive_loss'), LOSS)
    check('kl_loss', losses['loss_superpixel_kl'], expected(b1, 'kl_loss'), LOSS)
    check('reconstruction_loss', losses['loss_reconstruction'], expected(b1, 'reconstruction_loss'), LOSS)
    check('total_loss', total, expected(b1, 'total_loss'), LOSS)
    check('logits_t2v', extras['logits_t2v'], expected(b1, 'logits_t2v'), LOSS)
    check('logits_v2t', extras['logits_v2t'], expected(b1, 'logits_v2t'), LOSS)
    check('text_feature', extras['text_feature'], expected(b1, 'text_feature'), FWD_IMAGE)
    check('image_feature', extras['image_feature'], expected(b1, 'image_feature'), FWD_IMAGE)
    check('assign_logits_main', extras['encoder']['assign_logits'], expected(b1, 'assign_logits_main'),
          FWD_IMAGE)
    rec = extras['reconstruction']
    check('assign_logits_mae', rec['group']['assign_logits'], expected(b1, 'assign_logits_mae'), FWD_IMAGE)
    for name in ('mask', 'ids_keep', 'ids_restore'):
        check_exact(name, rec[name], expected(b1, name))
    total.backward()
    params = dict(model.named_parameters())
    for key, ref in (expected(b1, 'param_grads') or {}).items():
        p = params[segclip_key_map(key, cfg['first_stage_layer'])]
        grad = p.grad if p.grad is not None else torch.zeros_like(p)
        check(f'param_grads.{key}', grad, ref, GRAD)

    # batch 2: per-image attention makes a batched encode equal to separate encodes
    b2 = expected(out, 'batch2_separately_encoded')
    with torch.no_grad():
        enc = model.encode_image(inp['images'], gumbel_noise=inp['gumbel_noise_main'])
        txt = model.encode_text(inp['token_ids'])
    check('batch2.image_features', enc['image_feature'], expected(b2, 'image_features'), FWD_IMAGE)
    check('batch2.text_features', txt, expected(b2, 'text_features'), FWD_IMAGE)
    if b2 is not None and 'image_features' in b2 and 'text_features' in b2:
        v = expected(b2, 'image_features').clone().requires_grad_()
        t = expected(b2, 'text_features').clone().requires_grad_()
        scale_param = torch.tensor(cfg['logit_scale_param'], requires_grad=True)
        loss, lg = model.loss_contrastive(v, t, scale_param.exp().clamp(max=100.),
                                          return_logits=True)
        loss.backward()
        check('batch2.logits_t2v', lg['logits_t2v'], expected(b2, 'logits_t2v'), (5e-5, 1e-5))
        check('batch2.logits_v2t', lg['logits_v2t'], expected(b2, 'logits_v2t'), (5e-5, 1e-5))
        check_exact('batch2.labels', lg['labels'], expected(b2, 'labels'))
        ce = torch.nn.functional.cross_entropy
        check('batch2.ce_t2v', ce(lg['logits_t2v'], lg['labels']), expected(b2, 'ce_t2v'), LOSS)
        check('batch2.ce_v2t', ce(lg['logits_v2t'], lg['labels']), expected(b2, 'ce_v2t'), LOSS)
        check('batch2.contrastive_loss', loss, expected(b2, 'contrastive_loss'), LOSS)
        check('batch2.grad_image_features', v.grad, expected(b2, 'grad_image_features'), GRAD)
        check('batch2.grad_text_features', t.grad, expected(b2, 'grad_text_features'), GRAD)
        check('batch2.grad_logit_scale', scale_param.grad, expected(b2, 'grad_logit_scale'), (0, 0))
    # the model's own clamp: after a step the parameter is clamped to ln 100
    model.clamp_logit_scale()
    assert model.text_encoder.logit_scale.item() <= math.log(100.) + 1e-6


# --------------------------------------------------------------------------- slide inference
def _slide_case(model, fx_inputs, fx_outputs, shared_inputs, case):
    from mmseg.structures import SegDataSample
    from mmengine.config import ConfigDict
    model.set_vocabulary(fx_inputs['class_names'])
    model.bg_thresh = fx_inputs['bg_thresh']
    tc = fx_inputs['test_cfg']
    model.test_cfg = ConfigDict(mode=tc['mode'], crop_size=tuple(tc['crop_size']),
                                stride=tuple(tc['stride']))
    img = shared_inputs['img']
    with torch.no_grad():
        text = model.class_embeddings()
    check(f'{case}.class_text_embedding', text, expected(fx_outputs, 'class_text_embedding'), FWD_GROUP)
    check(f'{case}.logit_scale_used', model.logit_scale, expected(fx_outputs, 'logit_scale_used'), (1e-5, 1e-6))
    boxes, crops = expected(fx_outputs, 'crop_boxes_y1x1y2x2'), expected(fx_outputs, 'crops')
    for k, (box, ref) in enumerate(zip(boxes.tolist() if boxes is not None else [], crops or [])):
        y1, x1, y2, x2 = box
        with torch.no_grad():
            logits, det = model.encode_decode(img[:, :, y1:y2, x1:x2], [{}],
                                              return_details=True)
        check(f'{case}.crop{k}.soft_attn', det['soft_assign'], expected(ref, 'soft_attn'), FWD_IMAGE)
        check(f'{case}.crop{k}.image_feature', det['image_feature'], expected(ref, 'image_feature'), FWD_IMAGE)
        check(f'{case}.crop{k}.region_features', det['region_features'][0], expected(ref, 'region_features'),
              FWD_IMAGE)
        near_tie = expected(ref, 'group_near_tie')
        if near_tie is None:
            near_tie = torch.zeros(logits.shape[-2:], dtype=torch.bool)
        check_exact(f'{case}.crop{k}.group_index', det['group_index'][0].to(torch.uint8),
                    expected(ref, 'group_index'), ignore=near_tie)
        for name in ('pre_affinity_softmax', 'masked_affinity_softmax', 'group_class_scores'):
            check(f'{case}.crop{k}.{name}', det[name][0], expected(ref, name), FWD_GROUP)
        check(f'{case}.crop{k}.image_class_softmax', det['image_class_softmax'], expected(ref, 'image_class_softmax'),
              FWD_GROUP)
        check(f'{case}.crop{k}.bg_thresh_used', det['bg_thresh_used'][0], expected(ref, 'bg_thresh_used'),
              FWD_GROUP)
        check_exact(f'{case}.crop{k}.background_mask', logits[0, 0] > 0.5, expected(ref, 'background_mask'),
                    ignore=near_tie)
        ref_logits = expected(ref, 'logits')  # per-crop dense logits: optional (main case only)
        if ref_logits is not None:
            stable = ~near_tie[None, None].expand_as(logits)
            check(f'{case}.crop{k}.logits', logits * stable, ref_logits * stable, FWD_GROUP)
    # end to end through mmseg's slide inference and postprocess_result
    meta = dict(ori_shape=tuple(fx_inputs['img_meta']['ori_shape'][:2]),
                img_shape=tuple(fx_inputs['img_meta']['img_shape'][:2]),
                pad_shape=tuple(fx_inputs['img_meta']['pad_shape'][:2]),
                padding_size=[0, 0, 0, 0])
    with torch.no_grad():
        ds = model.predict(img, [SegDataSample(metainfo=meta)])[0]
    label = ds.pred_sem_seg.data[0].to(torch.uint8)
    assert 'label_map' in fx_outputs, f'{case}: the fixture has no label_map'
    unstable = expected(fx_outputs, 'unstable_mask')
    check_exact(f'{case}.label_map', label, fx_outputs['label_map'], ignore=unstable)
    print(f'  {case}.unstable pixels:', int(unstable.sum()) if unstable is not None else 'n/a')


@pytest.mark.parametrize('path', fixture_params('segclip', 'slide_inference'))
def test_slide_inference(path):
    import mmcv
    import mmseg_ovs  # noqa: F401
    from mmseg.registry import MODELS
    fx = load_fixture(path)
    inp, out = fx['inputs'], fx['outputs']
    # preprocessing: short side 224 with cv2 bilinear (mmcv imrescale), CLIP mean/std, BGR->RGB
    bgr = inp['image_uint8_rgb_hwc'].numpy()[..., ::-1].copy()
    resized = mmcv.imrescale(bgr, (2048, inp['short_side']), interpolation='bilinear',
                             backend='cv2')
    pre = MODELS.build(dict(type='SegDataPreProcessor', mean=[122.7709383, 116.7460125, 104.09373615],
                            std=[68.5005327, 66.6321579, 70.32316305], bgr_to_rgb=True))
    img = pre(dict(inputs=[torch.from_numpy(resized).permute(2, 0, 1).contiguous()]))['inputs']
    check('img (preprocessing)', img, inp['img'], (1e-5, 0))
    model = load_converted(build_segclip(fx['config'], topk=5), fx).eval()
    _slide_case(model, inp, out, inp, case='main')
    if 'extra_7cls' in inp and 'extra_7cls' in out:
        _slide_case(model, inp['extra_7cls'], out['extra_7cls'], inp, case='extra_7cls')


# --------------------------------------------------------------------------- converter CLI
def test_converter_cli_strict_load(tmp_path):
    """An official-style checkpoint (all keys of the fixture model: training_step_losses.pt plus the
    token embedding of text_encoder.pt) -> tools/convert_segclip_checkpoint.py -> loads STRICTLY into
    SegCLIP with mmengine (as tools/test.py does) and reproduces the image-encoder fixture."""
    need = ('training_step', 'text_encoder', 'image_encoder')
    folders = fixtures_by_dir('segclip', need)  # the three from one folder (one model)
    if not folders:
        msg = f'needs fixtures of kinds {need} in one SegCLIP fixture folder'
        if os.environ.get('MMSEG_OVS_REQUIRE_FIXTURES') == '1':
            pytest.fail(msg)
        pytest.skip(msg)
    for paths in folders:
        _converter_roundtrip(tmp_path, *(load_fixture(paths[k]) for k in need))


def _converter_roundtrip(tmp_path, train, text, image):
    import sys

    from mmengine.runner import load_checkpoint

    from tests.utils import run_tool
    official = dict(train['state_dict'])
    official['clip.token_embedding.weight'] = text['state_dict']['clip.token_embedding.weight']
    src, dst = str(tmp_path / 'segclip.bin'), str(tmp_path / 'converted.pth')
    torch.save({'module.' + k: v for k, v in official.items()}, src)  # DDP-saved prefix
    run_tool([sys.executable, 'tools/convert_segclip_checkpoint.py', src, dst])
    model = build_segclip(train['config'])
    load_checkpoint(model, dst, map_location='cpu', strict=True)
    model.eval()
    with torch.no_grad():
        r = model.encode_image(image['inputs']['image'])
    check('image_feature via converted checkpoint', r['image_feature'],
          image['outputs']['image_feature'], FWD_IMAGE)
    ckpt = torch.load(dst, weights_only=True)
    assert set(ckpt) == {'state_dict', 'meta'}
