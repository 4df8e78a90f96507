# CLIP ViT-B/16 (training-free; MaskCLIP value path, dense_mode='plain' for the vanilla CLIP row) on voc21
# under the SCLIP-family protocol (SCLIP configs/cfg_voc21.py): short side 336, slide 224/112, 80 ImageNet
# templates, cls_voc21_sclip.txt, logit scale 65, probability threshold 0.1, area threshold 0.1.
# Comparable with the SCLIP/NACLIP tables, not with the SegCLIP/PixelCLIP protocols
# (configs/benchmarks/clip_baseline/).
_base_ = ['../../_base_/default_runtime.py', '../../_base_/models/dense_clip_vitb16.py',
          '../../_base_/datasets/voc21.py', '../../_base_/protocols/sclip_eval.py']
default_scope = 'mmseg'
custom_imports = dict(imports=['mmseg_ovs'], allow_failed_imports=False)

model = dict(
    type='SCLIPProtocolBaseline',
    class_names='voc21',
    class_names_variant='sclip',
    templates='imagenet',
    dense_mode='value',
    bg_thresh=None,
    logit_scale=65.0,
    prob_thresh=0.1,
    area_thresh=0.1,
    test_cfg={{_base_.sclip_test_cfg}})
test_pipeline = {{_base_.sclip_test_pipeline}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
