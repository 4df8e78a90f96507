"""data_prep/sam_masks.py with segment-anything's real automatic mask generator (a tiny random SAM),
then the written SA-1B-style JSON read back by LoadUnlabeledMasks."""
import json
import os
from functools import partial

import numpy as np
import torch
from PIL import Image

from data_prep.sam_masks import run


def tiny_sam():
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer
    torch.manual_seed(0)
    dim, img, patch = 32, 64, 16
    return Sam(
        image_encoder=ImageEncoderViT(depth=1, embed_dim=dim, img_size=img, mlp_ratio=2,
                                      norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), num_heads=2,
                                      patch_size=patch, qkv_bias=True, use_rel_pos=True, global_attn_indexes=(0, ),
                                      window_size=0, out_chans=dim),
        prompt_encoder=PromptEncoder(embed_dim=dim, image_embedding_size=(img // patch, img // patch),
                                     input_image_size=(img, img), mask_in_chans=4),
        mask_decoder=MaskDecoder(num_multimask_outputs=3,
                                 transformer=TwoWayTransformer(depth=1, embedding_dim=dim, mlp_dim=64, num_heads=2),
                                 transformer_dim=dim, iou_head_depth=1, iou_head_hidden_dim=16),
    ).eval()


def test_sam_masks_folder_resumable_and_loadable(tmp_path):
    from segment_anything import SamAutomaticMaskGenerator

    from mmseg_ovs.datasets.transforms import LoadUnlabeledMasks

    img_dir, out_dir = tmp_path / 'images', tmp_path / 'sam_masks'
    img_dir.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (48, 80, 3), dtype=np.uint8)).save(img_dir / f'img{i}.jpg')
    (img_dir / 'broken.jpg').write_bytes(b'not an image')
    generator = SamAutomaticMaskGenerator(tiny_sam(), points_per_side=4, pred_iou_thresh=-1e9,
                                          stability_score_thresh=-1e9, box_nms_thresh=1.0)
    written, skipped, failed = run(str(img_dir), str(out_dir), generator)
    assert written == 2 and skipped == 0 and len(failed) == 1 and 'broken.jpg' in str(failed[0])
    files = sorted(os.listdir(out_dir))
    assert files == ['img0.json', 'img1.json']
    record = json.load(open(out_dir / 'img0.json'))
    assert record['image']['height'] == 48 and record['image']['width'] == 80
    assert len(record['annotations']) > 0 and 'counts' in record['annotations'][0]['segmentation']
    # resumable: a second run skips finished images
    written, skipped, _ = run(str(img_dir), str(out_dir), generator)
    assert written == 0 and skipped == 2
    results = LoadUnlabeledMasks()(dict(img_path=str(img_dir / 'img0.jpg'), mask_path=str(out_dir / 'img0.json'),
                                        img_shape=(48, 80), ori_shape=(48, 80)))
    assert results['num_unlabeled_masks'] == len(record['annotations'])
