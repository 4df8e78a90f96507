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
# Test-time augmentation (tools/test.py --tta; tta_model = OVSTTAModel from default_runtime.py, mmseg's
# SegTTAModel for any vocabulary size) averages the per-view softmax
# over mmseg's usual scale ratios of the protocol's short side x horizontal flip (the model still
# squashes every view to its CLIP resolution).
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='TestTimeAug', transforms=[
        [dict(type='Resize', scale=(2560, int(640 * r)), keep_ratio=True, backend='pillow', interpolation='bilinear')
         for r in (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)],
        [dict(type='RandomFlip', prob=0., direction='horizontal'),
         dict(type='RandomFlip', prob=1., direction='horizontal')],
        [dict(type='LoadAnnotations')],
        [dict(type='PackSegInputs')],
    ]),
]
