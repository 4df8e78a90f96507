"""The open_clip image/text encoders: parity with open_clip, local-file loading, errors."""
import copy

import open_clip
import pytest
import torch
from open_clip.model import CLIP

from mmseg_ovs.models.backbones import OpenCLIPConvNeXt, OpenCLIPViT
from mmseg_ovs.models.clip import build_open_clip, load_clip_weights
from mmseg_ovs.models.text_encoders import OpenCLIPTextEncoder

VIT_224 = dict(embed_dim=32, quick_gelu=True,
               vision_cfg=dict(image_size=224, patch_size=16, width=64, layers=2, head_width=16),
               text_cfg=dict(context_length=77, vocab_size=49408, width=64, heads=4, layers=2))
CONVNEXT = dict(embed_dim=32,
                vision_cfg=dict(timm_model_name='convnext_atto', timm_model_pretrained=False, timm_pool='',
                                timm_proj='linear', timm_drop=0.0, image_size=64),
                text_cfg=dict(context_length=77, vocab_size=49408, width=64, heads=4, layers=1))


@pytest.fixture(scope='module')
def reference_clip(tmp_path_factory):
    """A random open_clip CLIP saved as an OpenCLIP checkpoint file."""
    torch.manual_seed(0)
    model = CLIP(**VIT_224).eval()
    path = str(tmp_path_factory.mktemp('clip') / 'tiny_openclip.pt')
    torch.save({'epoch': 1, 'state_dict': {'module.' + k: v for k, v in model.state_dict().items()}}, path)
    return model, path


def _backbone(path, **kwargs):
    backbone = OpenCLIPViT(model_name=None, model_cfg=VIT_224, pretrained=path, **kwargs)
    backbone.init_weights()
    return backbone.eval()


def test_vit_pooled_matches_open_clip_at_224(reference_clip):
    model, path = reference_clip
    backbone = _backbone(path)
    img = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(backbone.encode_image(img), model.encode_image(img), atol=1e-5, rtol=0)


def test_vit_pooled_matches_open_clip_at_other_size(reference_clip):
    """At 320x320 our per-forward bicubic resize equals open_clip loading the checkpoint at 320
    (open_clip resizes with antialias=True, whose bicubic kernel differs from the plain one even when
    upsampling; the methods' own default is antialias=False)."""
    _, path = reference_clip
    cfg = copy.deepcopy(VIT_224)
    cfg['vision_cfg']['image_size'] = 320
    model_320 = CLIP(**cfg).eval()
    open_clip.load_checkpoint(model_320, path)  # open_clip's own resize_pos_embed
    backbone = _backbone(path, pos_embed_antialias=True)
    img = torch.randn(1, 3, 320, 320)
    with torch.no_grad():
        torch.testing.assert_close(backbone.encode_image(img), model_320.encode_image(img), atol=1e-5, rtol=0)
        dense = backbone.dense_features(img)
        plain = _backbone(path).encode_image(img)
    assert (plain - model_320.encode_image(img)).abs().max() > 1e-5  # the flag matters
    assert dense.shape == (1, 32, 20, 20)


def test_vit_tokens_after_any_block_and_freezing(reference_clip):
    _, path = reference_clip
    backbone = _backbone(path, out_indices=(0, 1), out_dense_proj=True,
                         frozen_patterns=(r'^visual\.conv1', r'^visual\.ln_pre', r'positional_embedding'))
    img = torch.randn(1, 3, 224, 224)
    outs = backbone(img)
    assert [tuple(o.shape) for o in outs] == [(1, 64, 14, 14), (1, 64, 14, 14), (1, 32, 14, 14)]
    tokens = backbone.forward_blocks(backbone.embed(img), 0, 1)
    torch.testing.assert_close(tokens[:, 1:].transpose(1, 2).reshape(1, 64, 14, 14), outs[0])
    frozen = {n for n, p in backbone.named_parameters() if not p.requires_grad}
    assert frozen == {'visual.conv1.weight', 'visual.ln_pre.weight', 'visual.ln_pre.bias',
                      'visual.positional_embedding'}


def test_text_encoder_matches_open_clip(reference_clip):
    model, path = reference_clip
    encoder = OpenCLIPTextEncoder(model_name=None, model_cfg=VIT_224, pretrained=path)
    encoder.init_weights()
    texts = ['a photo of a cat.', 'Two dogs &amp; a ball!', 'a very long caption ' * 30]
    tokenizer = open_clip.get_tokenizer('ViT-B-16')
    tokens = tokenizer(texts)
    assert torch.equal(encoder.tokenize(texts), tokens)
    with torch.no_grad():
        ours = encoder.encode_tokens(tokens)
        torch.testing.assert_close(ours, model.encode_text(tokens), atol=1e-5, rtol=0)
        # Causal mask: the EOT feature of a short text does not depend on the padded length.
        short = encoder.encode_tokens(encoder.tokenize(texts[:2], context_length=32))
        # a batch of short texts runs only up to its last EOT (9 of 77 positions here): same features
        trimmed = encoder.encode_tokens(tokens[:2])
        full = model.encode_text(tokens[:2])
    assert int(tokens[:2].argmax(-1).max()) + 1 < 77 // 4
    torch.testing.assert_close(short, ours[:2], atol=1e-5, rtol=0)
    torch.testing.assert_close(trimmed, full, atol=1e-5, rtol=0)


def test_text_encoder_templates_cache_and_vocabulary(reference_clip):
    model, path = reference_clip
    encoder = OpenCLIPTextEncoder(model_name=None, model_cfg=VIT_224, pretrained=path,
                                  vocabulary=['cat', ['dog', 'puppy']], templates=['a photo of a {}.', 'art of the {}.'])
    encoder.init_weights()
    encoder.eval()
    emb = encoder()
    with torch.no_grad():
        feats = torch.nn.functional.normalize(model.encode_text(open_clip.get_tokenizer('ViT-B-16')(
            ['a photo of a cat.', 'art of the cat.', 'a photo of a dog.', 'art of the dog.',
             'a photo of a puppy.', 'art of the puppy.'])), dim=-1)
    # per name: normalised mean of the normalised template features; per class: normalised mean of
    # its (normalised) synonym embeddings
    norm = torch.nn.functional.normalize
    per_name = norm(feats.view(3, 2, -1).mean(1), dim=-1)
    expected = norm(torch.stack([per_name[0], per_name[1:].mean(0)]), dim=-1)
    torch.testing.assert_close(emb, expected, atol=1e-5, rtol=0)
    assert 'class_embeddings' in dict(encoder.named_buffers()) and encoder.class_embeddings is emb
    # New weights invalidate the cache.
    state = {k: v + 0.01 if v.is_floating_point() else v for k, v in encoder.state_dict().items()}
    encoder.load_state_dict(state)
    assert not torch.allclose(encoder(), expected, atol=1e-4)
    with pytest.raises(ValueError, match='empty vocabulary'):
        encoder.set_vocabulary([])
    with pytest.raises(KeyError, match='unknown template set'):
        encoder.set_vocabulary(['cat'], templates='nope')


def test_text_encoder_fp16_classifier_close_to_fp32(reference_clip):
    _, path = reference_clip
    kwargs = dict(model_name=None, model_cfg=VIT_224, pretrained=path, vocabulary=['cat', 'dog', 'tree'],
                  templates='imagenet_select')
    fp32 = OpenCLIPTextEncoder(**kwargs).eval()
    fp16 = OpenCLIPTextEncoder(cache_dtype='float16', **kwargs).eval()
    fp32.init_weights()
    fp16.init_weights()
    a, b = fp32(), fp16()
    assert b.dtype == torch.float32 and len(fp16.templates) == 8
    diff = (a - b).abs().max().item()
    assert 0 < diff < 5e-2, diff  # really computed in half precision, and close


def test_learnable_context_gets_gradients(reference_clip):
    _, path = reference_clip
    encoder = OpenCLIPTextEncoder(model_name=None, model_cfg=VIT_224, pretrained=path, frozen=True)
    encoder.init_weights()
    tokens = encoder.tokenize(['A photo of a X X X X in the scene'] * 3)
    context = torch.randn(3, 4, 64, requires_grad=True)
    embeds = encoder.token_embedding(tokens).clone()
    embeds[:, 5:9] = context
    feats = encoder.encode_embeddings(embeds, tokens)
    feats.sum().backward()
    assert context.grad is not None and context.grad.abs().sum() > 0
    assert all(p.grad is None for p in encoder.parameters())


def test_convnext_pooled_matches_open_clip(tmp_path):
    torch.manual_seed(0)
    model = CLIP(**CONVNEXT).eval()
    path = str(tmp_path / 'convnext.safetensors')
    from safetensors.torch import save_file
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, path)
    backbone = OpenCLIPConvNeXt(model_name=None, model_cfg=CONVNEXT, pretrained=path)
    backbone.init_weights()
    backbone.eval()
    img = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(backbone.encode_image(img), model.encode_image(img), atol=1e-5, rtol=0)
        dense = backbone.dense_features(img)
        assert dense.shape == (2, 32, 2, 2)
        # Dense features averaged before the projection equal the pooled path (LN is per location,
        # so compare the projection of the mean-pooled map instead).
        feats = backbone.visual.trunk.forward_features(img)
        pooled = backbone.visual.head(backbone.visual.trunk.head.norm(feats.mean((2, 3), keepdim=True)).flatten(1))
        torch.testing.assert_close(pooled, model.encode_image(img), atol=1e-5, rtol=0)


def _save_torchscript_archive(model, path):
    """An OpenAI-style TorchScript archive: a scripted module with CLIP's parameter names."""

    class Holder(torch.nn.Module):
        def __init__(self, clip):
            super().__init__()
            for name, child in clip.named_children():
                self.add_module(name, child)
            for name, param in clip.named_parameters(recurse=False):
                self.register_parameter(name, param)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    torch.jit.save(torch.jit.script(Holder(copy.deepcopy(model))), path)


def test_openai_torchscript_archive_loads(tmp_path):
    """An OpenAI-style TorchScript archive (a scripted module with CLIP parameter names)."""
    torch.manual_seed(1)
    model = CLIP(**VIT_224).eval()

    path = str(tmp_path / 'ViT-tiny.pt')
    _save_torchscript_archive(model, path)
    state = load_clip_weights(path)
    assert set(state) >= set(model.state_dict()) - {'attn_mask'}
    built = build_open_clip(None, model_cfg=VIT_224, pretrained=path)
    img = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(built.encode_image(img), model.encode_image(img), atol=1e-6, rtol=0)


def test_missing_and_corrupt_weight_files(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pt'):
        build_open_clip(None, model_cfg=VIT_224, pretrained=str(tmp_path / 'nope.pt'))
    bad = tmp_path / 'corrupt.pt'
    bad.write_bytes(b'not a checkpoint at all')
    with pytest.raises(RuntimeError, match='corrupt.pt'):
        load_clip_weights(str(bad))
    wrong = tmp_path / 'wrong.pt'
    torch.save({'visual.conv1.weight': torch.zeros(3)}, str(wrong))
    backbone = OpenCLIPViT(model_name=None, model_cfg=VIT_224, pretrained=str(wrong))
    with pytest.raises(RuntimeError, match='wrong.pt'):
        backbone.init_weights()


def test_openai_archive_into_gelu_model_is_refused(tmp_path):
    """OpenAI weights were trained with QuickGELU: loading them into a GELU tower is an error, not a
    silently different model."""
    model = CLIP(**VIT_224).eval()
    path = str(tmp_path / 'ViT-openai.pt')
    _save_torchscript_archive(model, path)
    gelu_cfg = dict(copy.deepcopy(VIT_224), quick_gelu=False)
    backbone = OpenCLIPViT(model_name=None, model_cfg=gelu_cfg, pretrained=path)
    with pytest.raises(ValueError, match='QuickGELU'):
        backbone.init_weights()
