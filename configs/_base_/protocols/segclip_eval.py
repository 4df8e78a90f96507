# SegCLIP's evaluation protocol (seg_segmentation/configs/_base_/datasets/*.py): short side 224 with
# mmcv's cv2 bilinear resize; the leaf configs add slide 224/224, template 'single' and the
# per-dataset background thresholds. Leaves use ``test_pipeline = {{_base_.segclip_test_pipeline}}``.
# (default_scope / custom_imports are set by the leaf configs: mmengine forbids duplicate keys among bases.)
segclip_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 224), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
