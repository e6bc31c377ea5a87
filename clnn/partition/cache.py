"""Calibration results on disk, in clnn's cache folder (clnn.cache_files).

One JSON file per device (its layer times and launch cost) and one per
pair of devices (the cost of sharing between them), each keyed by the
devices' identity, driver version and clnn's version. A part of a record
that does not fit its schema is dropped with a warning (``load``'s
``clean``), so calibration measures it again.
"""

from ..cache_files import RecordFiles


class CalibrationCache(RecordFiles):
    FOLDER = "calibration"
    FORMAT = "clnn-calibration/1"
    WHAT = "calibration"
    INSTEAD = "calibrating again"
    INSTEAD_PART = "measuring that again"
