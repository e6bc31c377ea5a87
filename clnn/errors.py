"""The errors clnn raises on purpose; all derive from ClnnError."""


class ClnnError(Exception):
    """Base class of every error that clnn raises on purpose."""


class ModelError(ClnnError, ValueError):
    """A model is malformed or uses something clnn does not support."""


class InputError(ClnnError, ValueError):
    """Feeds do not match what the model expects."""


class DeviceError(ClnnError, RuntimeError):
    """No usable device, a selector that matches nothing, a build or launch failure."""


class PlanError(ClnnError, ValueError):
    """A placement plan does not fit the model or the devices."""
