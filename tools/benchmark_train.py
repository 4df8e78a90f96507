"""One-command device check: training and inference speed, memory, TFLOP/s and MFU (prints a table).

    python tools/benchmark_train.py                          # GPU: both methods, fp32 / tf32 / bf16
    python tools/benchmark_train.py --tiny --device cpu      # tiny models on CPU (what the test runs)
    python tools/benchmark_train.py --methods pixelclip --modes bf16 --peak-tflops 989

For each method, the recipe's model (``configs/segclip_vitb16.py``, ViT-B/16; PixelCLIP
``configs/pixelclip/pixelclip_vitb16_sa1b.py``) with random weights, the recipe's per-GPU batch
(SegCLIP 96 image-text pairs at 224 px, PixelCLIP 12 weak/strong 640 px crops with 100 masks each)
and the recipe's optimizer (fused AdamW, parameter groups, grad clipping) runs ``--warmup`` + ``--steps``
training steps per precision mode, then ``--steps`` inference batches (SegCLIP: 224 px sliding-window
crops; PixelCLIP: 640 px images, dense CLIP logits for the config's 150 ADE classes).

Modes: ``fp32`` (TF32 off), ``tf32`` (TF32 matmul/cuDNN, CUDA only; the official PixelCLIP setting),
``bf16`` (autocast bfloat16; on CUDA through mmengine's ``AmpOptimWrapper`` as ``--amp`` does),
``fp16`` (autocast float16 with dynamic loss scaling, CUDA only).

Columns: seconds per step (median), images/s, peak device memory (CUDA: max allocated; CPU: the
process's peak RSS), FLOPs per step counted once per method with ``torch.utils.flop_counter``
(forward + backward of the loss; the optimizer update is not counted), achieved TFLOP/s and MFU
against the device's dense peak for that precision (table below; ``--peak-tflops`` overrides it).
Each (method, mode) run is independent: an out-of-memory error prints ``OOM`` and the check goes on.
"""
import argparse
import contextlib
import json
import os.path as osp
import resource
import statistics
import sys
import time

import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# Dense (no sparsity) peak TFLOP/s from the vendors' data sheets: (fp32, tf32, bf16/fp16 tensor core).
# Matched as a case-insensitive substring of torch.cuda.get_device_name(), longest key first.
PEAK_TFLOPS = {
    'H200': (66.9, 494.7, 989.4),
    'H100 PCIe': (51.2, 378.0, 756.0),
    'H100 NVL': (60.0, 417.5, 835.0),
    'H100': (66.9, 494.7, 989.4),  # SXM
    'A100': (19.5, 156.0, 312.0),
    'L40S': (91.6, 183.0, 362.1),
    'L40': (90.5, 90.5, 181.0),
    'L4': (30.3, 60.0, 121.0),
    'A10': (31.2, 62.5, 125.0),
    'RTX 4090': (82.6, 82.6, 165.2),
    'RTX 3090': (35.6, 35.6, 71.0),
    'V100': (15.7, None, 125.0),  # no TF32/bf16: the last entry is fp16
}
MODE_PEAK_INDEX = dict(fp32=0, tf32=1, bf16=2, fp16=2)
DEFAULT_CONFIGS = dict(segclip='configs/segclip_vitb16.py', pixelclip='configs/pixelclip/pixelclip_vitb16_sa1b.py')
TINY_CONFIGS = dict(segclip='configs/quickstart/segclip_toy.py', pixelclip='configs/quickstart/pixelclip_toy.py')


def device_peak(device: torch.device, mode: str, override=None):
    if override:
        return override
    if device.type != 'cuda':
        return None
    name = torch.cuda.get_device_name(device).lower()
    for key in sorted(PEAK_TFLOPS, key=len, reverse=True):
        if key.lower() in name:
            return PEAK_TFLOPS[key][MODE_PEAK_INDEX[mode]]
    return None


def sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def set_tf32(enabled: bool) -> None:
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled


# ---------------------------------------------------------------------------------------------- models
def build_method(method: str, config: str, device: torch.device, tiny: bool):
    """Model (random weights) + optimizer config + input builders for one method."""
    from mmengine.config import Config
    from mmseg.registry import MODELS

    cfg = Config.fromfile(osp.join(ROOT, config) if not osp.isabs(config) else config)
    m = cfg.model
    m.backbone.pretrained = None
    m.text_encoder.pretrained = None
    if method == 'segclip':
        m.class_names = ['background'] + [f'class {i}' for i in range(20)]
        m.bg_thresh = 0.8
    model = MODELS.build(m).to(device)
    model.init_weights()
    size = tuple(m.data_preprocessor['size'])
    return model, cfg, size


def segclip_batch(model, batch: int, size, device):
    grid = size[0] // model.backbone.patch_size[0]
    img = torch.randn(batch, 3, *size, device=device)
    tokens = model.text_encoder.tokenize(['a photo of a dog on the grass'] * batch, 32).to(device)
    labels = torch.randint(0, 30, (batch, grid, grid), device=device)
    return img, tokens, labels


def random_rectangle_masks(n: int, size, device, generator=None) -> torch.Tensor:
    """(n, H, W) bool masks of random (overlapping) rectangles."""
    H, W = size
    c = torch.rand(n, 4, generator=generator)
    ys = (c[:, :2] * H).long().sort(dim=1).values.to(device)
    xs = (c[:, 2:] * W).long().sort(dim=1).values.to(device)
    rows = torch.arange(H, device=device).view(1, H, 1)
    cols = torch.arange(W, device=device).view(1, 1, W)
    return ((rows >= ys[:, :1, None]) & (rows <= ys[:, 1:, None]) &
            (cols >= xs[:, :1, None]) & (cols <= xs[:, 1:, None]))


def pixelclip_batch(batch: int, size, masks: int, device):
    from mmseg.structures import SegDataSample
    gen = torch.Generator().manual_seed(0)
    inputs = (torch.rand(batch, 6, *size, generator=gen) * 255).to(device)
    samples = []
    for _ in range(batch):
        s = SegDataSample()
        s.unlabeled_masks = random_rectangle_masks(masks, size, device, gen)
        samples.append(s)
    return inputs, samples


# ---------------------------------------------------------------------------------------------- steps
def make_train_step(method, model, batch):
    if method == 'segclip':
        img, tokens, labels = batch

        def forward():
            model.clamp_logit_scale()
            return model.compute_losses(img, tokens, labels)
    else:
        inputs, samples = batch

        def forward():
            return model.loss(inputs, samples)
    return forward


def make_infer_step(method, model, batch, size):
    if method == 'segclip':
        crops = batch[0]
        metas = [dict(img_shape=size, ori_shape=size, pad_shape=size)] * crops.shape[0]
        return lambda: model.encode_decode(crops, metas)
    inputs = batch[0][:, :3]  # 0-255 images; the model normalises and squashes them (test_cfg)
    metas = [dict(img_shape=size, ori_shape=size)] * inputs.shape[0]
    return lambda: model.inference(inputs, metas)


def autocast_ctx(device: torch.device, mode: str):
    if mode in ('bf16', 'fp16'):
        dtype = torch.bfloat16 if mode == 'bf16' else torch.float16
        return torch.autocast(device.type, dtype=dtype)
    return contextlib.nullcontext()


def build_optim(model, cfg, device: torch.device, mode: str):
    from mmengine.optim import build_optim_wrapper
    from mmseg_ovs.engine.amp import amp_optim_wrapper
    ow = cfg.optim_wrapper.to_dict() if hasattr(cfg.optim_wrapper, 'to_dict') else dict(cfg.optim_wrapper)
    if device.type == 'cuda' and mode in ('bf16', 'fp16'):  # as tools/train.py --amp
        ow = amp_optim_wrapper(ow, 'bfloat16' if mode == 'bf16' else 'float16')
    return build_optim_wrapper(model, ow)


def count_flops(fn, backward: bool) -> int:
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        out = fn()
        if backward:
            sum(out.values()).backward()
    return counter.get_total_flops()


def peak_memory_gib(device: torch.device) -> float:
    if device.type == 'cuda':
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB (Linux)


def reset_memory(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def timed(fn, n: int, device) -> list:
    times = []
    for _ in range(n):
        sync(device)
        t = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t)
    return times


def run_method(method: str, args, device: torch.device) -> list:
    torch.manual_seed(0)
    config = (args.segclip_config if method == 'segclip' else args.pixelclip_config) or \
        (TINY_CONFIGS if args.tiny else DEFAULT_CONFIGS)[method]
    model, cfg, size = build_method(method, config, device, args.tiny)
    bs = args.segclip_batch if method == 'segclip' else args.pixelclip_batch
    if bs is None:
        bs = (4 if method == 'segclip' else 2) if args.tiny else (96 if method == 'segclip' else 12)
    if method == 'segclip':
        batch = segclip_batch(model, bs, size, device)
    else:
        batch = pixelclip_batch(bs, size, args.masks, device)
    train_fwd = make_train_step(method, model, batch)
    infer = make_infer_step(method, model, batch, size)

    # FLOPs once per method (dtype-independent): forward + backward of the loss, and inference
    model.train()
    model.zero_grad(set_to_none=True)
    train_flops = count_flops(train_fwd, backward=True)
    model.zero_grad(set_to_none=True)
    model.eval()
    # (parameters frozen while counting: FlopCounterMode's module tracker trips over views of
    # trainable parameters made under no_grad)
    trainable = [p for p in model.parameters() if p.requires_grad]
    model.requires_grad_(False)
    with torch.no_grad():
        infer()  # the class-embedding cache is filled once, outside the count
        infer_flops = count_flops(infer, backward=False)
    for p in trainable:
        p.requires_grad_(True)

    rows = []
    for mode in args.modes:
        if mode in ('tf32', 'fp16') and device.type != 'cuda':
            print(f'[{method}] {mode}: skipped (CUDA only)', flush=True)
            continue
        if device.type == 'cuda':
            set_tf32(mode == 'tf32')
        peak = device_peak(device, mode, args.peak_tflops)
        row = dict(method=method, mode=mode, batch=bs)
        try:
            reset_memory(device)
            optim = build_optim(model, cfg, device, mode)
            model.train()

            def step():
                with optim.optim_context(model) if device.type == 'cuda' and mode in ('bf16', 'fp16') \
                        else autocast_ctx(device, mode):
                    losses = train_fwd()
                optim.update_params(sum(losses.values()))

            timed(step, args.warmup, device)
            times = timed(step, args.steps, device)
            sec = statistics.median(times)
            row.update(s_per_step=sec, images_per_s=bs / sec, peak_mem_gib=peak_memory_gib(device),
                       tflop_per_step=train_flops / 1e12, tflops=train_flops / sec / 1e12)
            row['mfu'] = row['tflops'] / peak if peak else None
            del optim
            model.zero_grad(set_to_none=True)
            model.eval()
            reset_memory(device)
            with torch.no_grad(), autocast_ctx(device, mode):
                timed(infer, 1, device)
                itimes = timed(infer, args.steps, device)
            isec = statistics.median(itimes)
            irow = dict(method=method, mode=mode + ' infer', batch=bs, s_per_step=isec, images_per_s=bs / isec,
                        peak_mem_gib=peak_memory_gib(device), tflop_per_step=infer_flops / 1e12,
                        tflops=infer_flops / isec / 1e12)
            irow['mfu'] = irow['tflops'] / peak if peak else None
            rows += [row, irow]
        except torch.cuda.OutOfMemoryError:
            row['error'] = 'OOM'
            rows.append(row)
            model.zero_grad(set_to_none=True)
            reset_memory(device)
        print(f'[{method}] {mode}: ' + ', '.join(format_row(r) for r in rows[-2:] if r['mode'].startswith(mode)),
              flush=True)
    if device.type == 'cuda':
        set_tf32(False)
    del model
    reset_memory(device)
    return rows


def format_row(r: dict) -> str:
    if 'error' in r:
        return f'{r["mode"]} {r["error"]}'
    return f'{r["mode"]} {r["s_per_step"]:.3f} s/step'


def fmt(v, spec):
    return 'n/a' if v is None else format(v, spec)


def markdown_table(rows: list, device_name: str) -> str:
    lines = [f'device: {device_name}, torch {torch.__version__}',
             '',
             '| method | mode | batch | s/step | images/s | peak mem (GiB) | TFLOP/step | TFLOP/s | MFU |',
             '|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        if 'error' in r:
            lines.append(f'| {r["method"]} | {r["mode"]} | {r["batch"]} | {r["error"]} | | | | | |')
            continue
        lines.append(f'| {r["method"]} | {r["mode"]} | {r["batch"]} | {r["s_per_step"]:.3f} | '
                     f'{r["images_per_s"]:.1f} | {r["peak_mem_gib"]:.2f} | {fmt(r["tflop_per_step"], ".3g")} | '
                     f'{fmt(r["tflops"], ".3g")} | {fmt(r["mfu"] and 100 * r["mfu"], ".1f")}'
                     f'{"%" if r["mfu"] else ""} |')
    return '\n'.join(lines)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--methods', nargs='+', default=['segclip', 'pixelclip'], choices=['segclip', 'pixelclip'])
    p.add_argument('--modes', nargs='+', default=['fp32', 'tf32', 'bf16'], choices=['fp32', 'tf32', 'bf16', 'fp16'])
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--tiny', action='store_true', help='the quickstart tiny-CLIP configs (CPU test)')
    p.add_argument('--steps', type=int, default=5, help='timed steps per mode (median reported)')
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--segclip-batch', type=int, help='default 96 (4 with --tiny)')
    p.add_argument('--pixelclip-batch', type=int, help='default 12 (2 with --tiny)')
    p.add_argument('--masks', type=int, default=100, help='PixelCLIP masks per image')
    p.add_argument('--segclip-config')
    p.add_argument('--pixelclip-config')
    p.add_argument('--peak-tflops', type=float, help='peak TFLOP/s for MFU (overrides the device table)')
    p.add_argument('--out', help='also write the rows as JSON here')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import mmseg_ovs  # noqa: F401  (registers the components)
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')
    device = torch.device(args.device)
    if device.type == 'cuda':
        torch.cuda.set_device(device)
    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else f'CPU ({torch.get_num_threads()} threads)'
    print(f'device check on {name}, methods {args.methods}, modes {args.modes}'
          f'{" (tiny models)" if args.tiny else ""}', flush=True)
    start = time.perf_counter()
    rows = []
    for method in args.methods:
        rows += run_method(method, args, device)
    print()
    print(markdown_table(rows, name))
    print(f'\ntotal {time.perf_counter() - start:.0f} s')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(device=name, torch=torch.__version__, rows=rows), f, indent=1)
    return rows


if __name__ == '__main__':
    main()
