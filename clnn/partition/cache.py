"""Calibration results on disk, in clnn's cache folder (clnn.cache_files).

One JSON file per device (its layer times and launch cost) and one per
pair of devices (the cost of sharing between them), each keyed by the
devices' identity, driver version and clnn's version; a device's file also
by its tuning, since its layer times are those of the kernels the tuning
picks (a new ``clnn tune`` record calibrates afresh). A part of a record
that does not fit its schema is dropped with a warning (``load``'s
``clean``), so calibration measures it again.
"""

from ..cache_files import RecordFiles, device_key
from ..ops.tuning import tuning_digest, tuning_for


class CalibrationCache(RecordFiles):
    FOLDER = "calibration"
    FORMAT = "clnn-calibration/1"
    WHAT = "calibration"
    INSTEAD = "calibrating again"
    INSTEAD_PART = "measuring that again"


def calibration_key(device):
    """What the calibration of ``device``'s layers depends on."""
    return f"{device_key(device)}|tuning {tuning_digest(tuning_for(device))}"
