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
# In-training validation with the official training prompt type "single" (the benchmark configs use
# 'imagenet_select', as eval.sh). open_clip ConvNeXt runs in fp32 officially.
model = dict(templates='single')
# Official optimizer grouping (detectron2 build_optimizer): the x0.01 lr of the image tower and the
# 0 weight decay of every norm layer apply together (mmengine's custom_keys alone would decay the
# trunk's norms, which train here: finetune='full').
optim_wrapper = dict(constructor='NormDecayOptimWrapperConstructor', paramwise_cfg=dict(embed_decay_mult=0.0))
# The official precision settings: TF32 matmuls and cuDNN benchmark (CUDA only, no effect on CPU).
# NonFiniteLossHook: a NaN/Inf loss skips the optimizer step (counted, logged with the batch's image
# paths, kept in checkpoints); 10 in a row stop the run (detectron2, the official trainer, stops at the
# first one; the earlier port kept stepping with NaN).
custom_hooks = [dict(type='CUDAPrecisionHook', tf32_matmul=True, tf32_cudnn=True, cudnn_benchmark=True),
                dict(type='NonFiniteLossHook', max_consecutive_skips=10)]
