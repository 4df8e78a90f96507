# Quickstart stage 1: pre-train the tiny CLIP (configs/_base_/clip/tiny_vit.py) contrastively on the
# toy image-caption pairs (data_prep/make_toy_dataset.py, Karpathy COCO format), through the runner.
_base_ = ['../_base_/default_runtime.py', '../_base_/clip/tiny_vit.py']
default_scope = 'mmseg'
custom_imports = dict(imports=['mmseg_ovs'], allow_failed_imports=False)

toy_root = 'data/toy'
image_size = 64
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[122.7709383, 116.7460125, 104.09373615],
    std=[68.5005327, 66.6321579, 70.32316305],
    bgr_to_rgb=True,
    size=(image_size, image_size),
    pad_val=0,
    seg_pad_val=255)
model = dict(
    type='CLIPPretrainer',
    data_preprocessor=data_preprocessor,
    backbone=dict(type='OpenCLIPViT', model_name=None, model_cfg={{_base_.tiny_clip_cfg}}),
    text_encoder=dict(type='OpenCLIPTextEncoder', model_name=None, model_cfg={{_base_.tiny_clip_cfg}}),
    loss_contrastive=dict(type='ContrastiveLoss', gather=True),
    caption_length=32)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResize', scale=(image_size, image_size), ratio_range=(1.0, 1.3), keep_ratio=True),
    dict(type='RandomCrop', crop_size=(image_size, image_size)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='TokenizeCaption', context_length=32),
    dict(type='PackSegInputs', meta_keys=('img_path', 'ori_shape', 'img_shape', 'caption', 'caption_tokens')),
]
train_dataloader = dict(
    batch_size=64,
    num_workers=2,
    persistent_workers=True,
    drop_last=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='COCOCaptionDataset', data_root=toy_root + '/train', ann_file='dataset_coco.json',
                 split='train', pipeline=train_pipeline))

max_iters = 1000
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-3, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.1),
    clip_grad=dict(max_norm=1.0),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=max_iters // 10),
    dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=False, begin=max_iters // 10, end=max_iters),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='AtomicCheckpointHook', by_epoch=False, interval=max_iters, max_keep_ckpts=1),
    sampler_seed=dict(type='DistSamplerSeedHook'))
randomness = dict(seed=0)
