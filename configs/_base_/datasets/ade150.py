# ADE20K-150 val (ADEChallengeData2016) (2000 images). Prepare with data_prep/prepare_benchmarks.py ade20k (checks only).
_base_ = './benchmark_common.py'
bench = 'ade150'
dataset_type = 'ADE20KDataset'
data_root = 'data/ade/ADEChallengeData2016'
test_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation'),
    ))
