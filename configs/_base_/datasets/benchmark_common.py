# Shared test settings of the zero-shot benchmarks: batch 1, mIoU, evaluation at the original size.
# The per-benchmark bases fill in ``test_dataloader.dataset``; method protocols replace the pipeline.
# (default_scope / custom_imports are set by the leaf configs: mmengine forbids duplicate keys among bases.)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 448), keep_ratio=True),
    dict(type='LoadAnnotations'),  # after Resize: evaluation at the original resolution
    dict(type='PackSegInputs'),
]
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(pipeline=test_pipeline))
test_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_cfg = dict(type='TestLoop')
