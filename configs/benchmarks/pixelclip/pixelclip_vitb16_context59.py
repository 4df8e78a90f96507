# PixelCLIP ViT-B/16 on context59 (PixelCLIP eval.sh protocol): short side 640 (max 2560, PIL bilinear),
# squash to 320x320 (aspect not kept), features bilinear to 64x64, cosine with the 8
# 'imagenet_select' templates (class embeddings computed in fp16 as the official ViT), no background,
# no sliding window, argmax.
_base_ = ['../../_base_/default_runtime.py', '../../_base_/models/pixelclip_vitb16.py', '../../_base_/datasets/context59.py',
          '../../_base_/protocols/pixelclip_eval.py']
default_scope = 'mmseg'
custom_imports = dict(imports=['mmseg_ovs'], allow_failed_imports=False)

model = dict(
    class_names='context59_pixelclip',  # cls_context59_pixelclip.txt: PixelCLIP pc59.json, table->diningtable
    templates='imagenet_select',
    clip_resolution=(320, 320),
    feature_size=(64, 64),
    # the official ViT text classifier is computed in fp16 (OpenAI clip.load); 'float32' for fp32
    text_encoder=dict(cache_dtype='float16'))
test_pipeline = {{_base_.pixelclip_test_pipeline}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
