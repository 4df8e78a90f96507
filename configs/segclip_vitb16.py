# SegCLIP ViT-B/16 (Luo et al., ICML 2023), the released recipe (ArrowLuo/SegCLIP README):
# OpenAI CLIP ViT-B/16 split after block 10 -> semantic group module (8 centres, 2 cross-attention
# blocks, hard Gumbel tau 0.9) -> CLIP blocks 10-11 on the centres; losses (weight 1 each):
# symmetric InfoNCE (all-gathered), superpixel KL, masked reconstruction (75%, 3-block 384-d decoder).
# 224 px, 96 image-text pairs per GPU x 8 GPUs, 10 epochs, AdamW (0.9, 0.98) eps 1e-6 wd 0.05,
# 15% linear warm-up then cosine, grad clip 1.0, fp32. LR 4e-3 for new modules, stage 3, ln_post, proj
# and the reconstruction branch; 4e-6 for CLIP blocks 0-9 and the text tower; token/positional
# embeddings, conv1 and ln_pre frozen.
_base_ = ['./_base_/default_runtime.py']
default_scope = 'mmseg'
custom_imports = dict(imports=['mmseg_ovs'], allow_failed_imports=False)

clip_pretrained = 'checkpoints/ViT-B-16.pt'  # local OpenAI CLIP file (never downloaded; QuickGELU)
first_stage_layers = 10
crop_size = (224, 224)

data_preprocessor = dict(
    type='OVSDataPreProcessor',
    # CLIP mean/std x 255; images are loaded BGR and flipped to RGB. Training crops are already
    # 224 x 224 (size only satisfies mmseg's batching). A test batch of different-size images is
    # padded, and each image is inferred on its own unpadded area (BaseOVSSegmentor).
    mean=[122.7709383, 116.7460125, 104.09373615],
    std=[68.5005327, 66.6321579, 70.32316305],
    bgr_to_rgb=True,
    size=crop_size,
    pad_val=0,
    seg_pad_val=255)
model = dict(
    type='SegCLIP',
    data_preprocessor=data_preprocessor,
    backbone=dict(type='OpenCLIPViT', model_name='ViT-B-16-quickgelu', pretrained=clip_pretrained),
    text_encoder=dict(type='OpenCLIPTextEncoder', model_name='ViT-B-16-quickgelu', pretrained=clip_pretrained),
    neck=dict(
        type='SemanticGroupNeck',
        num_centres=8,
        num_cross_layers=2,
        tau=0.9,
        # True reproduces the official torch-1.8 batch-mixing cross-attention of the released
        # checkpoint's training; False (default) is the correct per-image attention.
        batch_mixing_legacy=False),
    first_stage_layers=first_stage_layers,
    reconstruction=dict(mask_ratio=0.75, num_blocks=2, decoder_dim=384, decoder_depth=3,
                        decoder_heads=8),
    loss_contrastive=dict(type='ContrastiveLoss', gather=True, loss_weight=1.0),
    loss_superpixel=dict(type='SuperpixelKLLoss', loss_weight=1.0),
    loss_reconstruction_weight=1.0,
    logit_scale_max=100.0,
    caption_length=32,
    frozen_patterns=[
        r'^text_encoder\.token_embedding\.', r'^text_encoder\.positional_embedding$',
        r'^backbone\.visual\.(class_embedding|positional_embedding)$',
        r'^backbone\.visual\.(conv1|ln_pre)\.'
    ],
    # zero-shot inference (the benchmark configs set class_names and bg_thresh per dataset:
    # VOC 0.80, Context 0.25, COCO-Object 0.65)
    class_names=None,
    templates='single',  # "a photo of a {}."
    bg_thresh=0.80,
    topk=5,
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(224, 224)))
bg_thresh = dict(voc21=0.80, context60=0.25, coco_object=0.65)

# ----------------------------------------------------------------------------- data
# CC3M + COCO Captions Karpathy train (one sample per caption), stored at the training resolution as
# the official code (short side 224; data_prep/cc3m_shards.py does it for CC3M, data_prep/
# training_images.py for COCO), superpixels computed on exactly those pixels (data_prep/
# segclip_superpixels.py: Felzenszwalb scale 224, sigma 0.9, min_size 224), read through memory-mapped
# sample indexes (data_prep/build_index.py; a 3.5M-row index builds the dataset in well under 1 s):
#   python data_prep/cc3m_shards.py Train_GCC-training.tsv data/cc3m
#   python data_prep/training_images.py data/coco/train2014 data/coco/images_224/train2014
#   python data_prep/segclip_superpixels.py data/cc3m data/superpixels/cc3m
#   python data_prep/segclip_superpixels.py data/coco/images_224 data/superpixels/coco
#   python data_prep/build_index.py cc3m data/cc3m data/cc3m/index.npz
#   python data_prep/build_index.py coco data/coco data/coco/train_index.npz --img-dir images_224
# A broken sample is logged and replaced (counted over the rank's workers); more than 1% broken stops
# the run. Augmentations are seeded per sample (PerSampleSeedSampler + PerSampleSeedDataset: seed, epoch
# and index decide them, not the worker), so a killed run resumed with --resume repeats the
# uninterrupted one exactly although its 8 persistent workers are new.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadSuperpixels'),
    dict(type='RandomResizedCropWithSuperpixels', size=224, scale=(0.5, 1.0),
         ratio=(3. / 4., 4. / 3.), patch_size=16),
    dict(type='TokenizeCaption', context_length=32),
    dict(type='PackSegInputs',
         meta_keys=('img_path', 'ori_shape', 'img_shape', 'caption', 'caption_tokens',
                    'superpixel_labels')),
]
train_dataloader = dict(
    batch_size=96,
    num_workers=8,
    persistent_workers=True,
    drop_last=True,
    sampler=dict(type='PerSampleSeedSampler', shuffle=True),
    dataset=dict(
        type='PerSampleSeedDataset',
        dataset=dict(
            type='ConcatDataset',
            datasets=[
                dict(type='CC3MCaptionDataset', data_root='data/cc3m', ann_file='index.npz',
                     superpixel_root='data/superpixels/cc3m', max_broken_fraction=0.01, pipeline=train_pipeline),
                dict(type='COCOCaptionDataset', data_root='data/coco', ann_file='train_index.npz',
                     img_dir='images_224', superpixel_root='data/superpixels/coco', max_broken_fraction=0.01,
                     pipeline=train_pipeline),
            ])))

# ----------------------------------------------------------------------------- optimisation
base_lr = 4e-3
lower_lr_mult = 1e-3  # 4e-6 for CLIP blocks 0-9 and the whole text tower
_stage1 = [f'backbone.visual.transformer.resblocks.{i}.' for i in range(first_stage_layers)]
_text_blocks = [f'text_encoder.transformer.resblocks.{i}.' for i in range(12)]
_bias_names = ['attn.in_proj_bias', 'attn.out_proj.bias', 'ln_1.bias', 'ln_2.bias', 'mlp.c_fc.bias',
               'mlp.c_proj.bias']
custom_keys = {k: dict(lr_mult=lower_lr_mult) for k in _stage1 + ['text_encoder.']}
# official weight-decay exemption: every parameter whose name contains "bias" (mmengine picks the
# longest matching key, so the low-LR biases get their own keys)
custom_keys.update({b + n: dict(lr_mult=lower_lr_mult, decay_mult=0.)
                    for b in _stage1 + _text_blocks for n in _bias_names})
custom_keys['text_encoder.ln_final.bias'] = dict(lr_mult=lower_lr_mult, decay_mult=0.)
custom_keys['bias'] = dict(decay_mult=0.)
# fused AdamW (one kernel per parameter group; CPU and CUDA) on parameter groups merged by setting:
# every parameter keeps the lr / weight decay the custom keys give it (tests/test_fast_step.py).
# tools/train.py --amp turns this into mmengine's AmpOptimWrapper with `amp_dtype` (None: bfloat16
# where the GPU supports it, else float16); the official SegCLIP trains in fp32.
amp_dtype = None
optim_wrapper = dict(
    type='OptimWrapper',
    constructor='MergedGroupsOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=base_lr, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.05, fused=True),
    # foreach: multi-tensor norm and scale on CUDA (on CPU torch still loops per tensor: no gain)
    clip_grad=dict(max_norm=1.0, norm_type=2, foreach=True),
    paramwise_cfg=dict(custom_keys=custom_keys))
max_epochs = 10
warmup_epochs = 1.5  # 15% of the steps
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-8, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=0., by_epoch=True, begin=warmup_epochs, end=max_epochs,
         convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='AtomicCheckpointHook', by_epoch=True, interval=1, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
randomness = dict(seed=42, deterministic=False)
# The official stack's precision (torch 1.8.0): TF32 matmuls and TF32 cuDNN convolutions were torch's
# defaults then (matmul TF32 became opt-in in 1.12); cudnn.benchmark off. CUDA flags only, no effect
# on CPU; inherited by configs/benchmarks/segclip/.
# CheckpointModelSettingsHook: a checkpoint converted from the official release records
# neck.batch_mixing_legacy=True in its meta (tools/convert_segclip_checkpoint.py); it is applied on load.
custom_hooks = [dict(type='CUDAPrecisionHook', tf32_matmul=True, tf32_cudnn=True, cudnn_benchmark=False),
                dict(type='CheckpointModelSettingsHook'),
                # a NaN loss skips the optimizer step (counted, logged with the image paths, kept in
                # checkpoints) and never stops the run: the official loop (main_task_align.py)
                dict(type='NonFiniteLossHook', max_consecutive_skips=None)]
auto_scale_lr = dict(enable=False, base_batch_size=768)
