"""Convert an official SegCLIP checkpoint (``segclip.bin``) for mmseg_ovs' SegCLIP.

Usage: python tools/convert_segclip_checkpoint.py SRC.bin DST.pth [--inference-only]

The result is ``dict(state_dict=..., meta=...)`` with mmseg_ovs key names (``backbone.visual.*``,
``neck.*``, ``text_encoder.*``, ``reconstruction.*``), loadable by tools/test.py and tools/train.py
(``load_from``). ``--inference-only`` drops the training-only reconstruction branch.

The meta records ``model_settings={'neck.batch_mixing_legacy': True}``: the release was trained with
the official torch-1.8 cross-attention that mixes a batch's samples, and every SegCLIP config's
``CheckpointModelSettingsHook`` applies it when the checkpoint is loaded (``tools/test.py``,
``benchmark_all``, ``load_from``). ``--no-batch-mixing-legacy`` leaves it out (per-image attention).
"""
import argparse
import os
import os.path as osp
import sys

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmseg_ovs.utils.checkpoint import safe_torch_load  # noqa: E402
from mmseg_ovs.utils.convert_segclip import convert_segclip_state_dict, segclip_checkpoint_meta  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='official SegCLIP checkpoint (e.g. segclip.bin)')
    parser.add_argument('dst', help='output .pth')
    parser.add_argument('--inference-only', action='store_true',
                        help='drop the reconstruction branch (layers_mae2, a_fc, vis_mae_decoder)')
    parser.add_argument('--first-stage-layers', type=int, default=None,
                        help='blocks before the group module (default: counted from the file)')
    parser.add_argument('--no-batch-mixing-legacy', action='store_true',
                        help='do not record neck.batch_mixing_legacy=True in the meta (evaluate with '
                        'per-image cross-attention instead of the official batch-mixing one)')
    args = parser.parse_args()
    if not osp.isfile(args.src):
        raise SystemExit(f'checkpoint not found: {args.src}')
    try:
        ckpt = safe_torch_load(args.src)  # weights_only=True, mmseg_ovs allow-list
    except Exception as err:  # noqa: BLE001
        raise SystemExit(f'cannot read {args.src} as a weights-only checkpoint: {err}')
    if isinstance(ckpt, dict) and 'state_dict' in ckpt and isinstance(ckpt['state_dict'], dict):
        ckpt = ckpt['state_dict']
    if not isinstance(ckpt, dict) or not ckpt:
        raise SystemExit(f'{args.src} holds no state dict')
    try:
        state_dict = convert_segclip_state_dict(ckpt, args.first_stage_layers)
    except KeyError as err:
        raise SystemExit(f'{args.src}: {err}')
    if args.inference_only:
        state_dict = {k: v for k, v in state_dict.items() if not k.startswith('reconstruction.')}
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    tmp = args.dst + '.tmp'
    meta = segclip_checkpoint_meta(osp.basename(args.src), batch_mixing_legacy=not args.no_batch_mixing_legacy)
    torch.save(dict(state_dict=state_dict, meta=meta), tmp)
    os.replace(tmp, args.dst)
    print(f'wrote {len(state_dict)} tensors to {args.dst}')


if __name__ == '__main__':
    main()
