"""A SIGTERM that lands where Python drops the handler's exception."""

from __future__ import annotations

import os
import signal


class SignalsItselfWhenCollected:
    """Python runs a signal handler where it is: inside `__del__` the handler's exception is
    printed as "Exception ignored" and lost, as it was inside a weakref callback in training.
    `SignalsItselfWhenCollected()` alone is collected at once."""

    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):  # the handler runs between these bytecodes
            pass
