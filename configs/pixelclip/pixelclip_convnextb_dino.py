# PixelCLIP ConvNeXt-B trained with offline DINO k-means masks (Table 1: COCO-St 20.2, ADE 19.4,
# PC-59 32.7, City 30.0, VOC-20 62.9). See pixelclip_vitb16_dino.py for the DINO-mask deviation.
_base_ = ['./pixelclip_convnextb_sa1b.py']
default_scope = 'mmseg'
custom_imports = dict(imports=['mmseg_ovs'], allow_failed_imports=False)

mask_folder = 'dino_masks'
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
