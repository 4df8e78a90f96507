# Cityscapes val, 19 classes (500 images). Prepare with data_prep/prepare_benchmarks.py cityscapes.
_base_ = './benchmark_common.py'
bench = 'cityscapes'
dataset_type = 'CityscapesDataset'
data_root = 'data/cityscapes'
test_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
    ))
