# PixelCLIP ConvNeXt-B trained with DINO k-means masks (16 per image) on the SA-1B images (Table 1:
# COCO-St 20.2, ADE 19.4, PC-59 32.7, City 30.0, VOC-20 62.9).
# As the paper and the official code (pixelclip.py get_dino_masks), the masks are made online during
# training: OnlineDINOMaskPreProcessor runs a frozen DINO ViT-S/16 on the weak view of each 640x640
# crop (ImageNet normalisation, last block's normed patch tokens) and k-means with k = 16 per image,
# batched on the device. The DINO weights come from a local file (never torch.hub); they are not
# saved in checkpoints. The cutout is not removed from DINO masks (official).
# Offline alternative (masks of the whole image, data_prep/dino_masks.py): train
# pixelclip_convnextb_sa1b.py with mask_folder='dino_masks' and PixelCLIPStrongView(mask_key=None).
_base_ = ['./pixelclip_convnextb_sa1b.py']
default_scope = 'mmseg'
custom_imports = dict(imports=['mmseg_ovs'], allow_failed_imports=False)

dino_checkpoint = 'checkpoints/dino_deitsmall16_pretrain.pth'  # DINO ViT-S/16 (local file)
model = dict(data_preprocessor=dict(type='OnlineDINOMaskPreProcessor', dino_checkpoint=dino_checkpoint,
                                    dino_arch='vit_small_patch16_224', num_clusters=16, inputs_bgr=True))
# images only: no mask files are read (SA-1B images, e.g. an index from
# `python data_prep/build_index.py sa1b data/sa1b data/sa1b/images_index.npz --mask-dir ''`)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeCropFlipWithMasks', short_edges=1024, max_size=1333, crop_size=(640, 640), flip_prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PixelCLIPStrongView', mask_key=None),
    dict(type='PackPixelCLIPInputs'),
]
train_dataloader = dict(dataset=dict(ann_file='images_index.npz', with_masks=False, pipeline=train_pipeline))
