"""Run a project script in its own session, SIGKILL it when a condition holds, and look for
processes of that session left behind (orphaned workers)."""
import os
import signal
import subprocess
import time

from tests.utils import ROOT


def tool_env(extra=None) -> dict:
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    env.update(extra or {})
    return env


def session_pids(sid: int) -> list:
    """Live (non-zombie) processes whose session id is ``sid``."""
    pids = []
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open(f'/proc/{name}/stat') as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(')') + 2:].split()  # after "pid (comm) "
        if fields[0] != 'Z' and int(fields[3]) == sid:
            pids.append(int(name))
    return pids


def wait_session_empty(sid: int, timeout: float) -> float:
    """Seconds until no process of session ``sid`` is alive; raises AssertionError after ``timeout``
    (the survivors are SIGKILLed then, so a failing test leaves nothing behind)."""
    start = time.time()
    while time.time() - start < timeout:
        if not session_pids(sid):
            return time.time() - start
        time.sleep(0.05)
    left = session_pids(sid)
    described = {p: open(f'/proc/{p}/cmdline').read().replace('\0', ' ')[:150] for p in left
                 if os.path.exists(f'/proc/{p}/cmdline')}
    for p in left:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    raise AssertionError(f'processes still alive {timeout:.0f}s later: {described}')


def start(args, log_path, env=None) -> subprocess.Popen:
    log = open(log_path, 'w')
    return subprocess.Popen(args, cwd=ROOT, env=tool_env(env), stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def kill_when(proc: subprocess.Popen, condition, timeout: float = 300, poll: float = 0.02,
              log_path: str = None) -> None:
    """SIGKILL ``proc`` (its main process only, as the OOM killer or a scheduler would) as soon as
    ``condition()`` is true; fail if the process ends first."""
    start_t = time.time()
    while not condition():
        if proc.poll() is not None:
            tail = open(log_path).read()[-3000:] if log_path else ''
            raise AssertionError(f'process ended ({proc.returncode}) before the kill condition:\n{tail}')
        if time.time() - start_t > timeout:
            proc.kill()
            raise AssertionError('kill condition not reached in time')
        time.sleep(poll)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
