"""The official runs' settings: TF32/cuDNN flags, ConvNeXt parameter groups, in-training validation
template, fp16 ViT text classifier, converted SegCLIP checkpoints evaluated with batch mixing."""
import glob
import os.path as osp

import pytest
import torch
from torch import nn

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _cfg(rel):
    from mmengine.config import Config
    return Config.fromfile(osp.join(ROOT, 'configs', rel))


def _hook(cfg, name):
    found = [h for h in cfg.get('custom_hooks', []) if h['type'] == name]
    assert len(found) == 1, f'{name} not in custom_hooks of the config'
    return found[0]


# ---------------------------------------------------------------------------------------- TF32 / cuDNN
def test_configs_set_the_official_precision():
    for rel in ('pixelclip/pixelclip_vitb16_sa1b.py', 'pixelclip/pixelclip_convnextb_sa1b.py',
                'pixelclip/pixelclip_vitb16_dino.py', 'benchmarks/pixelclip/pixelclip_vitb16_ade150.py',
                'benchmarks/pixelclip/pixelclip_convnextb_voc20.py'):
        h = _hook(_cfg(rel), 'CUDAPrecisionHook')  # set_float32_matmul_precision("high") + CUDNN_BENCHMARK
        assert (h['tf32_matmul'], h['tf32_cudnn'], h['cudnn_benchmark']) == (True, True, True), rel
    for rel in ('segclip_vitb16.py', 'benchmarks/segclip/segclip_vitb16_voc21.py'):
        h = _hook(_cfg(rel), 'CUDAPrecisionHook')  # torch 1.8 defaults: TF32 on, benchmark off
        assert (h['tf32_matmul'], h['tf32_cudnn'], h['cudnn_benchmark']) == (True, True, False), rel


def test_cuda_precision_hook_sets_and_restores_flags_without_touching_cpu():
    import mmseg_ovs  # noqa: F401
    from mmseg.registry import HOOKS

    from mmseg_ovs.engine import get_cuda_precision, set_cuda_precision
    torch.manual_seed(0)
    a, b = torch.randn(64, 96), torch.randn(96, 80)
    x, w = torch.randn(1, 3, 17, 19), torch.randn(8, 3, 3, 3)
    ref_mm, ref_conv = a @ b, nn.functional.conv2d(x, w)
    before = get_cuda_precision()
    mkldnn_precision = torch.backends.mkldnn.matmul.fp32_precision
    off = set_cuda_precision(tf32_matmul=False, tf32_cudnn=False, cudnn_benchmark=False)
    try:
        hook = HOOKS.build(dict(type='CUDAPrecisionHook', tf32_matmul=True, tf32_cudnn=True, cudnn_benchmark=True))
        state_off = get_cuda_precision()
        hook.before_run(None)
        on = get_cuda_precision()
        assert on != state_off
        assert on['cudnn_benchmark'] is True
        assert on['tf32_matmul'] is True and on['tf32_cudnn'] is True
        assert torch.backends.mkldnn.matmul.fp32_precision == mkldnn_precision
        # CUDA flags only: the CPU (oneDNN) matmul precision and CPU results are unchanged
        assert torch.get_float32_matmul_precision() == 'high'  # readable: no mixed-API error
        assert torch.equal(a @ b, ref_mm) and torch.equal(nn.functional.conv2d(x, w), ref_conv)
        hook.after_run(None)
        assert get_cuda_precision() == state_off
        # None leaves a flag as it is
        set_cuda_precision(tf32_matmul=None, tf32_cudnn=None, cudnn_benchmark=None)
        assert get_cuda_precision() == state_off
    finally:
        set_cuda_precision(**off)
    assert get_cuda_precision() == before


# ---------------------------------------------------------------------------------------- PixelCLIP
def test_pixelclip_validation_template_and_fp16_classifier():
    for rel in ('pixelclip/pixelclip_vitb16_sa1b.py', 'pixelclip/pixelclip_vitb16_dino.py',
                'pixelclip/pixelclip_convnextb_sa1b.py', 'pixelclip/pixelclip_convnextb_dino.py'):
        cfg = _cfg(rel)
        assert cfg.model.templates == 'single', rel  # official training config: PROMPT_ENSEMBLE_TYPE single
        assert cfg.model.text_encoder.cache_dtype == ('float16' if 'vitb16' in rel else 'float32'), rel
    for path in glob.glob(osp.join(ROOT, 'configs', 'benchmarks', 'pixelclip', '*.py')):
        cfg = _cfg(osp.relpath(path, osp.join(ROOT, 'configs')))
        assert cfg.model.templates == 'imagenet_select', path  # eval.sh
        assert cfg.model.text_encoder.cache_dtype == ('float16' if 'vitb16' in path else 'float32'), path
    for bench in ('voc20', 'context59', 'coco_stuff171', 'cityscapes', 'ade150'):  # PixelCLIP's CLIP rows
        assert _cfg(f'benchmarks/clip_baseline/clip_vitb16_{bench}.py').model.text_encoder.cache_dtype == 'float16'


def _tiny_convnext_pixelclip():
    import mmseg_ovs  # noqa: F401
    from mmseg.registry import MODELS
    cfg = dict(embed_dim=32, vision_cfg=dict(timm_model_name='convnext_atto', timm_model_pretrained=False,
                                             timm_pool='', timm_proj='linear', image_size=64),
               text_cfg=dict(context_length=77, vocab_size=49408, width=64, heads=4, layers=2))
    shipped = _cfg('pixelclip/pixelclip_convnextb_sa1b.py').model
    return MODELS.build(dict(
        type='PixelCLIPSegmentor', backbone=dict(type='OpenCLIPConvNeXt', model_cfg=cfg),
        text_encoder=dict(type='OpenCLIPTextEncoder', model_cfg=cfg),
        decode_head=dict(type='OnlineClusterHead', num_clusters=8, eps=1.0, mask_resolution=(32, 32),
                         decoder=dict(type='PixelCLIPMaskDecoder', mid_channels=(16, 16, 16))),
        finetune=shipped.finetune, clip_resolution=(64, 64), class_names=['a', 'b']))


def test_vit_param_groups_equal_the_official_grouping():
    """ViT-B/16 recipe (attention projections + positional embedding trained, norms frozen): mmengine's
    grouping of the shipped config already equals the official one, parameter by parameter."""
    import mmseg_ovs  # noqa: F401
    from mmengine.config import Config
    from mmseg.registry import MODELS
    tiny = Config.fromfile(osp.join(ROOT, 'configs', '_base_', 'clip', 'tiny_vit.py')).tiny_clip_cfg.to_dict()
    cfg = _cfg('pixelclip/pixelclip_vitb16_sa1b.py')
    model = MODELS.build(dict(
        type='PixelCLIPSegmentor', backbone=dict(type='PixelCLIPDenseViT', model_cfg=tiny),
        text_encoder=dict(type='OpenCLIPTextEncoder', model_cfg=tiny),
        decode_head=dict(type='OnlineClusterHead', num_clusters=8, mask_resolution=(32, 32),
                         decoder=dict(type='PixelCLIPMaskDecoder', mid_channels=(16, 16, 16))),
        finetune=cfg.model.finetune, clip_resolution=(64, 64), class_names=['a', 'b']))
    ours, official = _built_settings(model, cfg.optim_wrapper), official_param_settings(model)
    assert set(ours) == set(official) and any('positional_embedding' in n for n in ours)
    for name in sorted(official):
        assert ours[name] == pytest.approx(official[name], rel=1e-12), name


def official_param_settings(model, base_lr=2e-4, wd=1e-4, clip_mult=0.01, prompt_mult=10.0):
    """PixelCLIP train_net.py build_optimizer, restated on this model's names: the CLIP image tower
    (official module name 'clip_model', here 'backbone') x0.01, 'prompt_tokens' x10; every parameter of a
    norm module (LayerNorm/GroupNorm/BatchNorm/InstanceNorm, subclasses included) WEIGHT_DECAY_NORM = 0,
    of an nn.Embedding WEIGHT_DECAY_EMBED = 0."""
    norm_types = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.modules.instancenorm._InstanceNorm,
                  nn.LayerNorm, nn.LocalResponseNorm)
    out, memo = {}, set()
    for mod_name, mod in model.named_modules():
        for p_name, p in mod.named_parameters(recurse=False):
            if not p.requires_grad or id(p) in memo:
                continue
            memo.add(id(p))
            lr, decay = base_lr, wd
            if mod_name.startswith('backbone'):
                lr *= clip_mult
            if 'prompt_tokens' in p_name:
                lr *= prompt_mult
            if isinstance(mod, norm_types):
                decay = 0.0
            if isinstance(mod, nn.Embedding):
                decay = 0.0
            out[f'{mod_name}.{p_name}'] = (lr, decay)
    return out


def _built_settings(model, optim_wrapper_cfg):
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')  # as the runner does (default_scope of every config)
    optim = build_optim_wrapper(model, optim_wrapper_cfg).optimizer
    by_id = {}
    for g in optim.param_groups:
        for p in g['params']:
            by_id[id(p)] = (g['lr'], g['weight_decay'])
    return {n: by_id[id(p)] for n, p in model.named_parameters() if p.requires_grad}


def test_convnext_param_groups_equal_the_official_grouping():
    model = _tiny_convnext_pixelclip()
    optim_cfg = _cfg('pixelclip/pixelclip_convnextb_sa1b.py').optim_wrapper
    assert optim_cfg.constructor == 'NormDecayOptimWrapperConstructor'
    ours = _built_settings(model, optim_cfg)
    official = official_param_settings(model)
    assert set(ours) == set(official)
    for name in sorted(official):  # every trainable parameter: lr and weight decay
        assert ours[name] == pytest.approx(official[name], rel=1e-12), name
    # the trunk's norm layers train (finetune='full') and get lr x0.01 with decay 0
    trunk_norms = [n for n in official if n.startswith('backbone') and '.norm' in n]
    assert trunk_norms and all(ours[n] == pytest.approx((2e-6, 0.0)) for n in trunk_norms)
    assert ours['decode_head.prompt_tokens'] == pytest.approx((2e-3, 1e-4))
    # mmengine's default constructor decays them (custom key 'backbone' bypasses norm_decay_mult)
    default = _built_settings(model, dict(optim_cfg, constructor='DefaultOptimWrapperConstructor'))
    assert all(default[n][1] == pytest.approx(1e-4) for n in trunk_norms)


# ---------------------------------------------------------------------------------------- SegCLIP
def test_converted_segclip_checkpoint_evaluates_with_batch_mixing(tmp_path):
    """A checkpoint converted from the official release carries neck.batch_mixing_legacy=True in its
    meta; the runner built from the shipped benchmark config applies it when it loads the checkpoint."""
    from mmengine.config import Config
    from mmengine.runner import Runner

    from mmseg_ovs.utils.convert_segclip import segclip_checkpoint_meta
    tiny = Config.fromfile(osp.join(ROOT, 'configs', '_base_', 'clip', 'tiny_vit.py')).tiny_clip_cfg.to_dict()
    cfg = _cfg('benchmarks/segclip/segclip_vitb16_voc21.py')
    assert _hook(cfg, 'CheckpointModelSettingsHook')
    cfg.merge_from_dict(dict(model=dict(backbone=dict(model_name=None, model_cfg=tiny, pretrained=None),
                                        text_encoder=dict(model_name=None, model_cfg=tiny, pretrained=None),
                                        first_stage_layers=2, reconstruction=None)))
    cfg.work_dir = str(tmp_path / 'work')
    for key in [k for k in cfg.keys() if k.startswith(('train', 'optim', 'param_sch', 'custom_keys', '_'))]:
        cfg.pop(key)  # the test runner does not use them (tools/test.py drops them too); faster config dumps
    runner = Runner.from_cfg(cfg)
    assert runner.model.neck.batch_mixing_legacy is False  # the config default: per-image attention
    state = runner.model.state_dict()
    own = str(tmp_path / 'own.pth')
    torch.save(dict(state_dict=state, meta=dict(method='SegCLIP')), own)
    runner.load_checkpoint(own)
    assert runner.model.neck.batch_mixing_legacy is False  # a checkpoint without the record: unchanged
    converted = str(tmp_path / 'converted.pth')
    torch.save(dict(state_dict=state, meta=segclip_checkpoint_meta('segclip.bin')), converted)
    runner.load_checkpoint(converted)
    assert runner.model.neck.batch_mixing_legacy is True
    assert all(blk.batch_mixing_legacy for blk in runner.model.neck.cross_att)
    # OVSInferencer (no runner) applies the record too
    from mmseg_ovs.apis import OVSInferencer
    inferencer = OVSInferencer(cfg, converted, device='cpu')
    assert inferencer.model.neck.batch_mixing_legacy is True
    assert OVSInferencer(cfg, own, device='cpu').model.neck.batch_mixing_legacy is False
    # the switch back, and a record that does not fit the model is an error naming it
    from mmseg_ovs.engine import apply_model_settings
    apply_model_settings(runner.model, {'neck.batch_mixing_legacy': False})
    assert runner.model.neck.batch_mixing_legacy is False
    with pytest.raises(AttributeError, match='neck.no_such_flag'):
        apply_model_settings(runner.model, {'neck.no_such_flag': True})
    no_legacy = segclip_checkpoint_meta('segclip.bin', batch_mixing_legacy=False)
    assert 'model_settings' not in no_legacy
