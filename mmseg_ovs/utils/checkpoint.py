"""The one loader for pickled files read from disk: ``torch.load(weights_only=True)`` with a
closed allow-list, plus the encoding that lets new checkpoints need no allow-listed globals at all.

A checkpoint is untrusted input (model zoos, shared drives). torch's weights-only unpickler calls
only allow-listed callables, so the allow-list *is* the security boundary: one general-purpose
callable on it (``builtins.getattr`` was on it until issue 13) reaches everything else
(``getattr(getattr, '__self__')`` is the ``builtins`` module, whose ``eval`` can be planted as an
instance's ``__setstate__`` and run by the next BUILD opcode).

Allowed globals (beyond torch's own defaults: tensors, storages, ``OrderedDict``, ``set``, ...):

* ``mmengine.logging.history_buffer.HistoryBuffer``;
* ``numpy.ndarray``, ``numpy.dtype`` and the concrete dtype classes ``numpy.dtypes.*DType`` (the type
  of a dtype instance, needed to BUILD it) except ``ObjectDType``, ``VoidDType`` and ``StringDType``
  (so no object array can even be built), and ``_reconstruct`` / ``scalar`` of
  ``numpy._core.multiarray`` (numpy 2) and ``numpy.core.multiarray`` (numpy 1 wrote that path);
* ``builtins.getattr`` -> :func:`checkpoint_getattr`, a stand-in that returns only mmengine's four
  built-in ``HistoryBuffer`` statistics functions (``min``, ``max``, ``current``, ``mean``) and raises
  for anything else. Old Runner checkpoints need it: ``HistoryBuffer.__getstate__`` saves its
  ``statistics_methods`` and pickle protocol 2 writes ``HistoryBuffer.min`` as
  ``getattr(HistoryBuffer, 'min')``. (numpy 2 scalars do *not* use getattr: a ``np.float64`` is
  ``scalar(dtype('f8') + BUILD, _codecs.encode(bytes))``.)

Why this design. (1) New checkpoints need no extra global at all: ``WeightsOnlyCheckpointHook``
(added to every run by ``tools/``) passes what the Runner writes besides the weights through
:func:`encode_for_checkpoint` right before saving: ``HistoryBuffer`` (the message hub's log buffers),
numpy arrays and numpy scalars (``eta`` in the runtime info, ...) become tagged plain dicts of
bytes / ints / strings, which :func:`safe_torch_load` turns back into the same objects after the
weights-only load (validated: shapes, non-object dtypes). (2) Old checkpoints still load through the
allow-list above, in which nothing can fetch an attribute, call a method by name or reach a module.
(3) After every load the result is checked: no callable values, no dunder or unknown attributes on
``HistoryBuffer``/``OrderedDict``/tensor instances (what a ``__setstate__`` injection leaves), no
object-dtype numpy data, and ``HistoryBuffer``'s class-level statistics table unchanged (its
``__setstate__`` writes into it). (4) The allow-list used is exactly this one, whatever other code
registered with ``torch.serialization.add_safe_globals`` in the process (swapped in for the load).
A file that fails any of this raises :class:`CheckpointLoadError` naming the file.

Not guaranteed: memory/CPU exhaustion by a crafted file, and bugs in torch's or numpy's own
unpickling (``ndarray.__setstate__``, ``dtype.__setstate__``, the zip reader).

Paths that read pickles from disk, all through :func:`safe_torch_load`:

* MMEngine's local checkpoint loader (``CheckpointLoader`` scheme ``''``), replaced at
  ``import mmseg_ovs`` by :func:`load_from_local_weights_only`: ``tools/test.py CKPT``,
  ``tools/train.py --resume [CKPT]``, ``load_from``, ``init_cfg=dict(type='Pretrained')``,
  ``OVSInferencer``/``MMSegInferencer`` weights, ``tools/benchmark_all.py``, ``tools/demo.py``;
* ``tools/convert_segclip_checkpoint.py``, ``tools/convert_pixelclip_checkpoint.py`` (the
  ``mmseg_ovs/utils/convert_*.py`` functions take state dicts and read no files);
* CLIP weights (``mmseg_ovs/models/clip/builder.py``): state-dict files through this loader,
  ``.safetensors`` through safetensors (no pickle). OpenAI's TorchScript archives go through
  ``torch.jit.load`` (what open_clip does): its C++ unpickler resolves TorchScript types only and
  runs no Python pickle code; only ``state_dict()`` is read, the archive's methods are never called;
* ``tools/export_clip_weights.py``.

URLs (``http(s)://``, ``open-mmlab://``) keep MMEngine's own loaders, i.e. torch's default
``weights_only=True`` with the process-wide allow-list (to which ``import mmseg_ovs`` adds the same
entries, no real ``getattr``); nothing in this project downloads checkpoints. The swap of the
allow-list during a load is process-wide: another thread's ``torch.load`` at that moment sees this
list instead of its own.

tests/test_checkpoint_security.py checks the hostile cases on these paths and that no code in the
package, ``tools/`` or ``data_prep/`` calls ``pickle.load(s)``, ``torch.load`` without a literal
``weights_only=True`` or ``np.load(allow_pickle=True)``.
"""
import contextlib
import os.path as osp
import pickle
import re
import threading
from collections import OrderedDict
from typing import Any, Callable

import numpy as np
import torch

__all__ = ['CheckpointLoadError', 'checkpoint_getattr', 'checkpoint_safe_globals', 'allowed_global_names',
           'register_checkpoint_safe_globals', 'safe_torch_load', 'load_from_local_weights_only',
           'encode_for_checkpoint', 'decode_checkpoint']

#: mmengine's built-in HistoryBuffer statistics, the only attributes :func:`checkpoint_getattr` returns.
HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')
#: Instance attributes of a HistoryBuffer after ``__init__``/``__setstate__``.
_HISTORY_BUFFER_ATTRS = frozenset({'max_length', '_log_history', '_count_history'})
#: Key marking an encoded numpy / HistoryBuffer object in new checkpoints.
ENCODED_KEY = '_mmseg_ovs_encoded'
_DUNDER = re.compile(r'^__.*__$')
_DTYPE_STR = re.compile(r'^[<>|=][biufcSUVmM?][0-9]*(\[[0-9]*[a-zA-Z]+\])?$')


class CheckpointLoadError(pickle.UnpicklingError):
    """A file refused by :func:`safe_torch_load` (the message names the file and the reason)."""


def checkpoint_getattr(obj: Any, name: Any, *default: Any) -> Callable:
    """Stand-in registered as ``builtins.getattr``: only ``getattr(HistoryBuffer, 'min'|'max'|
    'current'|'mean')``, what ``HistoryBuffer``'s pickled ``statistics_methods`` need."""
    from mmengine.logging.history_buffer import HistoryBuffer

    if not default and obj is HistoryBuffer and type(name) is str and name in HISTORY_BUFFER_STATISTICS:
        return HistoryBuffer.__dict__[name]  # the plain function, as HistoryBuffer.min is
    what = obj.__name__ if obj is HistoryBuffer else f'an object of type {type(obj).__name__}'
    raise pickle.UnpicklingError(
        f'getattr({what}, {repr(name)[:80]}) is not allowed in a checkpoint: the allow-listed builtins.getattr '
        f'only returns HistoryBuffer.{{{",".join(HISTORY_BUFFER_STATISTICS)}}}')


def checkpoint_safe_globals() -> list:
    """The allow-list, as accepted by ``torch.serialization.add_safe_globals``."""
    from mmengine.logging.history_buffer import HistoryBuffer
    from numpy._core import multiarray as _ma  # numpy >= 2 (numpy.core is a shim there)

    allowed = [HistoryBuffer, np.ndarray, np.dtype, (checkpoint_getattr, 'builtins.getattr')]
    for module_path in ('numpy._core.multiarray', 'numpy.core.multiarray'):
        allowed.append((_ma._reconstruct, f'{module_path}._reconstruct'))
        allowed.append((_ma.scalar, f'{module_path}.scalar'))
    # The type of a dtype instance (BUILD needs it allow-listed); inert classes. Not the object,
    # void (structured) and variable-width string dtypes: no legitimate checkpoint holds those.
    dtype_classes = {getattr(np.dtypes, name) for name in dir(np.dtypes) if name.endswith('DType')}
    dtype_classes -= {np.dtypes.ObjectDType, np.dtypes.VoidDType, getattr(np.dtypes, 'StringDType', None)}
    allowed.extend(sorted(dtype_classes, key=lambda c: c.__name__))
    return allowed


def allowed_global_names() -> list:
    """The ``module.name`` of every allowed global (sorted), as a checkpoint spells them."""
    names = []
    for entry in checkpoint_safe_globals():
        names.append(entry[1] if isinstance(entry, tuple) else f'{entry.__module__}.{entry.__qualname__}')
    return sorted(names)


_REGISTERED = False
_LOAD_LOCK = threading.RLock()


def register_checkpoint_safe_globals() -> None:
    """Route MMEngine's local checkpoint loading through :func:`safe_torch_load` and add the
    allow-list to torch's process-wide one (for any other ``torch.load(weights_only=True)``).
    Called by ``import mmseg_ovs``; idempotent."""
    global _REGISTERED
    if _REGISTERED:
        return
    from mmengine.runner.checkpoint import CheckpointLoader

    torch.serialization.add_safe_globals(checkpoint_safe_globals())
    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local_weights_only, force=True)
    _REGISTERED = True


def load_from_local_weights_only(filename: str, map_location: Any = None) -> Any:
    """MMEngine ``CheckpointLoader`` scheme for local paths (replaces ``load_from_local``)."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return safe_torch_load(filename, map_location=map_location)


@contextlib.contextmanager
def _exactly_this_allow_list():
    """torch's user allow-list = ours for the duration of a load (restored afterwards)."""
    with _LOAD_LOCK:
        saved = torch.serialization.get_safe_globals()
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(checkpoint_safe_globals())
        try:
            yield
        finally:
            torch.serialization.clear_safe_globals()
            torch.serialization.add_safe_globals(saved)


@contextlib.contextmanager
def _history_buffer_statistics_guard():
    """``HistoryBuffer.__setstate__`` writes the loaded ``statistics_methods`` into a class-level dict:
    refuse (and undo) any change to it."""
    from mmengine.logging.history_buffer import HistoryBuffer

    HistoryBuffer()  # registers the defaults, as loading a legitimate buffer would
    table = HistoryBuffer._statistics_methods
    before = dict(table)
    try:
        yield
    finally:
        changed = sorted(k for k in set(table) | set(before) if table.get(k) is not before.get(k))
        if changed:
            table.clear()
            table.update(before)
    if changed:
        raise pickle.UnpicklingError(f'it replaces HistoryBuffer statistics methods {changed}')


def safe_torch_load(path: str, map_location: Any = 'cpu') -> Any:
    """Load a torch checkpoint with ``weights_only=True`` and exactly the allow-list above, decode
    new-format numpy/HistoryBuffer entries, and validate the result.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointLoadError: the file is refused or unreadable (the message names it).
    """
    path = str(path)
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint not found: {path!r}')
    try:
        with _exactly_this_allow_list(), _history_buffer_statistics_guard():
            obj = torch.load(path, map_location=map_location, weights_only=True)
        _validate(obj)
        return decode_checkpoint(obj)
    except Exception as err:  # noqa: BLE001 - every failure is re-raised naming the file
        reason = _short_reason(str(err))
        raise CheckpointLoadError(
            f'refused to load checkpoint {path!r}: {type(err).__name__}: {reason}. mmseg_ovs reads checkpoints '
            'with torch.load(weights_only=True) and the allow-list of mmseg_ovs/utils/checkpoint.py only; '
            'a file that needs more is refused (do not bypass this for files from untrusted sources).') from None


def _short_reason(message: str) -> str:
    """torch's reason without its advice to retry with ``weights_only=False`` or to allow-list more."""
    if message.startswith('Weights only load failed'):
        body = message.split('Check the documentation of torch.load')[0]
        message = (body.split('WeightsUnpickler error:', 1)[1] if 'WeightsUnpickler error:' in body
                   else body.split('trusted source.', 1)[-1])
    return message.split(' Please use `torch.serialization.')[0].strip().rstrip('.')


# ----------------------------------------------------------------------------------------- validation
def _validate(root: Any) -> None:
    """Refuse what a legitimate checkpoint never holds (see the module docstring, point 3)."""
    from mmengine.logging.history_buffer import HistoryBuffer

    seen = set()
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if callable(obj):
            raise pickle.UnpicklingError(f'it holds a callable ({type(obj).__name__} {getattr(obj, "__name__", "")})')
        attrs = getattr(obj, '__dict__', None) if not isinstance(obj, type) else None
        if attrs:
            bad = [k for k in attrs if type(k) is not str or _DUNDER.match(k)]
            if isinstance(obj, HistoryBuffer):
                bad += [k for k in attrs if type(k) is str and k not in _HISTORY_BUFFER_ATTRS and k not in bad]
            if bad:
                raise pickle.UnpicklingError(f'a {type(obj).__name__} carries attribute(s) {sorted(map(repr, bad))}')
            stack.extend(attrs.values())
        if isinstance(obj, HistoryBuffer):
            for key in ('_log_history', '_count_history'):
                value = attrs.get(key) if attrs else None
                if not isinstance(value, np.ndarray):
                    raise pickle.UnpicklingError(f'a HistoryBuffer {key} is {type(value).__name__}, not an array')
        elif isinstance(obj, (np.ndarray, np.generic, np.dtype)):
            dtype = obj if isinstance(obj, np.dtype) else obj.dtype
            if dtype.hasobject:
                raise pickle.UnpicklingError('it holds numpy object data')
        elif isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend(obj)


# ----------------------------------------------------------------------------- encoding for saving
def _encode_array(array: np.ndarray) -> dict:
    if array.dtype.hasobject:
        raise TypeError(f'cannot write a numpy object array ({array.dtype}) into a checkpoint')
    return {ENCODED_KEY: 'ndarray', 'dtype': array.dtype.str, 'shape': list(array.shape),
            'data': array.tobytes(order='C')}


def encode_for_checkpoint(obj: Any) -> Any:
    """``obj`` with every ``HistoryBuffer``, numpy array and numpy scalar replaced by a tagged dict of
    plain values (torch tensors and containers are kept; containers are copied only where something
    changed, so live objects referenced by the checkpoint are never modified)."""
    from mmengine.logging.history_buffer import HistoryBuffer

    if isinstance(obj, HistoryBuffer):
        return {ENCODED_KEY: 'HistoryBuffer', 'max_length': int(obj.max_length),
                'log_history': _encode_array(np.asarray(obj._log_history)),
                'count_history': _encode_array(np.asarray(obj._count_history))}
    if isinstance(obj, np.ndarray):
        return _encode_array(obj)
    if isinstance(obj, np.generic):
        encoded = _encode_array(np.asarray(obj))
        encoded[ENCODED_KEY] = 'numpy_scalar'
        return encoded
    return _map_containers(obj, encode_for_checkpoint)


def _map_containers(obj: Any, fn: Callable) -> Any:
    if type(obj) in (dict, OrderedDict):
        items = [(k, fn(v)) for k, v in obj.items()]
        if all(new is old for (_, new), old in zip(items, obj.values())):
            return obj
        out = type(obj)(items)
        if type(obj) is OrderedDict:
            out.__dict__.update(obj.__dict__)  # state dicts carry _metadata
        return out
    if type(obj) in (list, tuple):
        items = [fn(v) for v in obj]
        if all(new is old for new, old in zip(items, obj)):
            return obj
        return type(obj)(items)
    return obj


def _decode_array(enc: Any, ndim=None) -> np.ndarray:
    if not (isinstance(enc, dict) and enc.get(ENCODED_KEY) in ('ndarray', 'numpy_scalar')
            and set(enc) == {ENCODED_KEY, 'dtype', 'shape', 'data'}):
        raise pickle.UnpicklingError('malformed encoded numpy array')
    dtype_str, shape, data = enc['dtype'], enc['shape'], enc['data']
    if type(dtype_str) is not str or not _DTYPE_STR.match(dtype_str):
        raise pickle.UnpicklingError(f'encoded numpy dtype {dtype_str!r} is not a plain dtype')
    if type(shape) is not list or not all(type(n) is int and n >= 0 for n in shape) or type(data) is not bytes:
        raise pickle.UnpicklingError('malformed encoded numpy shape/data')
    dtype = np.dtype(dtype_str)
    if dtype.hasobject or dtype.itemsize * int(np.prod(shape, dtype=np.int64)) != len(data):
        raise pickle.UnpicklingError(f'encoded numpy data does not match dtype {dtype_str} and shape {shape}')
    if ndim is not None and len(shape) != ndim:
        raise pickle.UnpicklingError(f'encoded array has {len(shape)} dimensions, expected {ndim}')
    return np.frombuffer(data, dtype=dtype).reshape(shape).copy()


def decode_checkpoint(obj: Any) -> Any:
    """Inverse of :func:`encode_for_checkpoint` (validating every tagged dict)."""
    from mmengine.logging.history_buffer import HistoryBuffer

    if isinstance(obj, dict) and ENCODED_KEY in obj:
        kind = obj[ENCODED_KEY]
        if kind == 'ndarray':
            return _decode_array(obj)
        if kind == 'numpy_scalar':
            value = _decode_array(obj)
            if value.ndim != 0:
                raise pickle.UnpicklingError('encoded numpy scalar is not 0-d')
            return value[()]
        if kind == 'HistoryBuffer' and set(obj) == {ENCODED_KEY, 'max_length', 'log_history', 'count_history'}:
            max_length = obj['max_length']
            log_history, count_history = _decode_array(obj['log_history'], 1), _decode_array(obj['count_history'], 1)
            if type(max_length) is not int or max_length <= 0 or len(log_history) != len(count_history):
                raise pickle.UnpicklingError('malformed encoded HistoryBuffer')
            return HistoryBuffer(log_history, count_history, max_length)
        raise pickle.UnpicklingError(f'unknown encoded entry {kind!r}')
    return _map_containers(obj, decode_checkpoint)
