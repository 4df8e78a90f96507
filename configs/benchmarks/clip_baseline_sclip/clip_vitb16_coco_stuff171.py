# CLIP ViT-B/16 (training-free; MaskCLIP value path, dense_mode='plain' for the vanilla CLIP row) on
# coco_stuff171 under the SCLIP-family protocol (SCLIP configs/cfg_coco_stuff164k.py): short side 448,
# slide 224/112, 80 ImageNet templates, cls_coco_stuff171_sclip.txt, logit scale 40, no threshold.
# Comparable with the SCLIP/NACLIP tables, not with the SegCLIP/PixelCLIP protocols
# (configs/benchmarks/clip_baseline/).
_base_ = ['../../_base_/default_runtime.py', '../../_base_/models/dense_clip_vitb16.py',
          '../../_base_/datasets/coco_stuff171.py', '../../_base_/protocols/sclip_eval.py']
default_scope = 'mmseg'
custom_imports = dict(imports=['mmseg_ovs'], allow_failed_imports=False)

model = dict(
    type='SCLIPProtocolBaseline',
    class_names='coco_stuff171',
    class_names_variant='sclip',
    templates='imagenet',
    dense_mode='value',
    bg_thresh=None,
    logit_scale=40.0,
    prob_thresh=0.0,
    area_thresh=None,
    test_cfg={{_base_.sclip_test_cfg}})
test_pipeline = {{_base_.sclip_test_pipeline_448}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
