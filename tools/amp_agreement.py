"""Label-map agreement of mixed-precision (CPU autocast) inference with fp32 on quickstart checkpoints.

    python tools/amp_agreement.py [--quickstart outputs/quickstart] [--methods segclip pixelclip]

Prints, per method and dtype, the fraction of validation pixels whose label equals the fp32 label.
"""
import argparse
import glob
import os.path as osp

import numpy as np
import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--quickstart', default=osp.join(ROOT, 'outputs', 'quickstart'))
    parser.add_argument('--methods', nargs='+', default=['segclip', 'pixelclip'])
    parser.add_argument('--dtypes', nargs='+', default=['bfloat16', 'float16'])
    parser.add_argument('--batch-size', type=int, default=8)
    args = parser.parse_args()

    from mmseg_ovs.apis import OVSInferencer
    images = sorted(glob.glob(osp.join(args.quickstart, 'data', 'val', 'images', '*.png')))
    if not images:
        raise SystemExit(f'no validation images under {args.quickstart}/data/val/images (run tools/run_main.sh)')
    for name in args.methods:
        ckpts = sorted(glob.glob(osp.join(args.quickstart, name, 'iter_*.pth')))
        if not ckpts:
            raise SystemExit(f'no {name} checkpoint under {args.quickstart}/{name}')
        inferencer = OVSInferencer(osp.join(ROOT, f'configs/quickstart/{name}_toy.py'), ckpts[-1], device='cpu')
        ref = np.stack(OVSInferencer.label_maps(inferencer(images, batch_size=args.batch_size)))
        for dtype in args.dtypes:
            with torch.autocast('cpu', dtype=getattr(torch, dtype)):
                amp = np.stack(OVSInferencer.label_maps(inferencer(images, batch_size=args.batch_size)))
            print(f'{name} {dtype}: {len(images)} images, label agreement with fp32 {(ref == amp).mean():.5f}')


if __name__ == '__main__':
    main()
