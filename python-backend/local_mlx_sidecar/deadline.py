"""A deadline the MLX worker thread can enforce on Python code it runs: chat templates.

A model folder's chat template is code from the model repository (Jinja, run in
transformers' sandbox). The sandbox stops it from touching files, but not from looping:
two nested ``range(100000)`` loops keep the one worker thread busy for hours, and every
later request queues behind it. A thread cannot be killed, and a disconnect cannot stop
it; so ``run_with_deadline`` arms a timer that, if the call is still running when the
time is up, raises ``DeadlineExceeded`` *in the worker thread* through CPython's
``PyThreadState_SetAsyncExc``. Jinja compiles templates to Python bytecode, and CPython
delivers such an exception between two bytecodes, so every loop iteration is a point
where the template stops. The one thing it cannot cut short is a single long call into
C (a huge integer power, say); the sandbox's ``range`` cap keeps loops, the practical
way to spin, in Python.

Why hand-written: ``signal.alarm`` works only on the main thread; ``func_timeout`` and
``wrapt-timeout-decorator`` run the call on another thread or process, which MLX's
one-thread rule (and the loaded tokenizer) forbid here; ``stopit`` does what this module
does but has had no release since 2018, too stale to depend on for thirty lines.
``DeadlineExceeded`` derives from ``BaseException`` so that no ``except Exception`` in
the template engine swallows it.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class DeadlineExceeded(BaseException):
    """The call ran past its deadline and was stopped."""


def run_with_deadline(seconds: float, fn: Callable[..., T], *args: object, **kw: object) -> T:
    """``fn(*args, **kw)`` on this thread; ``DeadlineExceeded`` if it runs over ``seconds``."""
    target = threading.get_ident()
    lock = threading.Lock()
    state = {"running": True, "fired": False}

    def expire() -> None:
        with lock:
            if state["running"]:
                state["fired"] = True
                _raise_in(target, DeadlineExceeded)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    try:
        return fn(*args, **kw)
    finally:
        timer.cancel()
        with lock:
            state["running"] = False
            fired = state["fired"]
        if fired:
            # Fired as the call returned: the exception may still be pending; it must
            # not go off later, in whatever this thread runs next.
            _raise_in(target, None)


def _raise_in(thread_id: int, exc: type[BaseException] | None) -> None:
    """Raise ``exc`` in the thread at its next bytecode (``None``: cancel a pending one)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exc) if exc is not None else None
    )
