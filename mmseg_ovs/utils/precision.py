"""Full-precision islands inside ``torch.autocast`` regions.

Mixed-precision training and inference run the image/text towers, the group module and the mask
decoder under ``torch.autocast`` (bfloat16 or float16). The few computations whose result depends
on precision -- Sinkhorn, softmax/log-softmax and argmax over near ties, the contrastive logits
(scale 100), BCE/KL, cosine logits against the class embeddings, the class-embedding cache -- run
inside :func:`float32_region` on float32 copies of their inputs. Outside autocast it is a no-op.
"""
import contextlib
from typing import Iterator

import torch


@contextlib.contextmanager
def float32_region(device_type: str = 'cuda') -> Iterator[None]:
    """Disable autocast for ``device_type`` (and for CPU, where it is on).

    Operations inside keep the dtype of their inputs: cast them with ``.float()``.
    """
    with contextlib.ExitStack() as stack:
        for dev in sorted({device_type, 'cpu'}):
            if autocast_active(dev):
                stack.enter_context(torch.autocast(device_type=dev, enabled=False))
        yield


def autocast_active(device_type: str) -> bool:
    """Whether autocast is on for ``device_type`` (``'cuda'``/``'cpu'``...)."""
    try:
        return torch.is_autocast_enabled(device_type)
    except (RuntimeError, TypeError):  # device types autocast does not know
        return False
