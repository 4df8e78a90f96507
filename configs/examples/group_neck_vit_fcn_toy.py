# Mixing: SegCLIP's SemanticGroupNeck inside a stock mmseg EncoderDecoder: mmseg's VisionTransformer
# backbone -> SemanticGroupNeck (8 learnable centres; each patch carries its centre's region feature,
# output_map=True) -> a stock FCN head, trained with cross-entropy on the toy scenes
# (data_prep/make_toy_dataset.py). The neck's head count (2) is independent of the width (64).
_base_ = ['./clip_vit_fcn_toy.py']
default_scope = 'mmseg'
custom_imports = dict(imports=['mmseg_ovs'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='VisionTransformer',
        img_size=(64, 64),
        patch_size=8,
        embed_dims=64,
        num_layers=4,
        num_heads=4,
        mlp_ratio=4,
        out_indices=(3, ),
        final_norm=True,
        with_cls_token=True,
        output_cls_token=False,
        interpolate_mode='bicubic'),
    neck=dict(type='SemanticGroupNeck', in_channels=64, num_heads=2, num_centres=8,
              num_cross_layers=2, tau=0.9, output_map=True),
    decode_head=dict(in_channels=64, channels=64))
