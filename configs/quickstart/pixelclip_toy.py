# Quickstart stage 3: PixelCLIP fine-tuned from the toy-pretrained tiny CLIP with the real components
# (dense last block, EMA teacher, online Sinkhorn clustering onto learnable prompts, mask decoder,
# BCE) on the toy SA-1B-style unlabeled masks; scaled down: 64 px crops, 16 clusters, 64 px targets.
_base_ = ['../_base_/default_runtime.py', '../_base_/models/pixelclip_vitb16.py',
          '../_base_/schedules/pixelclip_10k.py', '../_base_/clip/tiny_vit.py', './_toy_eval.py']
default_scope = 'mmseg'
custom_imports = dict(imports=['mmseg_ovs'], allow_failed_imports=False)

clip_pretrained = 'work_dirs/quickstart/tiny_clip.pt'  # written by tools/quickstart.py (stage 1)
image_size = 64  # = toy_image_size of _toy_eval.py
model = dict(
    data_preprocessor=dict(size=(image_size, image_size)),
    backbone=dict(model_name=None, model_cfg={{_base_.tiny_clip_cfg}}, pretrained=clip_pretrained),
    text_encoder=dict(model_name=None, model_cfg={{_base_.tiny_clip_cfg}}, pretrained=clip_pretrained),
    # 16 clusters and a 2x narrower mask decoder (its convolutions dominate a CPU step)
    decode_head=dict(num_clusters=16, mask_resolution=(image_size, image_size),
                     decoder=dict(mid_channels=(32, 32, 16))),
    clip_resolution=(image_size, image_size),
    feature_size=(image_size // 2, image_size // 2),
    # the toy text tower only knows the toy captions' words ('itap', 'origami', ... of the
    # imagenet_select set are unseen), so every quickstart method uses "a photo of a {}."
    templates='single',
    class_names={{_base_.toy_classes}})

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadUnlabeledMasks'),
    dict(type='ResizeCropFlipWithMasks', short_edges=(64, 72, 80), max_size=128,
         crop_size=(image_size, image_size), flip_prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PixelCLIPStrongView', cutout_scale=(0.05, 0.2), mask_key='unlabeled_masks'),
    dict(type='PackPixelCLIPInputs'),
]
train_dataloader = dict(
    batch_size=16,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='SA1BDataset', data_root='data/toy/train', img_suffix='.png',
                 data_prefix=dict(img_path='images', mask_path='sa1b'), pipeline=train_pipeline))

max_iters = 300
# the paper's AdamW 2e-4 (x0.01 image encoder, x10 prompts) and grad clip 0.01 are for 10k
# iterations of a pre-trained ViT-B/16; the toy run is 300 iterations of a tiny CLIP
optim_wrapper = dict(optimizer=dict(lr=2e-3), clip_grad=dict(max_norm=1.0),
                     paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.1),
                                                     'decode_head.prompt_tokens': dict(lr_mult=10.0)}))
param_scheduler = [
    dict(type='CosineAnnealingLR', eta_min_ratio=0.5, T_max=max_iters, begin=0, end=max_iters, by_epoch=False),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters + 1)
val_cfg = None
val_dataloader = None
val_evaluator = None
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(by_epoch=False, interval=max_iters, max_keep_ckpts=1))
randomness = dict(seed=0)
