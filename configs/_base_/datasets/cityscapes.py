# Cityscapes val, 19 classes (500 images). Prepare with data_prep/prepare_benchmarks.py cityscapes.
# Method configs replace ``test_pipeline`` (and re-set ``test_dataloader.dataset.pipeline``) with
# their protocol's resize; the default here is mmseg's short side 448.
# (default_scope / custom_imports are set by the leaf configs: mmengine forbids duplicate keys among bases.)
bench = 'cityscapes'
dataset_type = 'CityscapesDataset'
data_root = 'data/cityscapes'
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
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
        pipeline=test_pipeline))
test_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_cfg = dict(type='TestLoop')
