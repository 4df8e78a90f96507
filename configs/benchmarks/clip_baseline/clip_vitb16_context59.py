# CLIP ViT-B/16 (training-free) on context59, PixelCLIP protocol (its "CLIP" rows): short side 640
# (max 2560), squash to 320x320, PixelCLIP's dense last block, features bilinear to 64x64,
# 8 'imagenet_select' templates, no background, no sliding window.
_base_ = ['../../_base_/default_runtime.py', '../../_base_/models/dense_clip_vitb16.py',
          '../../_base_/datasets/context59.py', '../../_base_/protocols/pixelclip_eval.py']
default_scope = 'mmseg'
custom_imports = dict(imports=['mmseg_ovs'], allow_failed_imports=False)

model = dict(
    class_names='context59',
    class_names_variant='pixelclip',
    templates='imagenet_select',
    dense_mode='pixelclip',
    bg_thresh=None,
    logit_scale=100.0,
    test_cfg=dict(mode='whole', squash_size=(320, 320), feature_size=(64, 64)),
    # PixelCLIP's code computes the ViT text classifier in fp16 (OpenAI clip.load); 'float32' for fp32
    text_encoder=dict(cache_dtype='float16'))
test_pipeline = {{_base_.pixelclip_test_pipeline}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
