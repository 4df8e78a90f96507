"""The faster training step: fused AdamW on merged parameter groups gives every parameter the
recipe's lr / weight decay and the same update as the per-parameter default; the compile switch
gives the same outputs as eager on the tiny models."""
import os.path as osp

import pytest
import torch

from tests.utils import ROOT


def _registry():
    import mmseg_ovs  # noqa: F401
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    return MODELS


def _cfg(path, tiny_from=None):
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, path))
    cfg.model.backbone.pretrained = None
    cfg.model.text_encoder.pretrained = None
    return cfg


def _settings(optimizer):
    """{parameter: (lr, weight_decay, betas, eps)} over all groups."""
    out = {}
    for g in optimizer.param_groups:
        for p in g['params']:
            assert p not in out, 'parameter in two groups'
            out[p] = (g['lr'], g['weight_decay'], tuple(g['betas']), g['eps'])
    return out


def _default_optim_cfg(optim_wrapper):
    """The same optimizer config through mmengine's per-parameter default constructor, unfused."""
    cfg = optim_wrapper.to_dict()
    cfg.pop('constructor', None)
    cfg['optimizer'] = {k: v for k, v in cfg['optimizer'].items() if k not in ('fused', 'foreach')}
    return cfg


@pytest.mark.parametrize('config', ['configs/segclip_vitb16.py', 'configs/pixelclip/pixelclip_vitb16_sa1b.py',
                                    'configs/quickstart/segclip_toy.py', 'configs/quickstart/pixelclip_toy.py'])
def test_fused_merged_groups_keep_every_parameter_setting(config):
    from mmengine.optim import build_optim_wrapper
    MODELS = _registry()
    cfg = _cfg(config)
    # SegCLIP at ViT-B/16 size without allocating weights (PixelCLIP's prompt set-up reads its weights)
    with torch.device('meta' if 'segclip' in config else 'cpu'):
        model = MODELS.build(cfg.model)
    assert cfg.optim_wrapper.constructor == 'MergedGroupsOptimWrapperConstructor'
    assert cfg.optim_wrapper.optimizer.fused is True
    fast = build_optim_wrapper(model, cfg.optim_wrapper).optimizer
    ref = build_optim_wrapper(model, _default_optim_cfg(cfg.optim_wrapper)).optimizer
    assert fast.defaults['fused'] and not ref.defaults.get('fused')
    got, want = _settings(fast), _settings(ref)
    trainable = {p for p in model.parameters() if p.requires_grad}  # frozen ones are left out by both
    assert set(got) == set(want) == trainable
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert got[p] == want[p], name
    # few groups (one per distinct setting) instead of one per parameter
    assert len(fast.param_groups) == len(set(want.values())) < len(ref.param_groups)


def test_fused_merged_step_matches_default_step():
    """Two optimizer steps on a tiny SegCLIP: fused AdamW on merged groups == per-parameter AdamW."""
    from mmengine.optim import build_optim_wrapper
    MODELS = _registry()
    cfg = _cfg('configs/quickstart/segclip_toy.py')
    torch.manual_seed(0)
    a = MODELS.build(cfg.model)
    b = MODELS.build(cfg.model)
    b.load_state_dict(a.state_dict())
    fast = build_optim_wrapper(a, cfg.optim_wrapper)
    ref = build_optim_wrapper(b, _default_optim_cfg(cfg.optim_wrapper))
    g = torch.Generator().manual_seed(0)
    img = torch.randn(4, 3, 64, 64, generator=g)
    labels = torch.randint(0, 6, (4, 8, 8), generator=g)
    tokens = a.text_encoder.tokenize(['a photo of a circle'] * 4, 32)
    for step in range(2):
        for model, optim in ((a, fast), (b, ref)):
            torch.manual_seed(step)  # same Gumbel / masking noise
            losses = model.compute_losses(img, tokens, labels)
            optim.update_params(sum(losses.values()))
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        assert torch.allclose(pa, pb, rtol=1e-4, atol=1e-6), name
    moved = sum(int(not torch.equal(pa, pb0)) for pa, pb0 in zip(a.parameters(), MODELS.build(cfg.model).parameters()))
    assert moved > 0


@pytest.mark.parametrize('name', ['segclip', 'pixelclip'])
def test_compiled_image_towers_match_eager(name):
    from mmseg_ovs.engine import compile_image_towers
    MODELS = _registry()
    cfg = _cfg(f'configs/quickstart/{name}_toy.py')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    x = torch.rand(2, 3, 64, 64) * 255
    with torch.no_grad():
        if name == 'segclip':
            ref = model.encode_image((x - 127.5) / 64.)['image_feature']
        else:
            ref = model.extract_feat(x)
    keys = set(model.state_dict())
    # aot_eager: dynamo capture + AOTAutograd as with inductor, without its C++ build (~70 s cold on
    # 2 cores; inductor gives the same result, checked by hand)
    compiled = compile_image_towers(model, backend='aot_eager')
    assert len(compiled) == len(model.backbone.blocks) * (2 if name == 'pixelclip' else 1)
    assert set(model.state_dict()) == keys  # checkpoints unchanged by compiling
    with torch.no_grad():
        if name == 'segclip':
            out = model.encode_image((x - 127.5) / 64.)['image_feature']
        else:
            out = model.extract_feat(x)
    assert torch.allclose(out, ref, rtol=1e-4, atol=1e-5), (out - ref).abs().max()


def test_compile_switch_through_the_runner(tmp_path):
    """``compile_image_towers`` in a config -> CompileImageTowersHook -> the towers' blocks are
    compiled when a real mmengine Runner starts (off by default)."""
    from mmengine.runner import Runner
    from tools._runner_utils import add_compile_hook
    _registry()
    cfg = _cfg('configs/quickstart/pixelclip_toy.py')
    assert cfg.compile_image_towers is False
    add_compile_hook(cfg)
    assert not any(h['type'] == 'CompileImageTowersHook' for h in cfg.get('custom_hooks', []))
    cfg.compile_image_towers = dict(backend='aot_eager')
    add_compile_hook(cfg)
    assert cfg.custom_hooks[-1] == dict(type='CompileImageTowersHook', enabled=dict(backend='aot_eager'))
    runner = Runner(model=cfg.model, work_dir=str(tmp_path), custom_hooks=cfg.custom_hooks,
                    default_scope='mmseg')
    blocks = list(runner.model.backbone.blocks) + list(runner.model.teacher.blocks)
    assert all(getattr(b, '_compiled_call_impl', None) is None for b in blocks)
    runner.call_hook('before_run')
    assert all(b._compiled_call_impl is not None for b in blocks)


def test_segclip_joint_stage1_matches_two_passes():
    """compute_losses runs stage 1 of the unmasked and the masked pass together: same losses
    (float rounding), same gradients and the same random draws as the two passes one by one."""
    from tests.test_segclip import tiny_segclip
    model = tiny_segclip().train()
    torch.manual_seed(1)
    img = torch.randn(2, 3, 64, 64)
    tokens = model.text_encoder.tokenize(['a dog on grass', 'two cats'], 32)
    labels = torch.randint(0, 5, (2, 8, 8))

    def grads(total):
        model.zero_grad(set_to_none=True)
        total.backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    torch.manual_seed(0)
    joint = model.compute_losses(img, tokens, labels)
    g_joint = grads(sum(joint.values()))
    torch.manual_seed(0)  # reference: the passes one after the other, as before
    text = model.encode_text(tokens)
    emb = model.backbone.embed(img)
    enc = model.encode_image(img, tokens=emb)
    ref = dict(loss_contrastive=model.loss_contrastive(enc['image_feature'], text, model.logit_scale),
               loss_superpixel_kl=model.loss_superpixel(enc['hard_assign'], labels),
               loss_reconstruction=model.reconstruction_loss(img, tokens=emb))
    g_ref = grads(sum(ref.values()))
    assert joint.keys() == ref.keys()
    for k in ref:
        torch.testing.assert_close(joint[k], ref[k], rtol=1e-5, atol=1e-6)
    assert g_joint.keys() == g_ref.keys() and len(g_ref) > 50
    for n in g_ref:
        torch.testing.assert_close(g_joint[n], g_ref[n], rtol=1e-4, atol=1e-6, msg=n)
    # the joint blocks themselves, against forward_blocks on each token set
    a, b = torch.randn(2, 9, emb.shape[-1]), torch.randn(3, 4, emb.shape[-1])
    for out, x in zip(model.backbone.forward_blocks_joint([a, b], 0, 3), (a, b)):
        torch.testing.assert_close(out, model.backbone.forward_blocks(x, 0, 3), rtol=1e-5, atol=1e-5)
