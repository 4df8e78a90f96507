"""SAM masks for any image folder, written as SA-1B-style per-image JSON (COCO RLE).

Uses segment-anything's ``SamAutomaticMaskGenerator`` with a LOCAL checkpoint (nothing downloads).
Resumable (existing JSON files are skipped), atomic writes, progress bar.

    python data_prep/sam_masks.py IMG_DIR OUT_DIR --checkpoint sam_vit_h_4b8939.pth --model-type vit_h
"""
import argparse
import os.path as osp

import numpy as np

try:
    from pixelclip_mask_io import masks_for_folder
except ImportError:  # imported as data_prep.sam_masks
    from data_prep.pixelclip_mask_io import masks_for_folder


def build_generator(checkpoint: str, model_type: str, device: str, **kwargs):
    from segment_anything import SamAutomaticMaskGenerator, sam_model_registry
    if checkpoint and not osp.isfile(checkpoint):
        raise FileNotFoundError(f'SAM checkpoint not found: {checkpoint}')
    sam = sam_model_registry[model_type](checkpoint=checkpoint or None)
    return SamAutomaticMaskGenerator(sam.to(device), **kwargs)


def run(img_dir, out_dir, generator, overwrite=False):
    """Write one JSON per image; returns (written, skipped_existing, failed)."""
    def make_masks(img):
        records = generator.generate(img)
        return (np.stack([r['segmentation'] for r in records]) if records
                else np.zeros((0,) + img.shape[:2], bool))
    return masks_for_folder(img_dir, out_dir, make_masks, 'SAM masks', overwrite)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('img_dir')
    p.add_argument('out_dir')
    p.add_argument('--checkpoint', required=True, help='local SAM checkpoint (.pth)')
    p.add_argument('--model-type', default='vit_h', choices=['vit_h', 'vit_l', 'vit_b'])
    p.add_argument('--device', default='cuda')
    p.add_argument('--points-per-side', type=int, default=32)
    p.add_argument('--overwrite', action='store_true')
    a = p.parse_args()
    gen = build_generator(a.checkpoint, a.model_type, a.device, points_per_side=a.points_per_side)
    w, s, f = run(a.img_dir, a.out_dir, gen, a.overwrite)
    print(f'written {w}, already done {s}, failed {len(f)}')


if __name__ == '__main__':
    main()
