# PixelCLIP, OpenCLIP ConvNeXt-B (convnext_base_w_320, laion_aesthetic_s13b_b82k): whole image tower
# trained, 640x640 input (20x20x640 dense features), EPS 1.
# Set ``clip_weights`` to the local open_clip checkpoint of that model.
_base_ = ['./pixelclip_vitb16.py']
# (default_scope / custom_imports are set by the leaf configs: mmengine forbids duplicate keys among bases.)

clip_weights = None
model = dict(
    backbone=dict(_delete_=True, type='OpenCLIPConvNeXt', model_name='convnext_base_w_320',
                  pretrained=clip_weights),
    text_encoder=dict(model_name='convnext_base_w_320', pretrained=clip_weights),
    decode_head=dict(eps=1.0),
    finetune='full',
    clip_resolution=(640, 640))
