"""Time per image of an evaluation config's inference (prints figures; not a test).

    python tools/benchmark_inference.py configs/benchmarks/segclip/segclip_vitb16_voc21.py [--images 5]
        [--size 375 500] [--checkpoint CKPT] [--device cpu]

Runs the config's own test pipeline and model (slide / whole, templates, background threshold)
through OVSInferencer on synthetic images of a typical benchmark size (VOC: 375 x 500). Without a
checkpoint the weights are random: the time is the same.
"""
import argparse
import os.path as osp
import sys
import time

import numpy as np

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('--checkpoint', default=None)
    parser.add_argument('--images', type=int, default=5)
    parser.add_argument('--size', type=int, nargs=2, default=(375, 500), help='H W')
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args()

    import torch
    from mmengine.config import Config

    from mmseg_ovs.apis import OVSInferencer

    cfg = Config.fromfile(args.config)
    for key in ('backbone', 'text_encoder'):  # random weights unless a checkpoint is given
        if key in cfg.model:
            cfg.model[key]['pretrained'] = None
    vocabulary = getattr(cfg.model, 'class_names', None)
    inferencer = OVSInferencer(cfg, args.checkpoint, vocabulary=vocabulary if isinstance(vocabulary, list) else None,
                               device=args.device)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, size=(*args.size, 3), dtype=np.uint8) for _ in range(args.images + 1)]
    inferencer(images[0])  # warm-up: class embeddings, allocator
    with torch.no_grad():
        t = time.time()
        for img in images[1:]:
            inferencer(img)
        dt = (time.time() - t) / args.images
    print(f'{osp.basename(args.config)}: {dt:.2f} s/image on {args.device} '
          f'({args.size[0]}x{args.size[1]} input, {torch.get_num_threads()} threads)')


if __name__ == '__main__':
    main()
