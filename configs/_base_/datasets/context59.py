# PASCAL-Context (VOC2010) val, 59 classes, background ignored (5105 images): the context60 files, read by PascalContextDataset59.
# Prepare with data_prep/prepare_benchmarks.py context.
_base_ = './context60.py'
bench = 'context59'
dataset_type = 'PascalContextDataset59'
test_dataloader = dict(dataset=dict(type=dataset_type))
