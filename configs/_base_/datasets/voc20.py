# PASCAL VOC 2012 val, 20 classes, background ignored (1449 images). Prepare with data_prep/prepare_benchmarks.py voc.
# Method configs replace ``test_pipeline`` (and re-set ``test_dataloader.dataset.pipeline``) with
# their protocol's resize; the default here is mmseg's short side 448.
# (default_scope / custom_imports are set by the leaf configs: mmengine forbids duplicate keys among bases.)
bench = 'voc20'
dataset_type = 'PascalVOC20Dataset'
data_root = 'data/VOCdevkit/VOC2012'
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
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file='ImageSets/Segmentation/val.txt',
        pipeline=test_pipeline))
test_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_cfg = dict(type='TestLoop')
