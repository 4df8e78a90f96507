# PixelCLIP ViT-B/16 trained with DINO k-means masks (16 per image) on the SA-1B images (Table 1:
# COCO-St 22.2, ADE 17.4, PC-59 34.3, City 22.9, VOC-20 83.8). The official code clusters DINO ViT-S/16
# features of each 640 crop online via torch.hub; here the masks come offline from
# data_prep/dino_masks.py (local DINO weights, whole image), a documented deviation.
_base_ = ['./pixelclip_vitb16_sa1b.py']
default_scope = 'mmseg'
custom_imports = dict(imports=['mmseg_ovs'], allow_failed_imports=False)

mask_folder = 'dino_masks'
# official: the cutout is not removed from DINO masks
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadUnlabeledMasks'),
    dict(type='ResizeCropFlipWithMasks', short_edges=1024, max_size=1333, crop_size=(640, 640), flip_prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PixelCLIPStrongView', mask_key=None),
    dict(type='PackPixelCLIPInputs'),
]
train_dataloader = dict(dataset=dict(data_prefix=dict(img_path='images', mask_path=mask_folder),
                                     pipeline=train_pipeline))
