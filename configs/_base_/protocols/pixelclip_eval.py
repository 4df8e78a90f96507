# PixelCLIP's evaluation protocol (eval.sh, detectron2 test mapper): ResizeShortestEdge(640, max 2560),
# a PIL bilinear resize (antialiased when shrinking); the model then squashes to its CLIP resolution.
# Leaves use ``test_pipeline = {{_base_.pixelclip_test_pipeline}}``.
# (default_scope / custom_imports are set by the leaf configs: mmengine forbids duplicate keys among bases.)
pixelclip_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2560, 640), keep_ratio=True, backend='pillow', interpolation='bilinear'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
# The official runs' precision: TF32 matmuls (set_float32_matmul_precision("high")), cuDNN benchmark
# (train_net.py main(), CUDNN_BENCHMARK: True); CUDA flags only, no effect on CPU.
custom_hooks = [dict(type='CUDAPrecisionHook', tf32_matmul=True, tf32_cudnn=True, cudnn_benchmark=True)]
