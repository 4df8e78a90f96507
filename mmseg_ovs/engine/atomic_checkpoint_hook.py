"""AtomicCheckpointHook: MMEngine's ``CheckpointHook`` with checkpoints that survive a kill at any moment.

MMEngine 0.10 deletes the oldest checkpoint (``max_keep_ckpts``) *before* writing the new one, writes
``iter_N.pth`` in place, and then rewrites ``last_checkpoint`` in place. A run killed while saving
with ``max_keep_ckpts=1`` therefore keeps no complete checkpoint at all. Here, on local storage:

1. the checkpoint is written to ``iter_N.pth.tmp``, flushed to disk, and renamed to ``iter_N.pth``
   (``os.replace`` is atomic: the name either holds the old content or the complete new file);
2. ``last_checkpoint`` is replaced the same way;
3. only then is the outdated checkpoint removed.

So at every instant the work dir holds at least one complete checkpoint once the first save is done,
and ``--resume`` (``mmseg_ovs.engine.resume_checkpoint``) finds it. Temporary files left by a killed
save are removed when training starts again. Remote backends (``backend_args``) keep MMEngine's
behaviour. ``tools/`` use this hook in place of ``CheckpointHook`` (same arguments).
"""
import glob
import os
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log
from mmseg.registry import HOOKS

__all__ = ['AtomicCheckpointHook', 'atomic_write_text']

TMP_SUFFIX = '.tmp'


def _fsync_path(path: str) -> None:
    with open(path, 'rb') as f:
        os.fsync(f.fileno())


def atomic_write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename (never a half-written file)."""
    tmp = path + TMP_SUFFIX
    with open(tmp, 'w') as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` (same arguments) that writes each checkpoint atomically and removes an
    outdated one only after its successor is complete; see the module docstring."""

    def _is_local(self) -> bool:
        return isinstance(self.file_backend, LocalBackend)

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if self._is_local() and is_main_process():
            for stale in glob.glob(osp.join(glob.escape(self.out_dir), '*.pth' + TMP_SUFFIX)):
                os.remove(stale)
                print_log(f'removed {stale} (a checkpoint whose write was interrupted)', logger='current')

    def _save_checkpoint_with_step(self, runner, step, meta):
        if not self._is_local():
            return super()._save_checkpoint_with_step(runner, step, meta)
        outdated = None
        # the same bookkeeping as MMEngine (the saved message hub lists the new step), minus the early delete
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                outdated = self.keep_ckpt_ids.popleft()
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))

        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(  # master_only: writes on rank 0 only
            self.out_dir,
            ckpt_filename + TMP_SUFFIX,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)
        if not is_main_process():
            return
        tmp_path = self.last_ckpt + TMP_SUFFIX
        _fsync_path(tmp_path)
        os.replace(tmp_path, self.last_ckpt)
        atomic_write_text(osp.join(runner.work_dir, 'last_checkpoint'), self.last_ckpt)
        if outdated is not None and outdated != step:
            old = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(outdated))
            if self.file_backend.isfile(old):
                self.file_backend.remove(old)
            elif self.file_backend.isdir(old):  # checkpoints saved by deepspeed are directories
                self.file_backend.rmtree(old)
