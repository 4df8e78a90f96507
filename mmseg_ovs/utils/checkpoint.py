"""Loading MMEngine checkpoints with ``torch.load(weights_only=True)``.

torch >= 2.6 defaults to ``weights_only=True``; mmengine 0.10.7 calls ``torch.load`` without the
argument, so its own Runner checkpoints (``load_from``, ``--resume``, ``tools/test.py CKPT``) fail
with ``Unsupported global``. A checkpoint is untrusted input, so instead of switching the check off
we allow-list exactly the globals MMEngine checkpoints are made of:

* ``mmengine.logging.HistoryBuffer`` (the message hub's log buffers);
* numpy array / scalar reconstruction (``_reconstruct``, ``scalar``, ``ndarray``, ``dtype``), under
  both the numpy 2 (``numpy._core``) and numpy 1 (``numpy.core``) module paths, since the path
  recorded depends on the numpy that wrote the file;
* ``builtins.getattr``, which numpy 2 pickles use to fetch the concrete dtype classes
  (``numpy.dtypes.Float64DType``, ...) that the numpy scalars are rebuilt with; those inert classes
  are allow-listed too. torch's restricted unpickler only calls allow-listed callables, so an
  attribute fetched with ``getattr`` cannot be used to invoke anything else.

The globals are exactly ``torch.serialization.get_unsafe_globals_in_checkpoint`` of a Runner
checkpoint plus the dtype classes (tests/test_tools_train_test.py checks both).

Everything else is still rejected by torch's restricted unpickler.
"""
import builtins
from typing import Any

import numpy as np
import torch

__all__ = ['register_checkpoint_safe_globals', 'checkpoint_safe_globals', 'safe_torch_load']


def checkpoint_safe_globals() -> list:
    """The allow-list, as accepted by ``torch.serialization.add_safe_globals``."""
    from mmengine.logging.history_buffer import HistoryBuffer

    allowed = [HistoryBuffer, np.ndarray, np.dtype, builtins.getattr]
    # numpy array / scalar reconstruction under the module path of either numpy major version.
    from numpy._core import multiarray as _ma  # numpy >= 2 (numpy.core is a shim there)
    for module_path in ('numpy._core.multiarray', 'numpy.core.multiarray'):
        allowed.append((_ma._reconstruct, f'{module_path}._reconstruct'))
        allowed.append((_ma.scalar, f'{module_path}.scalar'))
    # Concrete dtype classes, fetched with getattr(numpy.dtypes, ...) by numpy 2 scalar pickles.
    allowed.extend(getattr(np.dtypes, name) for name in dir(np.dtypes) if name.endswith('DType'))
    return allowed


_REGISTERED = False


def register_checkpoint_safe_globals() -> None:
    """Allow-list the MMEngine checkpoint globals for ``weights_only=True`` loading (idempotent)."""
    global _REGISTERED
    if _REGISTERED:
        return
    torch.serialization.add_safe_globals(checkpoint_safe_globals())
    _REGISTERED = True


def safe_torch_load(path: str, map_location: Any = 'cpu') -> Any:
    """``torch.load`` with ``weights_only=True`` and the MMEngine allow-list registered."""
    register_checkpoint_safe_globals()
    return torch.load(path, map_location=map_location, weights_only=True)
