"""Time one PixelCLIP training step (forward + backward) and its parts; prints figures.

Random weights (no download). Example (CPU, small): python tools/benchmark_pixelclip.py --batch 2
GPU, official per-GPU batch: python tools/benchmark_pixelclip.py --device cuda --batch 12 --masks 100
"""
import argparse
import time

import torch


def build(args):
    import mmseg_ovs  # noqa: F401
    from mmseg.registry import MODELS
    tiny = dict(embed_dim=48, quick_gelu=True,
                vision_cfg=dict(image_size=224, patch_size=16, width=64, layers=6, head_width=16),
                text_cfg=dict(context_length=77, vocab_size=49408, width=64, heads=4, layers=3))
    enc = dict(model_cfg=tiny) if args.tiny else dict(model_name='ViT-B-16-quickgelu')
    return MODELS.build(dict(
        type='PixelCLIPSegmentor', backbone=dict(type='PixelCLIPDenseViT', **enc),
        text_encoder=dict(type='OpenCLIPTextEncoder', **enc), decode_head=dict(type='OnlineClusterHead'),
        input_channel_order='rgb')).to(args.device).train()


def sync(device):
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--batch', type=int, default=2)
    p.add_argument('--masks', type=int, default=100, help='masks per image')
    p.add_argument('--crop', type=int, default=640)
    p.add_argument('--iters', type=int, default=3)
    p.add_argument('--device', default='cpu')
    p.add_argument('--tiny', action='store_true', help='the small fixture-size model')
    p.add_argument('--profile', type=int, default=0, metavar='N',
                   help='profile one more step and print its top-N ops (self time)')
    args = p.parse_args()
    from mmseg.structures import SegDataSample
    torch.manual_seed(0)
    model = build(args)
    B, S = args.batch, args.crop
    inputs = (torch.rand(B, 6, S, S) * 255).to(args.device)
    samples = []
    for _ in range(B):
        s = SegDataSample()
        # random overlapping rectangles
        m = torch.zeros(args.masks, S, S, dtype=torch.bool)
        c = torch.randint(0, S, (args.masks, 4))
        ys, xs = torch.arange(S).view(1, S, 1), torch.arange(S).view(1, 1, S)
        y0, y1 = c[:, 0].minimum(c[:, 1]).view(-1, 1, 1), c[:, 0].maximum(c[:, 1]).view(-1, 1, 1)
        x0, x1 = c[:, 2].minimum(c[:, 3]).view(-1, 1, 1), c[:, 2].maximum(c[:, 3]).view(-1, 1, 1)
        m = (ys >= y0) & (ys <= y1) & (xs >= x0) & (xs <= x1)
        s.unlabeled_masks = m.to(args.device)
        samples.append(s)
    times = []
    for i in range(args.iters + 1):
        sync(args.device)
        t0 = time.perf_counter()
        model.zero_grad(set_to_none=True)
        loss = model.loss(inputs, samples)['loss_masks']
        loss.backward()
        sync(args.device)
        if i:  # first iteration is warm-up
            times.append(time.perf_counter() - t0)
    # parts (forward only)
    from mmseg_ovs.models.heads.cluster_targets import build_cluster_targets
    with torch.no_grad():
        feat = model.teacher.dense_features(model.squash(model.normalize(inputs[:, :3])))
        emb = model.decode_head.cluster_embeddings(model.text_encoder)
        masks = [s.unlabeled_masks for s in samples]
        sync(args.device)
        t0 = time.perf_counter()
        build_cluster_targets(feat, masks, emb, 100.0)
        sync(args.device)
        t_targets = time.perf_counter() - t0
    print(f'device={args.device} batch={B} masks/img={args.masks} crop={S} model={"tiny" if args.tiny else "ViT-B/16"}')
    print(f'train step (fwd+bwd): {1000 * sum(times) / len(times):.1f} ms/iter (mean of {len(times)})')
    print(f'  mask pooling + Sinkhorn + targets: {1000 * t_targets:.1f} ms')
    if args.device.startswith('cuda'):
        print(f'peak memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB')
    else:
        import resource
        print(f'peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB')
    if args.profile:
        from torch.profiler import ProfilerActivity, profile
        cuda = args.device.startswith('cuda')
        with profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])) as prof:
            model.zero_grad(set_to_none=True)
            model.loss(inputs, samples)['loss_masks'].backward()
            sync(args.device)
        key = 'self_cuda_time_total' if cuda else 'self_cpu_time_total'
        print(prof.key_averages().table(sort_by=key, row_limit=args.profile, max_name_column_width=40))


if __name__ == '__main__':
    main()
