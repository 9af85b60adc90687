"""``pid_alive``: whether a process id names a live process on this host (someone else's counts)."""
from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # it exists, it is only not ours
        return True
    return True
