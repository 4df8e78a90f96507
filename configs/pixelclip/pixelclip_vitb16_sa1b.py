# PixelCLIP ViT-B/16 trained with SA-1B masks (paper Table 1: COCO-St 23.6, ADE 18.7, PC-59 37.9,
# City 27.2, VOC-20 85.9). 4 GPUs x 12 images, 10k iterations; validated on ADE-150 every 1k iterations.
_base_ = ['../_base_/default_runtime.py', '../_base_/models/pixelclip_vitb16.py',
          '../_base_/datasets/sa1b_pixelclip.py', '../_base_/datasets/ade150.py',
          '../_base_/schedules/pixelclip_10k.py']
default_scope = 'mmseg'
custom_imports = dict(imports=['mmseg_ovs'], allow_failed_imports=False)

# test protocol: short side 640 (max 2560, PIL bilinear), the model squashes to its CLIP resolution
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2560, 640), keep_ratio=True, backend='pillow', interpolation='bilinear'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
val_dataloader = test_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
# In-training validation as the official config (PROMPT_ENSEMBLE_TYPE "single"; eval.sh switches to
# 'imagenet_select' for the benchmark numbers: configs/benchmarks/pixelclip/), with the official fp16
# ViT text classifier ('float32' for fp32).
model = dict(templates='single', text_encoder=dict(cache_dtype='float16'))
# The official precision settings: TF32 matmuls (set_float32_matmul_precision("high")) and cuDNN
# benchmark (CUDNN_BENCHMARK: True); CUDA flags only, no effect on CPU.
# NonFiniteLossHook: a NaN/Inf loss skips the optimizer step (counted, logged with the batch's image
# paths, kept in checkpoints); 10 in a row stop the run (detectron2, the official trainer, stops at the
# first one; the earlier port kept stepping with NaN).
custom_hooks = [dict(type='CUDAPrecisionHook', tf32_matmul=True, tf32_cudnn=True, cudnn_benchmark=True),
                dict(type='NonFiniteLossHook', max_consecutive_skips=10)]
