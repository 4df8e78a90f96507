# A tiny open_clip CLIP (random weights) for tests, smoke jobs and the toy quickstart.
# Same architecture family as ViT-B/16 (QuickGELU, CLS pooling, causal text tower), small widths.
tiny_clip_cfg = dict(
    embed_dim=32,
    quick_gelu=True,
    vision_cfg=dict(image_size=64, patch_size=8, width=64, layers=4, head_width=16, mlp_ratio=4.0),
    text_cfg=dict(context_length=77, vocab_size=49408, width=64, heads=4, layers=2),
)
