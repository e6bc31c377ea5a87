"""clnn's log: the "clnn" logger, shown through one handler of its own,
added once whoever asks (CLNN_DEBUG, ``clnn -v``,
SessionOptions.log_severity_level), so that no line prints twice."""

import logging

LOG = logging.getLogger("clnn")
_handler = None


def show(level):
    """Print clnn's messages of ``level`` and above on stderr."""
    global _handler
    if _handler is None:
        _handler = logging.StreamHandler()
        _handler.setFormatter(logging.Formatter("clnn: %(message)s"))
        LOG.addHandler(_handler)
        LOG.propagate = False  # the root logger's handlers would print each line again
    LOG.setLevel(level)
