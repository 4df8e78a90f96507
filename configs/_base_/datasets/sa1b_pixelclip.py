# SA-1B images (half size, see data_prep/sa1b_subset.py) with unlabeled masks, PixelCLIP augmentation:
# weak view = ResizeShortestEdge(1024, max 1333) -> random 640 crop -> SSD colour aug -> flip (teacher);
# strong view = weak + colour jitter / grayscale / blur / black cutout (student); cutout removed from masks.
# (default_scope / custom_imports are set by the leaf configs: mmengine forbids duplicate keys among bases.)

sa1b_root = 'data/sa1b'
mask_folder = 'annotations'  # SA-1B masks; 'sam_masks' / 'dino_masks' from data_prep/
remove_cutout_from_masks = True
train_pipeline = [
    dict(type='LoadImageFromFile'),
    # lazy: masks stay run lengths until the crop is known, then only the kept crop is decoded and
    # packed (bit-identical to decoding everything; tools/benchmark_data.py pixelclip-loader)
    dict(type='LoadUnlabeledMasks', lazy=True),
    dict(type='ResizeCropFlipWithMasks', short_edges=1024, max_size=1333, crop_size=(640, 640), flip_prob=0.5),
    dict(type='PhotoMetricDistortion'),  # = detectron2 ColorAugSSDTransform (weak photometric aug)
    dict(type='PixelCLIPStrongView', jitter_prob=0.8, jitter=(0.5, 0.5, 0.5, 0.25), gray_prob=0.2,
         blur_prob=0.5, blur_sigma=(0.1, 2.0), cutout_prob=1.0, cutout_scale=(0.1, 0.5),
         mask_key='unlabeled_masks'),
    dict(type='PackPixelCLIPInputs'),
]
train_dataloader = dict(
    batch_size=12,  # x 4 GPUs = 48 images / iteration (official)
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    # The sample index (`python data_prep/build_index.py sa1b data/sa1b data/sa1b/index.npz`): start-up
    # reads it instead of walking and stat-ing every image. ann_file='' scans the folders instead (small data).
    # A broken sample is logged and replaced (counted); more than 1% broken stops the run.
    dataset=dict(type='SA1BDataset', data_root=sa1b_root, ann_file='index.npz', max_broken_fraction=0.01,
                 data_prefix=dict(img_path='images', mask_path=mask_folder), pipeline=train_pipeline))
