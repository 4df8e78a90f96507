# PixelCLIP ConvNeXt-B (LAION-2B) trained with SA-1B masks (Table 1: COCO-St 21.4, ADE 20.3,
# PC-59 35.4, City 34.8, VOC-20 67.2). Same recipe; whole visual tower trained, 640x640, EPS 1.
_base_ = ['../_base_/default_runtime.py', '../_base_/models/pixelclip_convnextb.py',
          '../_base_/datasets/sa1b_pixelclip.py', '../_base_/datasets/ade150.py',
          '../_base_/schedules/pixelclip_10k.py']
default_scope = 'mmseg'
custom_imports = dict(imports=['mmseg_ovs'], allow_failed_imports=False)

test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2560, 640), keep_ratio=True, backend='pillow', interpolation='bilinear'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
val_dataloader = test_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
