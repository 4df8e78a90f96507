# The training-free family's evaluation protocol (SCLIP configs/base_config.py + cfg_<bench>.py; NACLIP
# uses the same files): mmseg Resize to short side 336 (Cityscapes 560, COCO-Stuff 448; cv2 bilinear,
# keep ratio, long side capped at 2048), annotations loaded after the resize (scored at the original
# size), slide 224/112, the 80 OpenAI ImageNet templates, softmax(logit_scale * cos) over every name of
# the cls_<bench>_sclip.txt files (background = a word list on VOC21/COCO-Object), max over a class's
# names, logit scale 40 (VOC21 65, Context60/COCO-Object 50), probability threshold 0.1 on the three
# background sets (VOC21 also the area threshold 0.1). Leaves use
# ``test_pipeline = {{_base_.sclip_test_pipeline}}`` (``_448`` / ``_560`` for COCO-Stuff / Cityscapes)
# with model type SCLIPProtocolBaseline.
# (default_scope / custom_imports are set by the leaf configs: mmengine forbids duplicate keys among bases.)
sclip_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 336), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
sclip_test_pipeline_448 = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 448), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
sclip_test_pipeline_560 = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 560), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
sclip_test_cfg = dict(mode='slide', crop_size=(224, 224), stride=(112, 112), slide_batch=16)
