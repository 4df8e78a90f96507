# Toy validation split (data_prep/make_toy_dataset.py), no-background protocol as VOC20/Context59:
# label 0 (background) is ignored (reduce_zero_label), the 6 shape classes are evaluated.
# (default_scope / custom_imports are set by the leaf configs.)
toy_root = 'data/toy'
toy_classes = ['circle', 'square', 'triangle', 'star', 'ring', 'cross']  # = data/toy/cls_toy.txt
toy_image_size = 64
toy_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(toy_image_size, toy_image_size), keep_ratio=False),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(
    batch_size=4,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='BaseSegDataset', data_root=toy_root, metainfo=dict(classes=toy_classes),
                 img_suffix='.png', seg_map_suffix='.png', reduce_zero_label=True,
                 data_prefix=dict(img_path='val/images', seg_map_path='val/labels'),
                 pipeline=toy_test_pipeline))
test_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_cfg = dict(type='TestLoop')
# tools/test.py --tta: flip x two scales (tta_model = OVSTTAModel from default_runtime.py)
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='TestTimeAug', transforms=[
        [dict(type='Resize', scale=(int(toy_image_size * r), int(toy_image_size * r)), keep_ratio=False)
         for r in (1.0, 1.5)],
        [dict(type='RandomFlip', prob=0., direction='horizontal'),
         dict(type='RandomFlip', prob=1., direction='horizontal')],
        [dict(type='LoadAnnotations', reduce_zero_label=True)],
        [dict(type='PackSegInputs')],
    ]),
]
