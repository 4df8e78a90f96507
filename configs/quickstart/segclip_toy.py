# Quickstart stage 2: SegCLIP fine-tuned from the toy-pretrained tiny CLIP with the real components
# and all three losses (contrastive + superpixel KL + masked reconstruction), scaled down:
# 4 CLIP blocks split 3 | 1 around the group module, 8 centres, 64 px crops, 8 px patches.
_base_ = ['../segclip_vitb16.py', '../_base_/clip/tiny_vit.py', './_toy_eval.py']
default_scope = 'mmseg'
custom_imports = dict(imports=['mmseg_ovs'], allow_failed_imports=False)

toy_root = 'data/toy'  # = _toy_eval.py
clip_pretrained = 'work_dirs/quickstart/tiny_clip.pt'  # written by tools/quickstart.py (stage 1)
image_size = 64

model = dict(
    data_preprocessor=dict(size=(image_size, image_size)),
    backbone=dict(model_name=None, model_cfg={{_base_.tiny_clip_cfg}}, pretrained=clip_pretrained),
    text_encoder=dict(model_name=None, model_cfg={{_base_.tiny_clip_cfg}}, pretrained=clip_pretrained),
    first_stage_layers=3,
    reconstruction=dict(mask_ratio=0.75, num_blocks=2, decoder_dim=32, decoder_depth=3, decoder_heads=4),
    frozen_patterns=[
        r'^text_encoder\.token_embedding\.', r'^text_encoder\.positional_embedding$',
        r'^backbone\.visual\.(class_embedding|positional_embedding)$',
        r'^backbone\.visual\.(conv1|ln_pre)\.'
    ],
    class_names={{_base_.toy_classes}},  # no background class: the toy protocol ignores it
    templates='single',
    bg_thresh=None,
    topk=5,
    test_cfg=dict(mode='whole'))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadSuperpixels'),
    dict(type='RandomResizedCropWithSuperpixels', size=image_size, scale=(0.5, 1.0),
         ratio=(3. / 4., 4. / 3.), patch_size=8),
    dict(type='TokenizeCaption', context_length=32),
    dict(type='PackSegInputs',
         meta_keys=('img_path', 'ori_shape', 'img_shape', 'caption', 'caption_tokens', 'superpixel_labels')),
]
train_dataloader = dict(
    _delete_=True,
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    drop_last=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='COCOCaptionDataset', data_root=toy_root + '/train', ann_file='dataset_coco.json',
                 split='train', superpixel_root=toy_root + '/train/superpixels', pipeline=train_pipeline))
max_iters = 300
# new modules 1e-3; CLIP stage 1 and text tower x0.01 (the recipe's 4e-3 / 4e-6 ratio is for a
# pre-trained ViT-B/16; the toy CLIP is small and briefly pre-trained)
optim_wrapper = dict(optimizer=dict(lr=1e-3), paramwise_cfg=dict(_delete_=True, custom_keys={
    'backbone.visual.transformer.resblocks.0.': dict(lr_mult=0.01),
    'backbone.visual.transformer.resblocks.1.': dict(lr_mult=0.01),
    'backbone.visual.transformer.resblocks.2.': dict(lr_mult=0.01),
    'text_encoder.': dict(lr_mult=0.01),
    'bias': dict(decay_mult=0.)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=int(0.15 * max_iters)),
    dict(type='CosineAnnealingLR', eta_min=0., by_epoch=False, begin=int(0.15 * max_iters), end=max_iters),
]
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters)
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(by_epoch=False, interval=max_iters, max_keep_ckpts=1))
randomness = dict(seed=0)
