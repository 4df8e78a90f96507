"""Mixed precision on CPU: both methods' training step and inference under
``torch.autocast('cpu', dtype=torch.bfloat16)`` (finite losses and gradients, losses close to fp32,
float32 logits), the ``--amp`` optimizer-wrapper set-up, and the device check
(tools/benchmark_train.py --tiny). Label-map agreement on the toy checkpoints: tests/test_quickstart.py."""
import copy
import math
import os.path as osp

import pytest
import torch

from tests.utils import ROOT

BF16 = dict(device_type='cpu', dtype=torch.bfloat16)


def _registry():
    import mmseg_ovs  # noqa: F401
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    return MODELS


def _toy_cfg(name):
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, f'configs/quickstart/{name}_toy.py'))
    cfg.model.backbone.pretrained = None
    cfg.model.text_encoder.pretrained = None
    return cfg


def _build(name, seed=0):
    MODELS = _registry()
    torch.manual_seed(seed)
    cfg = _toy_cfg(name)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model, cfg


def _segclip_batch(model, n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    img = torch.randn(n, 3, 64, 64, generator=g)
    tokens = model.text_encoder.tokenize([f'a photo of a {c}' for c in ['circle', 'star', 'ring', 'cross'] * 2][:n],
                                         32)
    labels = torch.randint(0, 6, (n, 8, 8), generator=g)
    grid = 64 // 8
    L = model.num_centres
    noise = dict(gumbel_noise_main=-torch.empty(n, L, grid * grid).exponential_(generator=g).log(),
                 mask_noise=torch.rand(n, 1 + grid * grid, generator=g))
    keep = int((1 + grid * grid) * (1 - model.mask_ratio)) - 1
    noise['gumbel_noise_mae'] = -torch.empty(n, L, keep).exponential_(generator=g).log()
    return img, tokens, labels, noise


def _pixelclip_batch(n=2, masks=12, seed=0):
    from mmseg.structures import SegDataSample
    from tools.benchmark_train import random_rectangle_masks
    g = torch.Generator().manual_seed(seed)
    inputs = torch.rand(n, 6, 64, 64, generator=g) * 255
    samples = []
    for _ in range(n):
        s = SegDataSample()
        s.unlabeled_masks = random_rectangle_masks(masks, (64, 64), 'cpu', g)
        samples.append(s)
    return inputs, samples


def _grads_finite(model):
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads, 'no gradient reached any parameter'
    return all(bool(torch.isfinite(g).all()) for g in grads) and any(bool(g.abs().sum() > 0) for g in grads)


def test_segclip_train_step_bf16_autocast():
    model, _ = _build('segclip')
    model.train()
    img, tokens, labels, noise = _segclip_batch(model)
    ref = {k: v.item() for k, v in model.compute_losses(img, tokens, labels, **noise).items()}
    model.zero_grad()
    with torch.autocast(**BF16):
        losses = model.compute_losses(img, tokens, labels, **noise)
    # the assignment and all three losses are float32 islands inside autocast
    assert all(v.dtype == torch.float32 for v in losses.values())
    sum(losses.values()).backward()
    for k, v in losses.items():
        assert math.isfinite(v.item()), k
        assert v.item() == pytest.approx(ref[k], rel=0.05, abs=2e-3), (k, v.item(), ref[k])
    assert _grads_finite(model)


def test_pixelclip_train_step_bf16_autocast():
    model, _ = _build('pixelclip')
    model.train()
    inputs, samples = _pixelclip_batch()
    teacher = copy.deepcopy(model.teacher.state_dict())
    ref = model.loss(inputs, samples)['loss_masks'].item()
    model.teacher.load_state_dict(teacher)  # same EMA state for the bf16 step
    model.zero_grad()
    with torch.autocast(**BF16):
        loss = model.loss(inputs, samples)['loss_masks']
    assert loss.dtype == torch.float32 and math.isfinite(loss.item())
    assert loss.item() == pytest.approx(ref, rel=0.05)
    loss.backward()
    assert _grads_finite(model)
    assert model.decode_head.prompt_tokens.grad.abs().sum() > 0
    # the EMA teacher stays float32 under autocast
    assert all(p.dtype == torch.float32 for p in model.teacher.parameters())


def _scenes(n, seed):
    """0-255 images of a few flat-coloured rectangles with mild noise."""
    g = torch.Generator().manual_seed(seed)
    img = (torch.rand(n, 3, 1, 1, generator=g) * 255).expand(n, 3, 64, 64).clone()
    for _ in range(4):
        box = (torch.rand(n, 4, generator=g) * 56).long().sort(1).values
        colour = torch.rand(n, 3, generator=g) * 255
        for i in range(n):
            img[i, :, box[i, 0]:box[i, 2] + 8, box[i, 1]:box[i, 3] + 8] = colour[i, :, None, None]
    return (img + torch.randn(img.shape, generator=g) * 4).clamp(0, 255)


@pytest.mark.parametrize('name', ['segclip', 'pixelclip'])
def test_inference_bf16_autocast(name):
    """Random-weight tiny models: logits float32 and finite under autocast, label maps close to fp32.
    (The >= 99% agreement on trained toy checkpoints is in tests/test_quickstart.py.)"""
    model, _ = _build(name)
    model.eval()
    images = _scenes(4, 123)
    x = (images - 127.5) / 64. if name == 'segclip' else images  # PixelCLIP normalises 0-255 itself
    with torch.no_grad():
        ref = model.predict(x)
        with torch.autocast(**BF16):
            amp = model.predict(x)
    logits = torch.stack([ds.seg_logits.data for ds in amp])
    assert logits.dtype == torch.float32 and bool(torch.isfinite(logits).all())
    ref_maps = torch.cat([ds.pred_sem_seg.data for ds in ref])
    amp_maps = torch.cat([ds.pred_sem_seg.data for ds in amp])
    assert (ref_maps == amp_maps).float().mean().item() >= 0.95  # random weights: near-tied classes


def test_amp_optim_wrapper_config_and_cpu_refusal():
    from mmseg_ovs.engine.amp import amp_optim_wrapper, enable_amp
    base = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3, fused=True), clip_grad=dict(max_norm=1.))
    bf16 = amp_optim_wrapper(base, 'bfloat16')
    assert bf16['type'] == 'AmpOptimWrapper' and bf16['dtype'] == 'bfloat16' and bf16['loss_scale'] == 1.0
    fp16 = amp_optim_wrapper(base, 'float16')
    assert fp16['loss_scale'] == 'dynamic' and fp16['optimizer'] == base['optimizer']
    assert base['type'] == 'OptimWrapper'  # the input is not modified
    with pytest.raises(ValueError, match='amp dtype'):
        amp_optim_wrapper(base, 'int8')
    with pytest.raises(ValueError, match='OptimWrapper'):
        amp_optim_wrapper(dict(base, type='ApexOptimWrapper'))
    if not torch.cuda.is_available():
        from mmengine.config import Config
        with pytest.raises(SystemExit, match='--amp needs a GPU'):
            enable_amp(Config(dict(optim_wrapper=base)))


def test_device_check_tiny_on_cpu(capsys):
    from tools.benchmark_train import main
    rows = main(['--tiny', '--device', 'cpu', '--steps', '1', '--warmup', '0', '--modes', 'fp32', 'bf16',
                 '--peak-tflops', '1.0'])
    out = capsys.readouterr().out
    assert '| method | mode | batch | s/step |' in out
    got = {(r['method'], r['mode']) for r in rows}
    for method in ('segclip', 'pixelclip'):
        for mode in ('fp32', 'fp32 infer', 'bf16', 'bf16 infer'):
            assert (method, mode) in got
    for r in rows:
        assert r['s_per_step'] > 0 and r['images_per_s'] > 0 and r['peak_mem_gib'] > 0
        assert r['tflop_per_step'] > 0 and 0 < r['mfu'] == pytest.approx(r['tflops'] / 1.0)
    # the same model/batch costs the same FLOPs in every precision
    seg = {r['mode']: r['tflop_per_step'] for r in rows if r['method'] == 'segclip'}
    assert seg['fp32'] == seg['bf16'] > seg['fp32 infer'] == seg['bf16 infer']
