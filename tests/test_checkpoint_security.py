"""Hostile checkpoints (issue 13), written by hand-assembled pickle opcodes at test time (never
committed as files), refused by the one loader (``mmseg_ovs.utils.checkpoint.safe_torch_load``) and
by every tool that reads checkpoints; legitimate checkpoints (old and new Runner format) still load.

Each payload would touch a marker file when run; a control test checks that it really does under
the stdlib unpickler, so a refusal below is the loader's doing and not a broken payload.
"""
import ast
import glob
import io
import os
import os.path as osp
import pickle
import shutil
import struct
import subprocess
import sys
import time
import zipfile
from collections import OrderedDict

import numpy as np
import pytest
import torch

from tests.utils import ROOT, run_tool

CONFIG = osp.join(ROOT, 'configs/examples/clip_vit_fcn_toy.py')


# ------------------------------------------------------------------------------ pickle assembly
def G(module: str, name: str) -> bytes:
    """GLOBAL opcode."""
    return b'c' + module.encode() + b'\n' + name.encode() + b'\n'


def S(text: str) -> bytes:
    """BINUNICODE opcode."""
    data = text.encode()
    return b'X' + struct.pack('<I', len(data)) + data


EMPTY_DICT, EMPTY_TUPLE, EMPTY_LIST = b'}', b')', b']'
TUPLE1, TUPLE2, TUPLE3, REDUCE, BUILD, NEWOBJ, SETITEM, APPEND = b'\x85', b'\x86', b'\x87', b'R', b'b', b'\x81', b's', b'a'
FALSE, TRUE = b'\x89', b'\x88'
HB = ('mmengine.logging.history_buffer', 'HistoryBuffer')


def call(func: bytes, *args: bytes) -> bytes:
    """``func(*args)`` (1 to 3 arguments) with REDUCE."""
    return func + b''.join(args) + {1: TUPLE1, 2: TUPLE2, 3: TUPLE3}[len(args)] + REDUCE


def getattr_(obj: bytes, name: str) -> bytes:
    return call(G('builtins', 'getattr'), obj, S(name))


def root(value: bytes) -> bytes:
    """A checkpoint ``{'state_dict': value}`` (protocol 2, as torch.save writes)."""
    return b'\x80\x02' + EMPTY_DICT + S('state_dict') + value + SETITEM + b'.'


def touch_code(marker: str) -> str:
    return f"__import__('pathlib').Path({marker!r}).touch()"


def eval_via_getattr_chain() -> bytes:
    """``getattr(getattr(getattr, '__self__'), 'eval')``: builtins.eval from the allow-listed getattr."""
    builtins_module = getattr_(G('builtins', 'getattr'), '__self__')
    return call(G('builtins', 'getattr'), builtins_module, S('eval'))


def plant_setstate(instance: bytes, planted: bytes, state: bytes) -> bytes:
    """BUILD ``{'__setstate__': planted}`` into ``instance``, then BUILD ``state``: a second BUILD
    calls ``instance.__setstate__(state)``."""
    return instance + EMPTY_DICT + S('__setstate__') + planted + SETITEM + BUILD + state + BUILD


# Instances of the allow-listed classes (mmseg_ovs's list plus torch's OrderedDict).
INSTANCES = {
    'HistoryBuffer': G(*HB) + EMPTY_TUPLE + NEWOBJ,
    'ndarray': call(G('numpy._core.multiarray', '_reconstruct'), G('numpy', 'ndarray'), b'K\x00' + TUPLE1,
                    call(G('_codecs', 'encode'), S('b'), S('latin1'))),
    'dtype': call(G('numpy', 'dtype'), S('f8'), FALSE, TRUE),
    'OrderedDict': G('collections', 'OrderedDict') + EMPTY_TUPLE + REDUCE,
}
# Allow-listed objects to probe with getattr (globals as a checkpoint names them, and instances).
PROBED_OBJECTS = {
    'getattr': G('builtins', 'getattr'),
    'HistoryBuffer': G(*HB),
    'ndarray_class': G('numpy', 'ndarray'),
    'dtype_class': G('numpy', 'dtype'),
    'Float64DType': G('numpy.dtypes', 'Float64DType'),
    '_reconstruct': G('numpy._core.multiarray', '_reconstruct'),
    'scalar_numpy1_path': G('numpy.core.multiarray', 'scalar'),
    '_codecs.encode': G('_codecs', 'encode'),
    'rebuild_tensor': G('torch._utils', '_rebuild_tensor_v2'),
    **{f'{name}_instance': value for name, value in INSTANCES.items()},
}
PROBED_ATTRS = ('__globals__', '__dict__', '__self__', '__class__', '__subclasses__', '__builtins__')


def build_payloads(marker: str) -> dict:
    """name -> data.pkl bytes."""
    code = touch_code(marker)
    p = {}
    # The chain: getattr -> builtins -> eval planted as __setstate__, run by a second BUILD.
    p['chain_getattr_builtins_eval'] = root(plant_setstate(INSTANCES['HistoryBuffer'], eval_via_getattr_chain(), S(code)))
    # Variant handing back the interpreter's live builtins.__dict__.
    p['chain_builtins_dict'] = root(getattr_(getattr_(G('builtins', 'getattr'), '__self__'), '__dict__'))
    # Dangerous callables as direct globals.
    p['global_os_system'] = root(call(G('os', 'system'), S(f'touch {marker}')))
    p['global_posix_system'] = root(call(G('posix', 'system'), S(f'touch {marker}')))
    p['global_builtins_eval'] = root(call(G('builtins', 'eval'), S(code)))
    p['global_builtins_exec'] = root(call(G('builtins', 'exec'), S(code)))
    p['global_builtins_import'] = root(call(G('builtins', '__import__'), S('os')))
    argv = EMPTY_LIST + S('touch') + APPEND + S(marker) + APPEND
    p['global_subprocess_check_call'] = root(call(G('subprocess', 'check_call'), argv))
    p['global_subprocess_popen'] = root(call(G('subprocess', 'Popen'), argv))
    # __setstate__ injection on each allow-listed class: the planted callable comes from the
    # getattr chain, from a direct global, or is an allow-listed callable (only the validation of
    # the loaded objects stops that one; it is harmless but no legitimate checkpoint does it).
    for cls, instance in INSTANCES.items():
        p[f'setstate_{cls}_chain'] = root(plant_setstate(instance, eval_via_getattr_chain(), S(code)))
        p[f'setstate_{cls}_global_eval'] = root(plant_setstate(instance, G('builtins', 'eval'), S(code)))
        p[f'setstate_{cls}_allowed_callable'] = root(plant_setstate(instance, G('numpy', 'dtype'), S('f8')))
    # getattr on each allow-listed object for the attributes that lead elsewhere.
    for obj_name, obj in PROBED_OBJECTS.items():
        for attr in PROBED_ATTRS:
            p[f'getattr_{obj_name}_{attr}'] = root(getattr_(obj, attr))
    # getattr for non-dunder attributes and the 3-argument form.
    p['getattr_HistoryBuffer_register_statistics'] = root(getattr_(G(*HB), 'register_statistics'))
    p['getattr_ndarray_tofile'] = root(getattr_(G('numpy', 'ndarray'), 'tofile'))
    p['getattr_HistoryBuffer_min_with_default'] = root(
        call(G('builtins', 'getattr'), G(*HB), S('min'), EMPTY_TUPLE))
    # HistoryBuffer.__setstate__ writes statistics_methods into a class-level table.
    p['history_buffer_statistics_replaced'] = root(
        INSTANCES['HistoryBuffer'] + EMPTY_DICT + S('statistics_methods') + EMPTY_DICT + S('mean')
        + G('numpy', 'dtype') + SETITEM + SETITEM + BUILD)
    # A callable handed back as a value (what a later caller could be tricked into calling).
    p['callable_value_allowed_getattr'] = root(getattr_(G(*HB), 'mean'))
    # An object array (it can hold anything): refused after loading (no legitimate checkpoint has one).
    p['object_array'] = root(
        INSTANCES['ndarray'] + b'(' + b'K\x01' + b'K\x01' + TUPLE1 + call(G('numpy', 'dtype'), S('O'), FALSE, TRUE)
        + FALSE + EMPTY_LIST + S('x') + APPEND + b't' + BUILD)
    return p


PAYLOAD_NAMES = sorted(build_payloads('/nonexistent'))
DANGEROUS = [n for n in PAYLOAD_NAMES if n.startswith(('chain_getattr', 'global_')) and n != 'global_builtins_import']


def torch_zip(data_pkl: bytes) -> bytes:
    """A torch.save zip archive whose data.pkl is replaced by ``data_pkl``."""
    buf = io.BytesIO()
    torch.save({'w': torch.zeros(2)}, buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, 'w', zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, data_pkl if info.filename.endswith('/data.pkl') else src.read(info.filename))
    return out.getvalue()


def pickled_globals(path: str) -> set:
    """Every GLOBAL a torch zip checkpoint names (read with pickletools; nothing is unpickled)."""
    import pickletools
    with zipfile.ZipFile(path) as zf:
        data = zf.read(next(n for n in zf.namelist() if n.endswith('data.pkl')))
    return {arg.replace(' ', '.') for op, arg, _ in pickletools.genops(data) if op.name == 'GLOBAL'}


TORCH_DEFAULT_GLOBALS = ('collections.OrderedDict', 'torch.', '_codecs.encode')


def extra_globals(path: str) -> set:
    """The globals beyond torch's defaults (independent of what this process allow-listed)."""
    return {g for g in pickled_globals(path) if not g.startswith(TORCH_DEFAULT_GLOBALS)}


def write_hostile(path: str, name: str, marker: str, container: str = 'zip') -> str:
    data = build_payloads(marker)[name]
    with open(path, 'wb') as f:
        f.write(torch_zip(data) if container == 'zip' else data)
    return path


@pytest.fixture
def marker(tmp_path):
    path = str(tmp_path / 'PAYLOAD_RAN')
    yield path
    assert not osp.exists(path), 'a hostile checkpoint payload ran'


# ----------------------------------------------------------------------------------- the loader
def test_payloads_are_live_under_plain_pickle(tmp_path):
    """Control: the dangerous payloads do run their code under an unrestricted unpickler."""
    for name in DANGEROUS:
        marker = str(tmp_path / f'{name}.ran')
        try:
            pickle.loads(build_payloads(marker)[name])
        except Exception:  # noqa: BLE001 - Popen returns an object, import returns a module: no matter
            pass
        for _ in range(250):  # Popen runs asynchronously
            if osp.exists(marker):
                break
            time.sleep(0.02)
        assert osp.exists(marker), name


@pytest.mark.parametrize('name', PAYLOAD_NAMES)
def test_loader_refuses(tmp_path, marker, name):
    from mmengine.logging.history_buffer import HistoryBuffer
    from mmengine.runner.checkpoint import _load_checkpoint

    from mmseg_ovs.utils.checkpoint import CheckpointLoadError, safe_torch_load

    HistoryBuffer()
    statistics_before = dict(HistoryBuffer._statistics_methods)
    path = write_hostile(str(tmp_path / f'{name}.pth'), name, marker)
    with pytest.raises(CheckpointLoadError, match='refused to load checkpoint') as err:
        safe_torch_load(path)
    assert path in str(err.value)
    with pytest.raises(CheckpointLoadError):  # mmengine's loader (load_from, --resume, inferencers)
        _load_checkpoint(path, map_location='cpu')
    assert HistoryBuffer._statistics_methods == statistics_before


@pytest.mark.parametrize('name', ['chain_getattr_builtins_eval', 'global_os_system'])
def test_loader_refuses_legacy_container(tmp_path, marker, name):
    """The same pickles as a bare (non-zip) file: torch's legacy path, same restricted unpickler."""
    from mmseg_ovs.utils.checkpoint import CheckpointLoadError, safe_torch_load

    path = write_hostile(str(tmp_path / 'evil.pth'), name, marker, container='raw')
    with pytest.raises(CheckpointLoadError, match='evil.pth'):
        safe_torch_load(path)


def test_allow_list_has_no_general_purpose_callable():
    import builtins

    from mmengine.logging.history_buffer import HistoryBuffer
    from numpy._core import multiarray

    import mmseg_ovs  # noqa: F401
    from mmseg_ovs.utils.checkpoint import checkpoint_getattr, checkpoint_safe_globals

    allowed = checkpoint_safe_globals()
    objects = [e[0] if isinstance(e, tuple) else e for e in allowed]
    callables = {o for o in objects if not isinstance(o, type)}
    assert callables == {checkpoint_getattr, multiarray._reconstruct, multiarray.scalar}
    for cls in (o for o in objects if isinstance(o, type)):
        assert cls in (HistoryBuffer, np.ndarray, np.dtype) or issubclass(cls, np.dtype), cls
    assert np.dtypes.ObjectDType not in objects
    registered = [e[0] if isinstance(e, tuple) else e for e in torch.serialization.get_safe_globals()]
    for dangerous in (builtins.getattr, builtins.eval, builtins.exec, builtins.setattr, builtins.__import__):
        assert dangerous not in registered
    # the stand-in: the four statistics functions, nothing else
    assert checkpoint_getattr(HistoryBuffer, 'mean') is HistoryBuffer.__dict__['mean']
    for obj, attr in ((HistoryBuffer, '__init__'), (HistoryBuffer, 'update'), (np, 'load'), (builtins, 'eval'),
                      (checkpoint_getattr, '__globals__')):
        with pytest.raises(pickle.UnpicklingError, match='not allowed'):
            checkpoint_getattr(obj, attr)


def test_loader_ignores_globals_others_allow_listed(tmp_path, marker):
    """A global some other library allow-listed process-wide does not widen safe_torch_load's list."""
    import builtins

    from mmseg_ovs.utils.checkpoint import CheckpointLoadError, safe_torch_load

    path = write_hostile(str(tmp_path / 'evil.pth'), 'global_builtins_eval', marker)
    with torch.serialization.safe_globals([builtins.eval]):
        with pytest.raises(CheckpointLoadError, match='eval'):
            safe_torch_load(path)
        assert builtins.eval in torch.serialization.get_safe_globals()  # restored after the load


# --------------------------------------------------------------------------- legitimate checkpoints
def test_encode_decode_round_trip_needs_no_globals(tmp_path):
    from mmengine.logging.history_buffer import HistoryBuffer

    from mmseg_ovs.utils.checkpoint import encode_for_checkpoint, safe_torch_load

    buffer = HistoryBuffer([1.5, 2.5], [1, 2], max_length=10)
    state_dict = OrderedDict(w=torch.ones(2))
    state_dict._metadata = OrderedDict({'': {'version': 1}})
    live_meta = dict(palette=[[1, 2, 3]], seed=np.int64(7))
    ckpt = dict(state_dict=state_dict, meta=live_meta,
                message_hub=dict(log_scalars=OrderedDict(loss=buffer), runtime_info=OrderedDict(eta=np.float64(3.25)),
                                 resumed_keys=OrderedDict(loss=True)),
                extra=(np.arange(6, dtype=np.uint8).reshape(2, 3), np.array([True, False]), np.float32(0.5),
                       np.array(['ab', 'c']), np.datetime64('2024-01-02')))
    encoded = encode_for_checkpoint(ckpt)
    assert isinstance(live_meta['seed'], np.int64)  # live objects are not modified
    path = str(tmp_path / 'new.pth')
    torch.save(encoded, path)
    assert extra_globals(path) == set()
    loaded = safe_torch_load(path)
    assert loaded['state_dict']._metadata == state_dict._metadata
    assert type(loaded['meta']['seed']) is np.int64 and loaded['meta']['seed'] == 7
    eta = loaded['message_hub']['runtime_info']['eta']
    assert type(eta) is np.float64 and eta == 3.25
    restored = loaded['message_hub']['log_scalars']['loss']
    assert isinstance(restored, HistoryBuffer) and restored.max_length == 10
    np.testing.assert_array_equal(restored.data[0], [1.5, 2.5])
    np.testing.assert_array_equal(restored.data[1], [1, 2])
    for before, after in zip(ckpt['extra'], loaded['extra']):
        assert type(after) is type(before) and np.asarray(after).dtype == np.asarray(before).dtype
        np.testing.assert_array_equal(after, before)
    legacy = str(tmp_path / 'legacy.pth')  # torch's pre-1.6 (non-zip) format
    torch.save(encoded, legacy, _use_new_zipfile_serialization=False)
    assert type(safe_torch_load(legacy)['message_hub']['runtime_info']['eta']) is np.float64


def test_encoded_entries_are_validated(tmp_path):
    from mmseg_ovs.utils.checkpoint import ENCODED_KEY, CheckpointLoadError, safe_torch_load

    bad = [
        {ENCODED_KEY: 'ndarray', 'dtype': '|O', 'shape': [1], 'data': b'\0' * 8},
        {ENCODED_KEY: 'ndarray', 'dtype': "[('a', 'O')]", 'shape': [1], 'data': b'\0' * 8},
        {ENCODED_KEY: 'ndarray', 'dtype': '<f8', 'shape': [3], 'data': b'\0' * 8},
        {ENCODED_KEY: 'HistoryBuffer', 'max_length': 5, 'log_history': [], 'count_history': []},
        {ENCODED_KEY: 'something_else'},
    ]
    for i, entry in enumerate(bad):
        path = str(tmp_path / f'bad{i}.pth')
        torch.save({'meta': entry}, path)
        with pytest.raises(CheckpointLoadError, match=f'bad{i}.pth'):
            safe_torch_load(path)


@pytest.fixture(scope='module')
def runner_checkpoints(tmp_path_factory, toy_data_root):
    """A Runner checkpoint from tools/train.py (new format) and the same content written the way
    the runner wrote it before issue 13 (HistoryBuffer objects and numpy scalars pickled as they are)."""
    from mmseg_ovs.utils.checkpoint import safe_torch_load

    work = str(tmp_path_factory.mktemp('sec') / 'work')
    run_tool([sys.executable, 'tools/train.py', CONFIG, '--work-dir', work, *_options(toy_data_root, 2)])
    new = osp.join(work, 'iter_2.pth')
    old = osp.join(work, 'old_format.pth')
    torch.save(safe_torch_load(new), old)  # the pre-issue-13 writer: torch.save of the raw objects
    return dict(work=work, new=new, old=old)


def _options(data_root, iters):
    return ['--cfg-options', f'train_dataloader.dataset.data_root={data_root}',
            f'val_dataloader.dataset.data_root={data_root}', f'test_dataloader.dataset.data_root={data_root}',
            f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}', 'default_hooks.checkpoint.interval=2',
            'train_dataloader.batch_size=2']


def test_old_and_new_runner_checkpoints_load(runner_checkpoints, toy_data_root, tmp_path):
    from mmengine.logging.history_buffer import HistoryBuffer

    from mmseg_ovs.utils.checkpoint import safe_torch_load

    assert extra_globals(runner_checkpoints['new']) == set()
    assert extra_globals(runner_checkpoints['old']) == {  # really the old format
        '__builtin__.getattr', 'mmengine.logging.history_buffer.HistoryBuffer', 'numpy._core.multiarray.scalar',
        'numpy._core.multiarray._reconstruct', 'numpy.ndarray', 'numpy.dtype'}
    for kind in ('new', 'old'):
        ckpt = safe_torch_load(runner_checkpoints[kind])
        assert ckpt['meta']['iter'] == 2 and 'state_dict' in ckpt
        assert all(isinstance(b, HistoryBuffer) for b in ckpt['message_hub']['log_scalars'].values())
        assert type(ckpt['message_hub']['runtime_info']['eta']) is np.float64
    # --resume from an old-format checkpoint: the message hub and loop state are restored
    work = str(tmp_path / 'resume_old')
    os.makedirs(work)
    target = osp.join(work, 'iter_2.pth')
    shutil.copy(runner_checkpoints['old'], target)
    with open(osp.join(work, 'last_checkpoint'), 'w') as f:
        f.write(target)
    proc = run_tool([sys.executable, 'tools/train.py', CONFIG, '--work-dir', work, '--resume',
                     *_options(toy_data_root, 3)])
    out = proc.stdout + proc.stderr
    assert 'resumed epoch: 0, iter: 2' in out and 'not HistoryBuffer' not in out
    assert extra_globals(osp.join(work, 'iter_3.pth')) == set()


# ------------------------------------------------------------------------------ through the tools
def _run_refused(args, path, marker):
    full_env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    proc = subprocess.run(args, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    assert 'refused to load checkpoint' in out and path in out, out[-3000:]
    assert not osp.exists(marker)
    return out


def test_tools_test_refuses(tmp_path, marker, toy_data_root):
    """The issue's report: tools/test.py evaluated the hostile file and the payload ran."""
    path = write_hostile(str(tmp_path / 'evil.pth'), 'chain_getattr_builtins_eval', marker)
    _run_refused([sys.executable, 'tools/test.py', CONFIG, path, '--work-dir', str(tmp_path / 'w'),
                  *_options(toy_data_root, 2)], path, marker)


def test_resume_and_load_from_refuse(tmp_path, marker, toy_data_root):
    """--resume picks the hostile newest checkpoint of the work dir; load_from names it."""
    work = str(tmp_path / 'work')
    os.makedirs(work)
    path = write_hostile(osp.join(work, 'iter_2.pth'), 'chain_getattr_builtins_eval', marker)
    with open(osp.join(work, 'last_checkpoint'), 'w') as f:
        f.write(path)
    _run_refused([sys.executable, 'tools/train.py', CONFIG, '--work-dir', work, '--resume',
                  *_options(toy_data_root, 4)], path, marker)
    assert not glob.glob(osp.join(work, 'iter_4.pth'))
    _run_refused([sys.executable, 'tools/train.py', CONFIG, '--work-dir', str(tmp_path / 'w2'),
                  *_options(toy_data_root, 4), f'load_from={path}'], path, marker)


@pytest.mark.parametrize('tool,name', [
    ('tools/convert_segclip_checkpoint.py', 'chain_getattr_builtins_eval'),
    ('tools/convert_segclip_checkpoint.py', 'global_os_system'),
    ('tools/convert_segclip_checkpoint.py', 'setstate_HistoryBuffer_allowed_callable'),
    ('tools/convert_pixelclip_checkpoint.py', 'chain_getattr_builtins_eval'),
    ('tools/convert_pixelclip_checkpoint.py', 'getattr_HistoryBuffer___globals__'),
    ('tools/export_clip_weights.py', 'chain_getattr_builtins_eval'),
])
def test_converters_refuse(tmp_path, marker, tool, name):
    """The scripts' main() run in this process (as ``python TOOL SRC DST`` would; a subprocess per
    case would only add the import time)."""
    import runpy

    from mmseg_ovs.utils.checkpoint import CheckpointLoadError

    path = write_hostile(str(tmp_path / 'evil.bin'), name, marker)
    out_path = str(tmp_path / 'out.pth')
    argv = sys.argv
    sys.argv = [tool, path, out_path]
    try:
        with pytest.raises((SystemExit, CheckpointLoadError)) as err:
            runpy.run_path(osp.join(ROOT, tool), run_name='__main__')
    finally:
        sys.argv = argv
    message = str(err.value.code if isinstance(err.value, SystemExit) else err.value)
    assert 'refused to load checkpoint' in message and path in message
    assert not osp.exists(out_path)


def test_clip_weights_and_inferencer_refuse(tmp_path, marker):
    from mmseg_ovs.models.clip.builder import load_clip_weights

    path = write_hostile(str(tmp_path / 'ViT-B-16.pt'), 'chain_getattr_builtins_eval', marker)
    with pytest.raises(RuntimeError, match='refused to load checkpoint') as err:
        load_clip_weights(path)
    assert path in str(err.value)
    from mmseg_ovs.apis import OVSInferencer
    from mmseg_ovs.utils.checkpoint import CheckpointLoadError
    with pytest.raises(CheckpointLoadError, match='ViT-B-16.pt'):
        OVSInferencer(CONFIG, path, device='cpu')


# ------------------------------------------------------------------------- no other pickle readers
FORBIDDEN_CALLS = {
    'pickle.load', 'pickle.loads', 'pickle.Unpickler', '_pickle.load', '_pickle.loads', '_pickle.Unpickler',
    'dill.load', 'dill.loads', 'joblib.load', 'pandas.read_pickle', 'shelve.open', 'marshal.load',
    'marshal.loads', 'yaml.unsafe_load', 'yaml.full_load', 'mmengine.load', 'mmengine.fileio.load', 'mmcv.load',
    'torch.serialization.add_safe_globals', 'torch.serialization.safe_globals',
}
LOADER_MODULE = 'mmseg_ovs/utils/checkpoint.py'
JIT_LOADER_MODULE = 'mmseg_ovs/models/clip/builder.py'
ROUTED_TOOLS = ('tools/test.py', 'tools/train.py', 'tools/_runner_utils.py', 'tools/convert_segclip_checkpoint.py',
                'tools/convert_pixelclip_checkpoint.py', 'tools/export_clip_weights.py',
                'mmseg_ovs/apis/ovs_inferencer.py', 'mmseg_ovs/models/clip/builder.py',
                'mmseg_ovs/utils/convert_segclip.py', 'mmseg_ovs/utils/convert_pixelclip.py')


def _dotted(node, aliases):
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(aliases.get(node.id, node.id))
    return '.'.join(reversed(parts))


def pickle_load_violations(source: str, relpath: str) -> list:
    """Calls in ``source`` that read pickles outside the one safe loader."""
    tree = ast.parse(source)
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                aliases[a.asname or a.name.split('.')[0]] = a.name if a.asname else a.name.split('.')[0]
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                aliases[a.asname or a.name] = f'{node.module}.{a.name}'
    bad = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func, aliases)
        kw = {k.arg: k.value for k in node.keywords}
        where = f'{relpath}:{node.lineno}'
        for k in node.keywords:
            if k.arg == 'weights_only' and not (isinstance(k.value, ast.Constant) and k.value.value is True):
                bad.append(f'{where}: weights_only is not literally True')
        if name is None:
            continue
        if name in FORBIDDEN_CALLS and relpath != LOADER_MODULE:
            bad.append(f'{where}: {name}()')
        elif name == 'torch.load' and relpath != LOADER_MODULE:
            if relpath in ROUTED_TOOLS:
                bad.append(f'{where}: torch.load in a path that must use safe_torch_load')
            elif not (isinstance(kw.get('weights_only'), ast.Constant) and kw['weights_only'].value is True):
                bad.append(f'{where}: torch.load without weights_only=True')
        elif name == 'torch.jit.load' and relpath != JIT_LOADER_MODULE:
            bad.append(f'{where}: torch.jit.load')
        elif name == 'numpy.load' and 'allow_pickle' in kw and not (
                isinstance(kw['allow_pickle'], ast.Constant) and kw['allow_pickle'].value is False):
            bad.append(f'{where}: numpy.load(allow_pickle=...)')
        elif name == 'yaml.load' and 'SafeLoader' not in ast.unparse(node):
            bad.append(f'{where}: yaml.load without SafeLoader')
    return bad


def test_checker_catches_pickle_readers():
    src = ('import pickle as pk\nimport torch\nimport numpy as np\nfrom pickle import loads\n'
           'pk.load(f)\nloads(b)\ntorch.load(p)\ntorch.load(p, weights_only=False)\nnp.load(p, allow_pickle=True)\n'
           'torch.load(p, weights_only=True)\nnp.load(p)\n')
    found = pickle_load_violations(src, 'x.py')
    assert len(found) == 6, found  # the last two lines are fine
    assert pickle_load_violations('import torch\ntorch.load(p, weights_only=True)\n', 'tools/test.py')


def test_no_pickle_reader_outside_the_safe_loader():
    bad = []
    for folder in ('mmseg_ovs', 'tools', 'data_prep'):
        for path in sorted(glob.glob(osp.join(ROOT, folder, '**', '*.py'), recursive=True)):
            rel = osp.relpath(path, ROOT).replace(os.sep, '/')
            with open(path, encoding='utf-8') as f:
                bad += pickle_load_violations(f.read(), rel)
    assert not bad, '\n'.join(bad)
