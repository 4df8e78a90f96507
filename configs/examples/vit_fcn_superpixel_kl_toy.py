# Mixing: SegCLIP's SuperpixelKLLoss as an extra loss of a stock mmseg model (mmseg's VisionTransformer
# + FCN head on the toy scenes, no group neck): besides cross-entropy, the head's hard Gumbel assignment
# over classes is pulled towards its mean over each region of the label map (symmetric KL, weight 0.1).
# Any map of region ids with the label's size works as the target, e.g. superpixels packed as the
# segmentation map.
_base_ = ['./group_neck_vit_fcn_toy.py']
default_scope = 'mmseg'
custom_imports = dict(imports=['mmseg_ovs'], allow_failed_imports=False)

model = dict(
    neck=None,
    decode_head=dict(loss_decode=[
        dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
        dict(type='SuperpixelKLLoss', input_type='logits', tau=0.9, loss_weight=0.1),
    ]))
