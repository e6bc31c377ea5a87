"""The errors clnn raises on purpose; all derive from ClnnError."""


class ClnnError(Exception):
    """Base class of every error that clnn raises on purpose."""


class ModelError(ClnnError, ValueError):
    """A model is malformed or uses something clnn does not support."""


class InputError(ClnnError, ValueError):
    """Feeds do not match what the model expects."""


class DeviceError(ClnnError, RuntimeError):
    """No usable device, a selector that matches nothing, a build or launch
    failure. A failure during a run names the ``device`` (its id) and, where
    it is known, the ``layer`` that failed."""

    def __init__(self, message, device=None, layer=None):
        super().__init__(message)
        self.device = device
        self.layer = layer


class PlanError(ClnnError, ValueError):
    """A placement plan does not fit the model or the devices."""
