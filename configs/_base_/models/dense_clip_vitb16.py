# Training-free dense CLIP ViT-B/16 (MaskCLIP-style value path), the "CLIP" row of the tables.
# Set ``clip_weights`` (local OpenAI ViT-B/16 archive or OpenCLIP checkpoint), e.g.
#   --cfg-options model.backbone.pretrained=ckpts/ViT-B-16.pt model.text_encoder.pretrained=ckpts/ViT-B-16.pt
# (default_scope / custom_imports are set by the leaf configs: mmengine forbids duplicate keys among bases.)
clip_mean = [122.7709383, 116.7460125, 104.09373615]  # CLIP statistics x 255
clip_std = [68.5005327, 66.6321579, 70.32316305]
clip_weights = None
data_preprocessor = dict(
    type='OVSDataPreProcessor', mean=clip_mean, std=clip_std, bgr_to_rgb=True, pad_val=0, seg_pad_val=255)
model = dict(
    type='DenseCLIPBaseline',
    data_preprocessor=data_preprocessor,
    # '-quickgelu': OpenAI CLIP weights were trained with QuickGELU
    backbone=dict(type='OpenCLIPViT', model_name='ViT-B-16-quickgelu', pretrained=clip_weights),
    text_encoder=dict(type='OpenCLIPTextEncoder', model_name='ViT-B-16-quickgelu', pretrained=clip_weights),
    class_names='voc21',
    templates='imagenet',
    dense_mode='value',
    bg_thresh=None,
    logit_scale=100.0,
    test_cfg=dict(mode='whole'))
