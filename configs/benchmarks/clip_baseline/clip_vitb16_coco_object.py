# CLIP ViT-B/16 (training-free, MaskCLIP value path) on coco_object, SegCLIP protocol:
# short side 224, slide 224/224, template 'single', background threshold 0.65 (SegCLIP coco.py:43).
_base_ = ['../../_base_/default_runtime.py', '../../_base_/models/dense_clip_vitb16.py',
          '../../_base_/datasets/coco_object.py', '../../_base_/protocols/segclip_eval.py']
default_scope = 'mmseg'
custom_imports = dict(imports=['mmseg_ovs'], allow_failed_imports=False)

model = dict(
    class_names='coco_object',
    class_names_variant=None,
    templates='single',
    dense_mode='value',
    bg_thresh=0.65,
    logit_scale=100.0,
    test_cfg=dict(mode='slide', crop_size=(224, 224), stride=(224, 224), slide_batch=16))
test_pipeline = {{_base_.segclip_test_pipeline}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
