# PASCAL-Context (VOC2010) val, 60 classes incl. background (5105 images). Prepare with data_prep/prepare_benchmarks.py context.
_base_ = './benchmark_common.py'
bench = 'context60'
dataset_type = 'PascalContextDataset'
data_root = 'data/VOCdevkit/VOC2010'
test_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClassContext'),
        ann_file='ImageSets/SegmentationContext/val.txt',
    ))
