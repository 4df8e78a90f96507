"""Freezing parameters by name."""
import re
from typing import List, Sequence

from torch import nn

__all__ = ['freeze_by_patterns']


def freeze_by_patterns(module: nn.Module, patterns: Sequence[str]) -> List[str]:
    """Set ``requires_grad=False`` on parameters whose name matches any regex (``re.search``).

    Returns the names of the frozen parameters."""
    regexes = [re.compile(p) for p in patterns]
    frozen = []
    for name, param in module.named_parameters():
        if any(r.search(name) for r in regexes):
            param.requires_grad_(False)
            frozen.append(name)
    return frozen
