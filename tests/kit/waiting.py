"""The one bounded polling loop."""

import time


def wait_until(pred, timeout, interval=0.05, describe=None, what="condition",
               error=AssertionError, tolerate=Exception):
    """Poll pred() until it returns a true value; returns it.

    Exceptions of the classes in tolerate are kept polling through (the last
    one is reported); pass tolerate=() to let them out at once. On timeout
    raises error with what, and describe() (a callable) appended."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = pred()
            if v:
                return v
        except tolerate as e:  # keep polling; report the last error
            last_exc = e
        if time.monotonic() >= deadline:
            msg = "%s not met within %.1fs" % (what, timeout)
            if last_exc is not None:
                msg += " (last error: %r)" % (last_exc,)
            if describe is not None:
                msg += "\n" + describe()
            raise error(msg)
        time.sleep(interval)


def poll(pred, timeout, interval=0.1):
    """pred()'s first true value within timeout seconds, else None
    (exceptions count as false)."""
    try:
        return wait_until(pred, timeout, interval)
    except AssertionError:
        return None
