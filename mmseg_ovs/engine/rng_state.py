"""Capture and restore every random number generator of one process (python, numpy, torch CPU/CUDA).

The captured state holds only tensors, ints, floats, strings, lists and dicts, so a checkpoint that
carries it still loads with ``torch.load(weights_only=True)`` and no extra allow-listed globals.
"""
import random

import numpy as np
import torch

__all__ = ['get_rng_state', 'set_rng_state']


def get_rng_state() -> dict:
    """The process's RNG states: ``python``, ``numpy``, ``torch`` and, when CUDA was initialised,
    ``cuda`` (one ByteTensor per visible device)."""
    version, internal, gauss_next = random.getstate()
    np_state = np.random.get_state(legacy=False)
    state = dict(
        python=dict(version=version, internal=torch.tensor(internal, dtype=torch.int64), gauss_next=gauss_next),
        numpy=dict(bit_generator=np_state['bit_generator'],
                   key=torch.from_numpy(np_state['state']['key'].astype(np.int64)),
                   pos=int(np_state['state']['pos']), has_gauss=int(np_state['has_gauss']),
                   gauss=float(np_state['gauss'])),
        torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`get_rng_state` captured. CUDA states are restored only when the number of
    visible devices matches (otherwise the generators keep their seeded state)."""
    py = state['python']
    random.setstate((py['version'], tuple(int(v) for v in py['internal'].tolist()), py['gauss_next']))
    npy = state['numpy']
    np.random.set_state(dict(bit_generator=npy['bit_generator'],
                             state=dict(key=npy['key'].numpy().astype(np.uint32), pos=npy['pos']),
                             has_gauss=npy['has_gauss'], gauss=npy['gauss']))
    torch.set_rng_state(state['torch'])
    cuda = state.get('cuda')
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
