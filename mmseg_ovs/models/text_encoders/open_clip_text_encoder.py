"""OpenCLIPTextEncoder: the CLIP text tower (open_clip) with templates, a class-embedding cache and
learnable context tokens."""
import copy
from typing import List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from torch import nn

import open_clip

from mmseg_ovs.datasets.class_names import Vocabulary, parse_vocabulary
from mmseg_ovs.models.clip.builder import build_open_clip, load_clip_weights_into
from mmseg_ovs.models.clip.templates import get_templates
from mmseg_ovs.utils.precision import float32_region

__all__ = ['OpenCLIPTextEncoder']



@MODELS.register_module()
class OpenCLIPTextEncoder(BaseModule):
    """CLIP text tower built by open_clip, tokenised with open_clip's BPE tokenizer.

    Parameters keep open_clip's names (``token_embedding``, ``positional_embedding``,
    ``transformer.resblocks.*``, ``ln_final``, ``text_projection``, ``logit_scale``).

    Args:
        model_name / model_cfg / pretrained: as :class:`OpenCLIPViT` (weights loaded by ``init_weights``).
        vocabulary: any form of :func:`parse_vocabulary` (benchmark key, ``cls_*.txt`` path, list of
            names, synonym lists averaged), or None.
        templates: a template-set name (``single``, ``imagenet``, ``imagenet_select``, ``vild``) or a list.
        template_reduce: ``'normalized'`` (mean of normalised per-template features, CLIP/PixelCLIP) or
            ``'raw'`` (mean of raw features, SegCLIP official); see :meth:`compute_class_embeddings`.
        background_class: a leading class of this name is not prompted (set by segmentors that predict
            background by a threshold); None prompts every class.
        frozen: freeze every parameter (the text tower is frozen in PixelCLIP).
        cache_dtype: ``float32`` (default) or ``float16``: the precision in which the class classifier is
            computed (PixelCLIP's ViT runs its test-time text tower in fp16; LayerNorm stays fp32).
    """

    def __init__(self,
                 model_name: str = 'ViT-B-16',
                 model_cfg: Optional[dict] = None,
                 pretrained: Optional[str] = None,
                 vocabulary: Optional[Vocabulary] = None,
                 templates: Union[str, Sequence[str]] = 'single',
                 template_reduce: str = 'normalized',
                 background_class: Optional[str] = None,
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
        if template_reduce not in ('normalized', 'raw'):
            raise ValueError(f"template_reduce must be 'normalized' or 'raw', got {template_reduce!r}")
        self.template_reduce = template_reduce
        self.background_class = background_class
        self.vocabulary: Optional[List[List[str]]] = None
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
        if mode:  # weights may change while training; eval() keeps a cache computed in eval mode
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
        """(N, T) token ids -> (N, E) end-of-text features (as open_clip's ``encode_text``).

        Positions after the batch's last EOT are not computed: under the causal mask the EOT feature
        never sees later positions, so the result is the same (up to float rounding) at a fraction of
        the cost for short captions (SegCLIP's 32-token captions are ~12 tokens on COCO).
        """
        if self.attn_mask is not None and tokens.shape[1] > 1:
            length = int(tokens.argmax(dim=-1).max()) + 1
            tokens = tokens[:, :length]
        return self.encode_embeddings(self.token_embedding(tokens), tokens)

    def encode_text(self, texts: Union[str, Sequence[str]], context_length: Optional[int] = None) -> torch.Tensor:
        return self.encode_tokens(self.tokenize(texts, context_length))

    # ------------------------------------------------------------------ vocabulary
    def set_vocabulary(self, vocabulary: Vocabulary, templates: Union[str, Sequence[str], None] = None,
                       variant: Optional[str] = None):
        """Set the classes in any form :func:`parse_vocabulary` accepts (benchmark key, ``cls_*.txt``
        path, list of names / synonym lists / ``'a|b'`` strings) and optionally the templates.

        With ``background_class`` set, a leading entry of that name is kept in ``vocabulary`` but not
        prompted (the segmentor predicts it by a threshold)."""
        vocabulary = parse_vocabulary(vocabulary, variant)
        if templates is not None:
            self.templates = get_templates(templates)
        self.vocabulary = vocabulary
        if self.background_class is not None and not self.prompted_vocabulary:
            raise ValueError(f'vocabulary {vocabulary!r} has no class besides {self.background_class!r}')
        self.invalidate_cache()

    @property
    def has_background(self) -> bool:
        """True when the first class is the (thresholded, not prompted) background class."""
        return bool(self.vocabulary) and self.background_class is not None and \
            self.vocabulary[0][0].lower() == self.background_class.lower()

    @property
    def prompted_vocabulary(self) -> List[List[str]]:
        """The classes that get text embeddings (the vocabulary without a thresholded background)."""
        return (self.vocabulary or [])[int(self.has_background):]

    @property
    def class_names(self) -> Optional[List[str]]:
        """One display name per class (the first synonym), background included."""
        return None if self.vocabulary is None else [names[0] for names in self.vocabulary]

    def compute_class_embeddings(self, vocabulary: Optional[Vocabulary] = None) -> torch.Tensor:
        """Class embeddings (num_prompted_classes, E), L2-normalised.

        Per name, the templates are ensembled as ``template_reduce`` says: ``'normalized'`` (the CLIP
        zero-shot recipe, PixelCLIP): mean of the L2-normalised per-template features; ``'raw'``
        (SegCLIP's official code): mean of the un-normalised features. Then, per class, the mean of the
        L2-normalised synonym embeddings, re-normalised (with one template this is the mean of the
        normalised synonym embeddings, with one synonym the usual single-name embedding).
        """
        classes = self.prompted_vocabulary if vocabulary is None else parse_vocabulary(vocabulary)
        if not classes:
            raise ValueError('no vocabulary set: call set_vocabulary() or pass vocabulary=[...]')
        names = [n for syn in classes for n in syn]
        texts = [t.format(n) for n in names for t in self.templates]
        tokens = self.tokenize(texts)
        with float32_region(tokens.device.type):  # the cache is never computed under autocast
            if self.cache_dtype == 'float16':
                feats = self._encode_tokens_fp16(tokens)
            else:
                feats = self.encode_tokens(tokens)
        feats = feats.float().view(len(names), len(self.templates), -1)
        if self.template_reduce == 'normalized':
            feats = F.normalize(feats, dim=-1)
        per_name = F.normalize(feats.mean(1), dim=-1)  # (num_names, E)
        owners = torch.tensor([i for i, syn in enumerate(classes) for _ in syn], device=feats.device)
        summed = per_name.new_zeros(len(classes), per_name.shape[1]).index_add_(0, owners, per_name)
        counts = torch.bincount(owners, minlength=len(classes)).to(summed.dtype)
        return F.normalize(summed / counts[:, None], dim=-1)

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

    def forward(self, vocabulary: Optional[Vocabulary] = None) -> torch.Tensor:
        """Class embeddings (num_prompted_classes, E), normalised.

        In eval mode (or when nothing is trainable) they are computed once per vocabulary and kept in
        the ``class_embeddings`` buffer (so an exported image graph carries them as a constant); the
        cache is dropped by ``set_vocabulary``, ``train()``, ``init_weights`` and weight loading."""
        if vocabulary is not None:
            return self.compute_class_embeddings(vocabulary)
        if self.training and any(p.requires_grad for p in self.parameters()):
            return self.compute_class_embeddings()
        if not self._cache_valid:
            with torch.no_grad():
                self.class_embeddings = self.compute_class_embeddings()
            self._cache_valid = True
        return self.class_embeddings
