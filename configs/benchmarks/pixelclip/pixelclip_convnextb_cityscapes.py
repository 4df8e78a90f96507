# PixelCLIP convnextb on cityscapes (PixelCLIP eval.sh protocol): short side 640 (max 2560, PIL bilinear),
# squash to 640x640 (aspect not kept), features bilinear to 64x64, cosine with the 8
# 'imagenet_select' templates, no background, no sliding window, argmax.
# Vocabulary: mmseg_ovs/datasets/class_names/cls_cityscapes.txt (= PixelCLIP datasets/*.json).
_base_ = ['../../_base_/models/pixelclip_convnextb.py', '../../_base_/datasets/cityscapes.py']
default_scope = 'mmseg'
custom_imports = dict(imports=['mmseg_ovs'], allow_failed_imports=False)

model = dict(
    class_names='cityscapes',
    templates='imagenet_select',
    clip_resolution=(640, 640),
    feature_size=(64, 64))
test_pipeline = [
    dict(type='LoadImageFromFile'),
    # detectron2 ResizeShortestEdge(640, max 2560): PIL bilinear (antialiased when shrinking)
    dict(type='Resize', scale=(2560, 640), keep_ratio=True, backend='pillow', interpolation='bilinear'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
