"""OpenCLIPTextEncoder: the CLIP text tower (open_clip) with templates, a class-embedding cache and
learnable context tokens."""
import copy
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from torch import nn

import open_clip

from mmseg_ovs.models.clip.builder import build_open_clip, load_clip_weights_into
from mmseg_ovs.models.clip.templates import get_templates

__all__ = ['OpenCLIPTextEncoder']

ClassNames = Sequence[Union[str, Sequence[str]]]


@MODELS.register_module()
class OpenCLIPTextEncoder(BaseModule):
    """CLIP text tower built by open_clip, tokenised with open_clip's BPE tokenizer.

    Parameters keep open_clip's names (``token_embedding``, ``positional_embedding``,
    ``transformer.resblocks.*``, ``ln_final``, ``text_projection``, ``logit_scale``).

    Args:
        model_name / model_cfg / pretrained: as :class:`OpenCLIPViT` (weights loaded by ``init_weights``).
        vocabulary: class names; an entry may be a list of synonyms (averaged), or None.
        templates: a template-set name (``single``, ``imagenet``, ``imagenet_select``, ``vild``) or a list.
        frozen: freeze every parameter (the text tower is frozen in PixelCLIP).
        cache_dtype: ``float32`` (default) or ``float16``: the precision in which the class classifier is
            computed (PixelCLIP's ViT runs its test-time text tower in fp16; LayerNorm stays fp32).
    """

    def __init__(self,
                 model_name: str = 'ViT-B-16',
                 model_cfg: Optional[dict] = None,
                 pretrained: Optional[str] = None,
                 vocabulary: Optional[ClassNames] = None,
                 templates: Union[str, Sequence[str]] = 'single',
                 frozen: bool = False,
                 cache_dtype: str = 'float32',
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        clip = build_open_clip(model_name, model_cfg=model_cfg)
        self.pretrained = pretrained
        self.token_embedding = clip.token_embedding
        self.positional_embedding = clip.positional_embedding
        self.transformer = clip.transformer
        self.ln_final = clip.ln_final
        self.text_projection = clip.text_projection
        self.logit_scale = clip.logit_scale
        self.register_buffer('attn_mask', clip.attn_mask, persistent=False)
        self.context_length = clip.context_length
        self.vocab_size = clip.vocab_size
        self.eot_token_id = open_clip.get_tokenizer('ViT-B-16').eot_token_id
        del clip
        self.tokenizer = open_clip.get_tokenizer('ViT-B-16', context_length=self.context_length)
        self.templates = get_templates(templates)
        if cache_dtype not in ('float32', 'float16'):
            raise ValueError(f'cache_dtype must be float32 or float16, got {cache_dtype!r}')
        self.cache_dtype = cache_dtype
        self.vocabulary = None
        # (num_classes, E) L2-normalised class embeddings: a buffer so that the image graph can be
        # exported without the text tower. Recomputed lazily when vocabulary/weights/templates change.
        self.register_buffer('class_embeddings', torch.empty(0), persistent=False)
        self._cache_valid = False
        self.register_load_state_dict_post_hook(lambda module, keys: module.invalidate_cache())
        if vocabulary is not None:
            self.set_vocabulary(vocabulary)
        if frozen:
            self.requires_grad_(False)

    # ------------------------------------------------------------------ weights
    def init_weights(self):
        if self.pretrained:
            load_clip_weights_into(self, self.pretrained, prefixes=(
                'token_embedding.', 'positional_embedding', 'transformer.', 'ln_final.', 'text_projection',
                'logit_scale'))
        self.invalidate_cache()

    def invalidate_cache(self):
        self._cache_valid = False

    def train(self, mode: bool = True):
        self.invalidate_cache()
        return super().train(mode)

    # ------------------------------------------------------------------ tokens and features
    def tokenize(self, texts: Union[str, Sequence[str]], context_length: Optional[int] = None) -> torch.Tensor:
        """open_clip BPE tokenisation: [SOT] + BPE + [EOT], zero-padded; (N, context_length) int64.

        Too-long texts are truncated with the last id set to EOT (CLIP's behaviour).
        """
        context_length = context_length or self.context_length
        if context_length > self.context_length:
            raise ValueError(f'context_length {context_length} > the model\'s {self.context_length}')
        return self.tokenizer(texts, context_length=context_length).to(self.token_embedding.weight.device)

    def encode_embeddings(self, token_embeds: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Text transformer from token embeddings (gradients flow through, e.g. to learnable context).

        Args:
            token_embeds: (N, T, C) token embeddings, T <= context length.
            tokens: (N, T) token ids; the feature is taken at the EOT (largest id) position.
        Returns:
            (N, E) projected end-of-text features, not normalised.
        """
        seq_len = token_embeds.shape[1]
        x = token_embeds + self.positional_embedding[:seq_len].to(token_embeds.dtype)
        x = self.transformer(x, attn_mask=self.attn_mask[:seq_len, :seq_len])
        x = x[torch.arange(x.shape[0], device=x.device), tokens.argmax(dim=-1)]
        x = self.ln_final(x)  # LayerNorm is per-token, so normalising only the EOT token is equivalent
        if self.text_projection is not None:
            x = self.text_projection(x) if isinstance(self.text_projection, nn.Linear) else x @ self.text_projection
        return x

    def encode_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """(N, T) token ids -> (N, E) end-of-text features (as open_clip's ``encode_text``)."""
        return self.encode_embeddings(self.token_embedding(tokens), tokens)

    def encode_text(self, texts: Union[str, Sequence[str]], context_length: Optional[int] = None) -> torch.Tensor:
        return self.encode_tokens(self.tokenize(texts, context_length))

    # ------------------------------------------------------------------ vocabulary
    def set_vocabulary(self, vocabulary: ClassNames, templates: Union[str, Sequence[str], None] = None):
        """Set the class names (entries may be synonym lists) and optionally the templates."""
        vocabulary = [[v] if isinstance(v, str) else list(v) for v in vocabulary]
        if not vocabulary or any(not names or any(not str(n).strip() for n in names) for names in vocabulary):
            raise ValueError(f'empty vocabulary or empty class name in {vocabulary!r}')
        self.vocabulary = vocabulary
        if templates is not None:
            self.templates = get_templates(templates)
        self.invalidate_cache()

    def compute_class_embeddings(self, vocabulary: Optional[ClassNames] = None) -> torch.Tensor:
        """Template-ensembled class embeddings (num_classes, E), L2-normalised.

        Each (class, template) text is encoded and L2-normalised, averaged over templates and synonyms,
        then re-normalised (the CLIP zero-shot recipe).
        """
        vocabulary = self.vocabulary if vocabulary is None else [
            [v] if isinstance(v, str) else list(v) for v in vocabulary]
        if not vocabulary:
            raise ValueError('no vocabulary set: call set_vocabulary() or pass vocabulary=[...]')
        texts, owners = [], []
        for cls_idx, names in enumerate(vocabulary):
            for name in names:
                for template in self.templates:
                    texts.append(template.format(name))
                    owners.append(cls_idx)
        tokens = self.tokenize(texts)
        if self.cache_dtype == 'float16':
            feats = self._encode_tokens_fp16(tokens)
        else:
            feats = self.encode_tokens(tokens)
        feats = F.normalize(feats.float(), dim=-1)
        owners = torch.tensor(owners, device=feats.device)
        summed = torch.zeros(len(vocabulary), feats.shape[1], device=feats.device).index_add_(0, owners, feats)
        return F.normalize(summed, dim=-1)

    def _encode_tokens_fp16(self, tokens: torch.Tensor) -> torch.Tensor:
        """Encode with fp16 Linear/attention weights and activations, LayerNorm in fp32 (how OpenAI CLIP
        runs in half precision). Used once per vocabulary, so a temporary half copy is fine."""
        half = copy.deepcopy(self).half()
        for module in half.modules():
            if isinstance(module, nn.LayerNorm):
                module.float()
                module.register_forward_pre_hook(lambda m, args: (args[0].float(),))
                module.register_forward_hook(lambda m, args, out: out.half())
        with torch.no_grad():
            return half.encode_tokens(tokens).float()

    def forward(self, vocabulary: Optional[ClassNames] = None) -> torch.Tensor:
        """Class embeddings (num_classes, E), normalised; cached in eval mode for the set vocabulary."""
        if vocabulary is not None:
            return self.compute_class_embeddings(vocabulary)
        if self.training and any(p.requires_grad for p in self.parameters()):
            return self.compute_class_embeddings()
        if not self._cache_valid:
            with torch.no_grad():
                self.class_embeddings = self.compute_class_embeddings()
            self._cache_valid = True
        return self.class_embeddings
