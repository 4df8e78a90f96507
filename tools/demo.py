"""Free-vocabulary segmentation of one image, written as an overlay with a legend.

    python tools/demo.py IMAGE --config CFG --checkpoint CKPT --vocab "cat,dog,grass" --out out.png [--cfg-options k=v]

--vocab is a benchmark key ("voc21", "context59_pixelclip"), a cls_*.txt file, or comma-separated class
names; synonyms of one class are separated by '|' (e.g. "background,tv|monitor,plant") and their
embeddings averaged. For segmentors that predict background by thresholding (SegCLIP), put
"background" first. Empty or repeated names are an error.
"""
import argparse
import os
import os.path as osp
import sys

import numpy as np
from mmengine.config import DictAction
from PIL import Image, ImageDraw

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))


def parse_vocab(text: str):
    """--vocab -> [[name, synonym, ...], ...] through the one vocabulary parser."""
    from mmseg_ovs.datasets.class_names import parse_vocabulary_text
    try:
        return parse_vocabulary_text(text)
    except (ValueError, TypeError, FileNotFoundError) as e:
        raise SystemExit(f'--vocab {text!r}: {e}')


def add_legend(overlay: np.ndarray, label_map: np.ndarray, names, palette) -> np.ndarray:
    """Append a legend column (colour swatch + name) for the classes present in ``label_map``."""
    present = [i for i in range(len(names)) if (label_map == i).any()]
    row_h, width = 18, 160
    height = max(overlay.shape[0], row_h * (len(present) + 1))
    canvas = Image.new('RGB', (overlay.shape[1] + width, height), (255, 255, 255))
    canvas.paste(Image.fromarray(overlay), (0, 0))
    draw = ImageDraw.Draw(canvas)
    x0 = overlay.shape[1] + 8
    draw.text((x0, 2), 'legend', fill=(0, 0, 0))
    for row, idx in enumerate(present, start=1):
        y = row * row_h + 2
        draw.rectangle([x0, y, x0 + 12, y + 12], fill=tuple(palette[idx]), outline=(0, 0, 0))
        frac = 100.0 * (label_map == idx).mean()
        draw.text((x0 + 18, y), f'{names[idx]} ({frac:.0f}%)', fill=(0, 0, 0))
    return np.asarray(canvas)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('image')
    parser.add_argument('--config', required=True)
    parser.add_argument('--checkpoint', required=True)
    parser.add_argument('--vocab', required=True, help='comma-separated class names ("|" for synonyms)')
    parser.add_argument('--out', default='demo.png')
    parser.add_argument('--device', default=None)
    parser.add_argument('--opacity', type=float, default=0.6)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, e.g. model.bg_thresh=0.5')
    args = parser.parse_args()
    if not osp.isfile(args.image):
        raise SystemExit(f'image not found: {args.image}')

    from mmengine.config import Config

    from mmseg_ovs.apis import OVSInferencer

    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    inferencer = OVSInferencer(cfg, args.checkpoint, vocabulary=parse_vocab(args.vocab),
                               device=args.device)
    result = inferencer(args.image, return_vis=True, opacity=args.opacity, with_labels=False)
    label_map = OVSInferencer.label_maps(result)[0]
    overlay = result['visualization'][0] if isinstance(result['visualization'], list) else result['visualization']
    meta = inferencer.model.dataset_meta
    picture = add_legend(overlay, label_map, list(meta['classes']), meta['palette'])
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    tmp = args.out + '.tmp.png'
    Image.fromarray(picture).save(tmp)
    os.replace(tmp, args.out)
    print(f'wrote {args.out}: ' + ', '.join(
        f'{n}={100.0 * (label_map == i).mean():.1f}%' for i, n in enumerate(meta['classes'])))


if __name__ == '__main__':
    main()
