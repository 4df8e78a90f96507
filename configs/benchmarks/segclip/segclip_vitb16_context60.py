# SegCLIP ViT-B/16 on context60 (SegCLIP protocol, seg_segmentation/configs/_base_/datasets/pascal_context.py):
# short side 224 (cv2 bilinear), slide 224/224, template 'single' ("a photo of a {}."),
# background threshold 0.25 (pascal_context.py:44); 'background' is thresholded, not prompted.
# Override e.g. --cfg-options model.bg_thresh=0.7 model.templates=imagenet model.test_cfg.stride="(112,112)"
_base_ = ['../../segclip_vitb16.py', '../../_base_/datasets/context60.py', '../../_base_/protocols/segclip_eval.py']
default_scope = 'mmseg'
custom_imports = dict(imports=['mmseg_ovs'], allow_failed_imports=False)

# Context names renamed as SegCLIP: aeroplane->airplane, pottedplant->plant, tvmonitor->monitor (mmseg_ovs/datasets/class_names/cls_context60_segclip.txt)
class_names = [
    'background', 'airplane', 'bag', 'bed', 'bedclothes', 'bench', 'bicycle', 'bird', 'boat',
    'book', 'bottle', 'building', 'bus', 'cabinet', 'car', 'cat', 'ceiling', 'chair', 'cloth',
    'computer', 'cow', 'cup', 'curtain', 'dog', 'door', 'fence', 'floor', 'flower', 'food',
    'grass', 'ground', 'horse', 'keyboard', 'light', 'motorbike', 'mountain', 'mouse', 'person',
    'plate', 'platform', 'plant', 'road', 'rock', 'sheep', 'shelves', 'sidewalk', 'sign', 'sky',
    'snow', 'sofa', 'table', 'track', 'train', 'tree', 'truck', 'monitor', 'wall', 'water',
    'window', 'wood',
]
model = dict(
    class_names=class_names,
    templates='single',
    bg_thresh=0.25,
    logit_scale_max=100.0,  # s = min(exp(learned logit_scale), logit_scale_max)
    test_cfg=dict(mode='slide', crop_size=(224, 224), stride=(224, 224)))
test_pipeline = {{_base_.segclip_test_pipeline}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
