import logging
import os
import sys
import threading

from runbook.cli import main


def _exit(code: int) -> None:
    """Exit once every non-daemon thread (a kernel being stopped) is done, without the interpreter's teardown.

    Everything a run writes is written and closed by then; what is left is freeing the modules a
    run loads (papermill, nbconvert, jupyter_client, zmq), about 0.25 s on two cores, at the end of
    every run. Only `python -m runbook` exits this way; main() called in-process returns as usual.
    """
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


_exit(main())
