# PixelCLIP, CLIP ViT-B/16 (OpenAI weights): student with the modified dense last block at 320x320,
# EMA teacher, frozen text tower, 64 learnable prompt clusters, EPS 100.
# Set ``clip_weights`` to a local OpenAI ViT-B-16 archive (nothing is downloaded).
# (default_scope / custom_imports are set by the leaf configs: mmengine forbids duplicate keys among bases.)

clip_weights = None
# images stay 0-255 BGR here; PixelCLIPSegmentor converts to RGB and applies the CLIP mean/std
# (size = the training crop: mmseg's batching needs it; the crops are exactly this size, so no padding)
data_preprocessor = dict(type='OVSDataPreProcessor', mean=None, std=None, bgr_to_rgb=False, pad_val=0,
                         seg_pad_val=255, size=(640, 640))
model = dict(
    type='PixelCLIPSegmentor',
    data_preprocessor=data_preprocessor,
    backbone=dict(type='PixelCLIPDenseViT', model_name='ViT-B-16-quickgelu', pretrained=clip_weights),
    text_encoder=dict(type='OpenCLIPTextEncoder', model_name='ViT-B-16-quickgelu', pretrained=clip_weights,
                      cache_dtype='float32'),  # 'float16' = the official ViT test-time text precision
    decode_head=dict(type='OnlineClusterHead', num_clusters=64, prompt_length=4,
                     template='A photo of a {} in the scene', eps=100.0, sinkhorn_iters=3,
                     mask_resolution=(256, 256), init_seed=0,
                     decoder=dict(type='PixelCLIPMaskDecoder', mid_channels=(64, 64, 32))),
    finetune='attention',  # attn in/out projections of all blocks + positional embedding
    ema_gamma=0.999,
    clip_resolution=(320, 320),
    feature_size=(64, 64),
    templates='imagenet_select',
    class_names='ade150')
