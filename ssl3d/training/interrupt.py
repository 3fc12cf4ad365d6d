"""Ctrl-C (SIGINT) or SIGTERM during training: finish the step, save the resumable state, stop.

A KeyboardInterrupt raised wherever the signal lands could leave the weights half updated
(inside an optimiser step), so the first signal only sets a flag that the training loop reads
between steps. A second signal gives the usual effect at once, for a user who will not wait.
"""

from __future__ import annotations

import signal
import sys
import threading


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on a signal, its state saved (the message says where). ``quiet``: a
    process of a multi-process run other than the first, which leaves the telling to that one."""

    def __init__(self, message: str, quiet: bool = False):
        super().__init__(message)
        self.quiet = quiet


class StopRequest:
    """While active (a ``with`` block in the main thread), the first SIGINT or SIGTERM sets
    ``requested`` and prints ``message``; a second restores the handlers it replaced and then
    acts as they would (KeyboardInterrupt for SIGINT). A signal the process ignores stays
    ignored. Elsewhere than the main thread Python cannot install handlers, and it does
    nothing."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, message: str | None):
        self.message = message  # None: this process says nothing (another one of the run does)
        self.requested = False
        self.previous: dict[int, object] = {}

    def install(self) -> "StopRequest":
        self.requested = False
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                previous = signal.getsignal(sig)
                if previous == signal.SIG_IGN:  # e.g. a job started with & in a script: keep so
                    continue
                self.previous[sig] = previous
                signal.signal(sig, self._handle)
        return self

    def restore(self) -> None:
        """Put back the handlers ``install`` replaced."""
        for sig, handler in self.previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        self.previous = {}

    def __enter__(self) -> "StopRequest":
        return self.install()

    def __exit__(self, *exc) -> bool:
        self.restore()
        return False

    def _handle(self, signum: int, frame) -> None:
        if self.requested:  # the second signal: out now, the way it would have gone
            self.restore()
            signal.raise_signal(signum)
            return
        self.requested = True
        if self.message:
            print(self.message, file=sys.stderr, flush=True)
