# PASCAL VOC 2012 val, 21 classes incl. background (1449 images). Prepare with data_prep/prepare_benchmarks.py voc (checks only).
_base_ = './benchmark_common.py'
bench = 'voc21'
dataset_type = 'PascalVOCDataset'
data_root = 'data/VOCdevkit/VOC2012'
test_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file='ImageSets/Segmentation/val.txt',
    ))
