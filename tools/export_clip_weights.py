"""Export the CLIP towers of an mmseg_ovs checkpoint as an OpenCLIP state-dict file.

    python tools/export_clip_weights.py CHECKPOINT OUT.pt

Works for any checkpoint whose model holds ``backbone.visual.*`` and ``text_encoder.*`` (the CLIP
pre-trainer, SegCLIP, the dense-CLIP baseline). The output loads with ``pretrained=OUT.pt``.
"""
import argparse
import os
import os.path as osp
import sys

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('checkpoint')
    parser.add_argument('out')
    args = parser.parse_args()
    from mmseg_ovs.models.pretrainers import export_clip_state_dict
    from mmseg_ovs.utils.checkpoint import safe_torch_load

    if not osp.isfile(args.checkpoint):
        raise SystemExit(f'checkpoint not found: {args.checkpoint}')
    ckpt = safe_torch_load(args.checkpoint)
    state = export_clip_state_dict(ckpt.get('state_dict', ckpt))
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    tmp = args.out + '.tmp'
    torch.save(state, tmp)
    os.replace(tmp, args.out)
    print(f'wrote {args.out} ({len(state)} tensors)')


if __name__ == '__main__':
    main()
