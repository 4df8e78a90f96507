# PixelCLIP schedule: AdamW 2e-4 (x0.01 image encoder, x10 prompts), wd 1e-4 (0 on norms),
# global grad-norm clip 0.01, cosine 1.0x -> 0.5x over 10k iterations, no warm-up.
# (default_scope / custom_imports are set by the leaf configs: mmengine forbids duplicate keys among bases.)

# fused AdamW on parameter groups merged by setting (same per-parameter lr / decay as mmengine's
# default constructor). tools/train.py --amp -> AmpOptimWrapper with `amp_dtype` (None: bfloat16 where
# supported, else float16); the official PixelCLIP trains in fp32 with TF32 matmuls.
amp_dtype = None
optim_wrapper = dict(
    type='OptimWrapper',
    constructor='MergedGroupsOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=2e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-4, fused=True),
    clip_grad=dict(max_norm=0.01, norm_type=2),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        custom_keys={'backbone': dict(lr_mult=0.01), 'decode_head.prompt_tokens': dict(lr_mult=10.0)}))
param_scheduler = [
    dict(type='CosineAnnealingLR', eta_min_ratio=0.5, T_max=10000, begin=0, end=10000, by_epoch=False),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=10000, val_interval=1000)
val_cfg = dict(type='ValLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='AtomicCheckpointHook', by_epoch=False, interval=1000, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
