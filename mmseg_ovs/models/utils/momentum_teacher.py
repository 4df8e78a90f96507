"""Momentum (EMA) teacher update, batched with ``torch._foreach`` ops."""
from typing import Sequence

import torch


@torch.no_grad()
def momentum_update_(teacher: Sequence[torch.Tensor], student: Sequence[torch.Tensor],
                     gamma: float = 0.999) -> None:
    """teacher <- gamma * teacher + (1 - gamma) * student, in place.

    Bit-identical to PixelCLIP's ``param_t.data.mul_(gamma).add_(1 - gamma, param_s.data)``:
    multiply in place first, then add ``student`` with ``alpha = 1 - gamma`` (``lerp_`` or the
    out-of-place formula differ by up to 1 ulp). mmengine's ``ExponentialMovingAverage`` uses
    ``lerp_`` and is therefore not used here.
    """
    teacher, student = list(teacher), list(student)
    if len(teacher) != len(student):
        raise ValueError(f'teacher has {len(teacher)} tensors, student {len(student)}')
    if not teacher:
        return
    torch._foreach_mul_(teacher, gamma)
    torch._foreach_add_(teacher, student, alpha=1 - gamma)
