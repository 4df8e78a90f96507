"""Time SegCLIP training steps and sliding-window inference (prints figures; not a test).

    python tools/benchmark_segclip.py [--config configs/segclip_vitb16.py] [--batch 96]
        [--steps 10] [--device cuda] [--legacy-batch-mixing] [--profile 5]

Random weights and random data (images, 32-token captions, superpixel labels); one step =
text + two image passes (unmasked, 75%-masked) + the three losses + backward + AdamW with the
recipe's parameter groups and grad clipping.
"""
import argparse
import os.path as osp
import sys
import time

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', default='configs/segclip_vitb16.py')
    parser.add_argument('--batch', type=int, default=96)
    parser.add_argument('--steps', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--legacy-batch-mixing', action='store_true')
    parser.add_argument('--profile', type=int, default=0, metavar='N',
                        help='profile one more training step and print its top-N ops (self time)')
    args = parser.parse_args()

    import mmseg_ovs  # noqa: F401
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    cfg = Config.fromfile(args.config)
    cfg.model.backbone.pretrained = None
    cfg.model.text_encoder.pretrained = None
    cfg.model.neck.batch_mixing_legacy = args.legacy_batch_mixing
    background = [] if cfg.model.get('bg_thresh') is None else ['background']  # toy configs: none
    cfg.model.class_names = background + [f'class {i}' for i in range(20)]
    model = MODELS.build(cfg.model).to(args.device)
    model.init_weights()
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    B, dev = args.batch, args.device
    size = cfg.model.data_preprocessor.get('size', cfg.crop_size)[0]  # the training crop
    grid = size // model.backbone.patch_size[0]
    img = torch.randn(B, 3, size, size, device=dev)
    tokens = model.text_encoder.tokenize(['a photo of a dog on the grass'] * B, 32).to(dev)
    labels = torch.randint(0, 30, (B, grid, grid), device=dev)

    def sync():
        if dev.startswith('cuda'):
            torch.cuda.synchronize()

    model.train()
    times = []
    for i in range(args.warmup + args.steps):
        sync()
        t = time.perf_counter()
        model.clamp_logit_scale()
        losses = model.compute_losses(img, tokens, labels)
        optim.update_params(sum(losses.values()))
        sync()
        if i >= args.warmup:
            times.append(time.perf_counter() - t)
    step = sum(times) / len(times)
    print(f'train step  batch {B} on {dev}: {step * 1e3:.1f} ms/step, {B / step:.1f} images/s '
          f'({", ".join(f"{k}={v.item():.3f}" for k, v in losses.items())})')
    if dev.startswith('cuda'):
        print(f'peak memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB')
    else:
        import resource
        print(f'peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB')
    if args.profile:
        from torch.profiler import ProfilerActivity, profile
        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.startswith('cuda') else [])
        with profile(activities=acts) as prof:
            model.clamp_logit_scale()
            optim.update_params(sum(model.compute_losses(img, tokens, labels).values()))
            sync()
        key = 'self_cuda_time_total' if dev.startswith('cuda') else 'self_cpu_time_total'
        print(prof.key_averages().table(sort_by=key, row_limit=args.profile, max_name_column_width=40))
    model.eval()
    crops = torch.randn(B, 3, size, size, device=dev)
    with torch.no_grad():
        model.encode_decode(crops[:1], [{}])
        sync()
        t = time.perf_counter()
        for _ in range(args.steps):
            model.encode_decode(crops, [{}])
        sync()
    per = (time.perf_counter() - t) / args.steps
    print(f'inference   {B} crops of {size}: {per * 1e3:.1f} ms, {B / per:.1f} crops/s')


if __name__ == '__main__':
    main()
