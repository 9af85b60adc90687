"""Helpers shared by the source tests."""
import threading


def collect(src, n: int, timeout: float = 15.0) -> list:
    """The first n lines of src, closing it from a watchdog if they do not come; src is closed after."""
    out = []
    watchdog = threading.Timer(timeout, src.close)
    watchdog.start()
    try:
        for line in src.lines():
            out.append(line)
            if len(out) == n:
                break
    finally:
        watchdog.cancel()
        src.close()
    return out
