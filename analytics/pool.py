"""CPU-bound pure work (UMAP, t-SNE) in worker processes: arrays in, arrays out, progress back,
and a cancel that takes effect at once (the worker is killed; a fresh one starts next time).

Workers are plain subprocesses (``python -c ...``), not ``multiprocessing`` children, so no
``__main__`` guard is asked of the caller's script and nothing is forked from a process that
holds threads, a GPU or a DuckDB file. A worker never touches the store: the job that owns the
store reads the inputs and writes the result. Large arrays travel as temporary ``.npy`` files
that the worker maps read-only; everything else is pickled over the worker's pipes.
"""

from __future__ import annotations

import importlib
import os
import pickle
import queue
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np

from .errors import ExplorerError

#: arrays bigger than this go to the worker as a memory-mapped file instead of through the pipe
_FILE_BYTES = 16 * 2**20


class Cancelled(Exception):
    """Raised by :meth:`ProcessPool.run` when its ``cancelled`` callable said so."""


class WorkerError(RuntimeError):
    """The function failed in the worker; the message carries the worker's traceback."""


class _ArrayFile:
    def __init__(self, path: str):
        self.path = path


def _send(out, message) -> None:
    data = pickle.dumps(message, protocol=5)
    out.write(len(data).to_bytes(8, "little") + data)
    out.flush()


def _recv(stream):
    header = stream.read(8)
    if len(header) < 8:
        return None
    return pickle.loads(stream.read(int.from_bytes(header, "little")))


def _serve() -> None:
    """A worker's loop: read (function, args, kwargs, wants_progress), run it, answer."""
    frames = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything the libraries print goes to stderr, never into the frames
    sys.stdout = sys.stderr
    inp = sys.stdin.buffer
    try:
        _loop(inp, frames)
    except (BrokenPipeError, ConnectionResetError):  # the parent has gone: nobody to answer
        os._exit(0)


def _loop(inp, frames) -> None:
    import traceback

    while (task := _recv(inp)) is not None:
        target, args, kwargs, wants_progress = task
        kwargs = {
            k: np.load(v.path, mmap_mode="r") if isinstance(v, _ArrayFile) else v for k, v in kwargs.items()
        }
        if wants_progress:
            kwargs["progress"] = lambda stage, fraction: _send(frames, ("progress", stage, float(fraction)))
        try:
            module, _, name = target.partition(":")
            result = getattr(importlib.import_module(module), name)(*args, **kwargs)
        except ExplorerError as exc:  # the user's to fix: passed on as the same class
            _send(frames, ("user-error", exc))
        except Exception:  # noqa: BLE001 - a bug in the worker, reported to the parent whole
            _send(frames, ("error", traceback.format_exc()))
        else:
            _send(frames, ("done", result))


class _Worker:
    def __init__(self):
        root = str(Path(__file__).resolve().parent.parent)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from analytics.pool import _serve; _serve()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


class ProcessPool:
    """At most ``size`` worker processes; :meth:`run` waits for a free one."""

    def __init__(self, size: int = 1):
        self.size = max(1, int(size))
        self._idle: list[_Worker] = []
        self._slots = threading.BoundedSemaphore(self.size)
        self._lock = threading.Lock()
        self._closed = False

    def run(self, target: str, *args, progress=None, cancelled=None, poll: float = 0.2, **kwargs):
        """``module:function(*args, **kwargs)`` in a worker. ``progress(stage, fraction)`` is
        called with the function's own progress reports (it is given a ``progress`` keyword);
        when ``cancelled()`` turns true the worker is killed and :class:`Cancelled` raised."""
        cancelled = cancelled or (lambda: False)
        while not self._slots.acquire(timeout=poll):
            if cancelled():
                raise Cancelled()
        files: list[str] = []
        worker = None
        try:
            with self._lock:
                if self._closed:
                    raise WorkerError("The process pool is shut down.")
                while self._idle and worker is None:
                    candidate = self._idle.pop()
                    worker = candidate if candidate.alive() else None
            worker = worker or _Worker()
            for k, v in list(kwargs.items()):
                if isinstance(v, np.ndarray) and v.nbytes > _FILE_BYTES:
                    fd, path = tempfile.mkstemp(prefix="embex-job-", suffix=".npy")
                    os.close(fd)
                    files.append(path)
                    np.save(path, v)
                    kwargs[k] = _ArrayFile(path)
            _send(worker.proc.stdin, (target, args, kwargs, progress is not None))
            answers: queue.Queue = queue.Queue()
            reader = threading.Thread(target=self._read, args=(worker, answers), daemon=True)
            reader.start()
            while True:
                try:
                    message = answers.get(timeout=poll)
                except queue.Empty:
                    if cancelled():
                        worker.kill()
                        worker = None
                        raise Cancelled() from None
                    continue
                if message is None:
                    worker = None
                    raise WorkerError("The worker process ended unexpectedly (killed, or out of memory).")
                kind = message[0]
                if kind == "progress":
                    progress(message[1], message[2])
                    continue
                if kind == "done":
                    return message[1]
                if kind == "user-error":
                    raise message[1]
                raise WorkerError("The function failed in a worker process:\n" + message[1])
        finally:
            if worker is not None and worker.alive():
                with self._lock:
                    self._idle.append(worker)
            for path in files:
                Path(path).unlink(missing_ok=True)
            self._slots.release()

    @staticmethod
    def _read(worker: _Worker, answers: queue.Queue) -> None:
        """Forward one call's messages: progress reports, then the answer (None: the pipe closed)."""
        while True:
            try:
                message = _recv(worker.proc.stdout)
            except (OSError, EOFError, pickle.UnpicklingError):
                message = None
            answers.put(message)
            if message is None or message[0] != "progress":
                return

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for worker in idle:
            try:
                worker.proc.stdin.close()
                worker.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                worker.kill()
