"""OnlineClusterHead: PixelCLIP's learnable class prompts, online clustering and mask loss."""
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmseg.registry import MODELS

from mmseg_ovs.utils.precision import float32_region
from .cluster_targets import build_cluster_targets

PLACEHOLDER = '{}'


@MODELS.register_module()
class OnlineClusterHead(BaseModule):
    """k learnable prompt "classes" + Sinkhorn clustering of teacher mask features + decoder loss.

    Each cluster j is the text ``"A photo of a [V1]..[VL] in the scene"`` whose L context tokens are
    learnable embeddings (``prompt_tokens``, (k, L, D)) inserted at the tokenised placeholder positions
    of the frozen text encoder. Training (``loss``):

    1. cluster embeddings e = text(prompts) (k, E), with gradient to ``prompt_tokens``;
    2. targets: masks pooled on teacher features, EPS*cos to e, Sinkhorn (3 it.) -> argmax ->
       per-cluster union of the assigned masks (B, k, 256, 256) (:func:`build_cluster_targets`);
    3. cost volume cos(student, e) (B*k, 1, h, w), b-major -> decoder -> bilinear 256 ->
       sigmoid BCE averaged over (pixels covered by >= 1 kept mask) x k.

    Mixed precision: the prompted text tower and the decoder convolutions follow autocast; the
    cosine cost volume, the cluster targets (pooling, Sinkhorn) and the BCE run in float32.

    Args:
        num_clusters (int): k (64).
        prompt_length (int): learnable tokens per cluster (4).
        template (str): prompt template, its ``{}`` is replaced by ``prompt_length`` placeholders.
        eps (float): Sinkhorn logit scale, 100 (ViT) or 1 (ConvNeXt).
        sinkhorn_iters (int): 3.
        mask_resolution (tuple): (256, 256).
        init_seed (int): seed of the prompt-word draw (official: ``torch.manual_seed(0)``).
        truncate_after_eot (bool): feed only the tokens up to EOT (13 instead of 77) to the text
            transformer. Exact under the causal mask (the EOT feature never sees later positions) and
            ~6x cheaper; False runs the full 77-token context like the official code.
        decoder (dict): config of the mask decoder (``PixelCLIPMaskDecoder``).
        loss_weight (float): weight of ``loss_masks``.
    """

    def __init__(self,
                 num_clusters: int = 64,
                 prompt_length: int = 4,
                 template: str = 'A photo of a {} in the scene',
                 eps: float = 100.0,
                 sinkhorn_iters: int = 3,
                 mask_resolution: Sequence[int] = (256, 256),
                 init_seed: int = 0,
                 truncate_after_eot: bool = True,
                 decoder: Optional[dict] = None,
                 loss_weight: float = 1.0,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.num_clusters = num_clusters
        self.prompt_length = prompt_length
        if template.count(PLACEHOLDER) != 1:
            raise ValueError(f'template must contain exactly one "{{}}": {template!r}')
        # official: 'A photo of a {}in the scene'.format('{} ' * L) -> 'A photo of a {} {} {} {} in the scene'
        self.template = template.replace(PLACEHOLDER, ' '.join([PLACEHOLDER] * prompt_length))
        self.eps = float(eps)
        self.sinkhorn_iters = sinkhorn_iters
        self.mask_resolution = tuple(mask_resolution)
        self.init_seed = init_seed
        self.truncate_after_eot = truncate_after_eot
        self.loss_weight = loss_weight
        self.decoder = MODELS.build(decoder or dict(type='PixelCLIPMaskDecoder'))
        self.prompt_tokens = None  # created by init_prompts() once the text encoder is known
        self.register_buffer('template_tokens', torch.zeros(1, 0, dtype=torch.long), persistent=False)
        self.register_buffer('placeholder_mask', torch.zeros(1, 0, dtype=torch.bool), persistent=False)

    # ------------------------------------------------------------------ prompts
    def init_prompts(self, text_encoder: nn.Module) -> None:
        """Tokenise the template and draw the initial prompt words.

        As the official code: ``randint(vocab - 10, (k, L))`` from a generator seeded with
        ``init_seed`` (same stream as ``torch.manual_seed(0)``, without touching the global RNG),
        then the token-embedding rows of those ids.
        """
        tokens = text_encoder.tokenize([self.template]).cpu()
        placeholder_id = int(text_encoder.tokenize([PLACEHOLDER]).cpu()[0, 1])
        mask = tokens == placeholder_id
        if int(mask.sum()) != self.prompt_length:
            raise ValueError(f'template {self.template!r} tokenises to {int(mask.sum())} placeholder '
                             f'tokens, expected {self.prompt_length}')
        weight = text_encoder.token_embedding.weight
        if self.truncate_after_eot:
            eot = int(tokens.argmax(dim=-1)[0])
            tokens, mask = tokens[:, :eot + 1], mask[:, :eot + 1]
        self.template_tokens = tokens.to(weight.device)
        self.placeholder_mask = mask.to(weight.device)
        gen = torch.Generator().manual_seed(self.init_seed)
        self.prompt_word_ids = torch.randint(text_encoder.vocab_size - 10,
                                             (self.num_clusters, self.prompt_length), generator=gen)
        init = weight.detach()[self.prompt_word_ids.to(weight.device)].float()
        if self.prompt_tokens is None:
            self.prompt_tokens = nn.Parameter(init.clone())
        else:  # re-initialise in place (after pretrained weights were loaded; keeps optimizer refs)
            with torch.no_grad():
                self.prompt_tokens.copy_(init)

    def prompted_token_embeddings(self, token_embedding: nn.Module) -> torch.Tensor:
        """(k, T, D) template embeddings with the placeholder slots replaced by the prompts."""
        base = token_embedding(self.template_tokens).to(self.prompt_tokens.dtype)  # (1, T, D)
        base = base.expand(self.num_clusters, -1, -1)
        mask = self.placeholder_mask.expand(self.num_clusters, -1)
        return base.masked_scatter(mask.unsqueeze(-1), self.prompt_tokens)

    def cluster_embeddings(self, text_encoder: nn.Module) -> torch.Tensor:
        """Raw (not normalised) prompted text embeddings (k, E), differentiable w.r.t. prompts."""
        if self.prompt_tokens is None:
            raise RuntimeError('OnlineClusterHead.init_prompts(text_encoder) was not called')
        embeds = self.prompted_token_embeddings(text_encoder.token_embedding)
        tokens = self.template_tokens.expand(self.num_clusters, -1)
        return text_encoder.encode_embeddings(embeds, tokens)

    # ------------------------------------------------------------------ loss
    def mask_logits(self, student_feat: torch.Tensor, cluster_emb: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Cost volume and decoder predictions.

        Args:
            student_feat: (B, h, w, C) dense student features (unnormalised).
            cluster_emb: (k, C) raw cluster embeddings.
        Returns:
            dict with ``cost_volume`` (B*k, h, w) b-major, ``head_out`` (B*k, 1, 4h, 4w),
            ``mask_preds`` (B, k, *mask_resolution).
        """
        B = student_feat.shape[0]
        with float32_region(student_feat.device.type):  # cosines in fp32 (autocast: decoder only)
            feat = F.normalize(student_feat.float(), dim=-1)
            emb = F.normalize(cluster_emb.float(), dim=-1)
            cost = torch.einsum('nc,bhwc->bnhw', emb, feat)
        cost = cost.reshape(-1, *cost.shape[2:])
        head_out = self.decoder(cost.unsqueeze(1))
        preds = F.interpolate(head_out, size=self.mask_resolution, mode='bilinear', align_corners=False)
        preds = preds.reshape(B, self.num_clusters, *self.mask_resolution)
        return dict(student_feat_normalized=feat, cost_volume=cost, head_out=head_out, mask_preds=preds)

    @staticmethod
    def masked_bce(mask_preds: torch.Tensor, targets: torch.Tensor):
        """Sigmoid BCE averaged over valid pixels x k; valid = covered by >= 1 target.

        Returns (loss, valid). With no valid pixel the loss is ``0 * preds.sum()`` (finite, keeps the
        graph for DDP) instead of the official NaN/crash. Computed in float32 (autocast disabled).
        """
        valid = targets.sum(dim=1) > 0  # (B, H, W)
        n_valid = valid.sum()
        if int(n_valid) == 0:
            return mask_preds.float().sum() * 0.0, valid
        with float32_region(mask_preds.device.type):
            bce = F.binary_cross_entropy_with_logits(mask_preds.float(), targets.float(), reduction='none')
            loss = (bce * valid.unsqueeze(1)).sum() / (n_valid * mask_preds.shape[1])
        return loss, valid

    def loss(self, student_feat: torch.Tensor, teacher_feat: torch.Tensor, masks: List[torch.Tensor],
             text_encoder: nn.Module, return_details: bool = False):
        """PixelCLIP loss.

        Args:
            student_feat: (B, h, w, C) student dense features (strong view).
            teacher_feat: (B, C, h, w) teacher dense features (weak view, no grad).
            masks: B bool stacks (n_i, H, W) (n_i may be 0).
            text_encoder: frozen text encoder with ``tokenize``/``token_embedding``/``encode_embeddings``.
        Returns:
            dict(loss_masks=...) (and a details dict with ``return_details``).
        """
        cluster_emb = self.cluster_embeddings(text_encoder)
        targets, det = build_cluster_targets(teacher_feat, masks, cluster_emb, self.eps,
                                             self.mask_resolution, self.sinkhorn_iters,
                                             return_details=True)
        out = self.mask_logits(student_feat, cluster_emb)
        loss, valid = self.masked_bce(out['mask_preds'], targets)
        losses = dict(loss_masks=loss * self.loss_weight)
        if not return_details:
            return losses
        det.update(out, targets=targets, valid=valid, cluster_embeddings=cluster_emb)
        return losses, det
