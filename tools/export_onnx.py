"""Export a segmentor's image graph to ONNX, with the vocabulary's class embeddings baked in.

    python tools/export_onnx.py CONFIG CKPT --vocab "cat,dog|puppy,grass" --out model.onnx
    python tools/export_onnx.py configs/benchmarks/pixelclip/pixelclip_vitb16_ade150.py ckpt.pth --vocab ade150 --out m.onnx

CKPT may be ``none`` for the training-free CLIP baseline. The graph takes (B, 3, H, W) images as
the config's data preprocessor hands them to the model (CLIP-normalised RGB for SegCLIP and the
CLIP baseline; 0-255 in the model's channel order, BGR by default, for PixelCLIP) and returns
(B, num_classes, H, W) logits; ``argmax(1)`` is the label map. Batch and image size are dynamic,
except in slide mode (the crop grid depends on the image size; only the batch is dynamic there,
the image size is --shape). The text tower is not exported: a new vocabulary needs a new export.
The export is checked with onnxruntime against PyTorch on a random input (max-abs logit
difference next to the largest logit, label-map agreement, and the median CPU seconds per image of
both over --repeat alternating runs are printed) unless --no-verify.
"""
import argparse
import json
import os.path as osp
import sys
import time

import numpy as np
import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('checkpoint', help="checkpoint file, or 'none' (training-free models)")
    parser.add_argument('--vocab', default=None,
                        help='benchmark key, cls_*.txt file, or comma-separated names ("|" for synonyms); '
                             "default: the config's class_names")
    parser.add_argument('--out', required=True, help='output .onnx file')
    parser.add_argument('--shape', type=int, nargs=2, default=None, metavar=('H', 'W'),
                        help='example image size (slide mode: the fixed image size); '
                             'default: the crop size in slide mode, else 224 224')
    parser.add_argument('--batch', type=int, default=1, help='example batch size')
    parser.add_argument('--static', action='store_true', help='fixed batch and image size')
    parser.add_argument('--opset', type=int, default=18)
    parser.add_argument('--no-verify', action='store_true')
    parser.add_argument('--repeat', type=int, default=3, help='timed verification runs (medians printed)')
    return parser.parse_args()


def main():
    args = parse_args()
    import mmseg_ovs  # noqa: F401  registration and checkpoint allow-list
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint
    from mmseg.registry import MODELS

    from mmseg_ovs.apis.onnx_export import _takes_raw_pixels, export_onnx
    from mmseg_ovs.datasets.class_names import parse_vocabulary_text

    ckpt = None if args.checkpoint.lower() == 'none' else args.checkpoint
    if ckpt is not None and not osp.isfile(ckpt):
        raise SystemExit(f'checkpoint not found: {ckpt}')
    cfg = Config.fromfile(args.config)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model = MODELS.build(cfg.model)
    if ckpt is not None:
        load_checkpoint(model, ckpt, map_location='cpu', strict=True)  # weights_only (mmengine default)
    model.eval()
    if args.vocab is not None:
        try:
            model.set_vocabulary(parse_vocabulary_text(args.vocab))
        except (ValueError, TypeError, FileNotFoundError) as e:
            raise SystemExit(f'--vocab {args.vocab!r}: {e}')
    shape = args.shape
    if shape is None:
        shape = tuple(model.test_cfg['crop_size']) if model.test_cfg.get('mode') == 'slide' else (224, 224)
    info = export_onnx(model, args.out, tuple(shape), args.batch, dynamic=not args.static, opset=args.opset)
    print(f'wrote {args.out}: {info["num_classes"]} classes {info["class_names"][:8]}'
          f'{"..." if info["num_classes"] > 8 else ""}, mode {info["mode"]}, input shape {info["input_shape"]}')
    if args.no_verify:
        return
    import onnxruntime as ort
    torch.manual_seed(0)
    raw = _takes_raw_pixels(model)
    img = torch.rand(args.batch, 3, *shape) * 255. if raw else torch.randn(args.batch, 3, *shape)
    sess = ort.InferenceSession(args.out, providers=['CPUExecutionProvider'])
    x = img.numpy()
    times = dict(torch=[], onnxruntime=[])
    for _ in range(args.repeat):  # A/B alternating; medians per image
        with torch.no_grad():
            t0 = time.perf_counter()
            ref = model.predict(img)
            times['torch'].append((time.perf_counter() - t0) / args.batch)
        t0 = time.perf_counter()
        got = sess.run(['logits'], {'image': x})[0]
        times['onnxruntime'].append((time.perf_counter() - t0) / args.batch)
    ref_logits = torch.stack([ds.seg_logits.data for ds in ref]).numpy()
    ref_labels = np.stack([ds.pred_sem_seg.data[0].numpy() for ds in ref])
    report = dict(max_abs=float(np.abs(got - ref_logits).max()), max_abs_logit=float(np.abs(ref_logits).max()),
                  label_agreement=float((got.argmax(1) == ref_labels).mean()),
                  image=list(shape), batch=args.batch, threads=torch.get_num_threads(),
                  torch_s_per_image=float(np.median(times['torch'])),
                  onnxruntime_s_per_image=float(np.median(times['onnxruntime'])))
    print('verify (onnxruntime vs PyTorch on CPU, random input): ' + json.dumps(report))

if __name__ == '__main__':
    main()
