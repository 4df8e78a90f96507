# Quickstart: the training-free dense-CLIP baseline ("CLIP" row) on the toy-pretrained tiny CLIP,
# evaluated with tools/test.py on the stage-1 checkpoint (its backbone.visual.* / text_encoder.*
# weights are exactly this model's).
_base_ = ['../_base_/default_runtime.py', '../_base_/models/dense_clip_vitb16.py',
          '../_base_/clip/tiny_vit.py', './_toy_eval.py']
default_scope = 'mmseg'
custom_imports = dict(imports=['mmseg_ovs'], allow_failed_imports=False)

model = dict(
    backbone=dict(model_name=None, model_cfg={{_base_.tiny_clip_cfg}}, pretrained=None),
    text_encoder=dict(model_name=None, model_cfg={{_base_.tiny_clip_cfg}}, pretrained=None),
    class_names={{_base_.toy_classes}},
    templates='single',
    test_cfg=dict(mode='whole'))
