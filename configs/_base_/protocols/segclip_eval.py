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
# Test-time augmentation (tools/test.py --tta; tta_model = OVSTTAModel from default_runtime.py, mmseg's
# SegTTAModel for any vocabulary size) averages the per-view softmax
# over mmseg's usual scale ratios of the protocol's short side x horizontal flip.
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='TestTimeAug', transforms=[
        [dict(type='Resize', scale=(2048, int(224 * r)), keep_ratio=True) for r in (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)],
        [dict(type='RandomFlip', prob=0., direction='horizontal'),
         dict(type='RandomFlip', prob=1., direction='horizontal')],
        [dict(type='LoadAnnotations')],
        [dict(type='PackSegInputs')],
    ]),
]
