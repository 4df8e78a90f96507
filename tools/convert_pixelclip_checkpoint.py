"""Convert an official PixelCLIP checkpoint (``pixelclip_vit_base.pth`` ...) for PixelCLIPSegmentor.

Usage: python tools/convert_pixelclip_checkpoint.py SRC.pth DST.pth [--no-teacher]
"""
import argparse
import os

import torch

from mmseg_ovs.utils.checkpoint import safe_torch_load
from mmseg_ovs.utils.convert_pixelclip import convert_pixelclip_state_dict


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src')
    parser.add_argument('dst')
    parser.add_argument('--no-teacher', action='store_true', help='drop the EMA teacher (inference only)')
    args = parser.parse_args()
    if not os.path.isfile(args.src):
        raise SystemExit(f'checkpoint not found: {args.src}')
    # detectron2 checkpoints may hold non-tensor metadata (iteration, scheduler); read them as weights
    # only and fall back with a clear message
    try:
        ckpt = safe_torch_load(args.src)  # weights_only=True, mmseg_ovs allow-list
    except Exception as err:  # noqa: BLE001
        raise SystemExit(f'cannot read {args.src} as a weights-only checkpoint: {err}')
    state_dict = convert_pixelclip_state_dict(ckpt)
    if args.no_teacher:
        state_dict = {k: v for k, v in state_dict.items() if not k.startswith('teacher.')}
    elif not any(k.startswith('teacher.') for k in state_dict):
        print('note: no teacher in the checkpoint; PixelCLIPSegmentor.sync_teacher() copies the student')
    os.makedirs(os.path.dirname(os.path.abspath(args.dst)), exist_ok=True)
    tmp = args.dst + '.tmp'
    torch.save(dict(state_dict=state_dict, meta=dict(converted_from=os.path.basename(args.src))), tmp)
    os.replace(tmp, args.dst)
    print(f'wrote {len(state_dict)} tensors to {args.dst}')


if __name__ == '__main__':
    main()
