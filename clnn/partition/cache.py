"""Calibration results on disk, in the user cache directory.

One JSON file per device (its layer times and launch cost) and one per
pair of devices (the cost of sharing between them), each keyed by the
devices' identity, driver version and clnn's version, so that a new driver
or release calibrates afresh. A cache can never stop a session: a file that
cannot be read, or was written for something else, is ignored with a
warning, and a part of a record that does not fit its schema is dropped
with a warning (``load``'s ``clean``), so calibration measures it again; a
directory that cannot be written keeps the records in memory for the rest
of the process, with a warning.
"""

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path

import platformdirs

from ..version import __version__

FORMAT = "clnn-calibration/1"


def device_key(device):
    """What a calibration of ``device`` depends on."""
    return "|".join([device.backend, device.platform, device.name, device.identity, device.driver_version,
                     str(device.compute_units), __version__])


# records that could not be written, by file path: this process still uses them
_UNSAVED = {}


def cache_dir():
    """clnn's cache folder: CLNN_CACHE_DIR, else the user cache directory."""
    return Path(os.environ.get("CLNN_CACHE_DIR") or platformdirs.user_cache_dir("clnn"))


class CalibrationCache:
    def __init__(self, directory=None):
        self.directory = Path(directory or cache_dir()) / "calibration"

    def _path(self, key):
        return self.directory / (hashlib.sha1(key.encode()).hexdigest()[:20] + ".json")

    def load(self, key, clean=None):
        """The stored record for ``key``, or {}. ``clean(data)`` returns (the
        part of ``data`` that fits its schema, [what was dropped]); each
        drop, and a file that is unusable as a whole, is a warning naming
        the file."""
        path = self._path(key)
        if str(path) in _UNSAVED:
            return _UNSAVED[str(path)]
        try:
            if not path.is_file():
                return {}
            data = json.loads(path.read_text())
            if not isinstance(data, dict) or data.get("format") != FORMAT:
                raise ValueError(f"format {data.get('format') if isinstance(data, dict) else type(data).__name__}")
            if data.get("key") != key:
                raise ValueError("it was written for another device or version")
            record = data.get("data")
            if not isinstance(record, dict):
                raise ValueError(f"its data is a {type(record).__name__}, not a record")
        except (OSError, ValueError) as exc:
            _warn(f"ignoring calibration cache {path} ({exc}); calibrating again")
            return {}
        if clean is None:
            return record
        record, dropped = clean(record)
        for what in dropped:
            _warn(f"calibration cache {path}: {what}; measuring that again")
        return record

    def save(self, key, data):
        """Write atomically, so a crash never leaves half a file; where the
        directory cannot be written, keep the record for this process."""
        path = self._path(key)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            with os.fdopen(handle, "w") as f:
                json.dump({"format": FORMAT, "key": key, "data": data}, f)
            os.replace(temporary, path)
        except OSError as exc:
            if str(path) not in _UNSAVED:
                _warn(f"cannot write the calibration cache in {self.directory} ({exc}); keeping this calibration "
                      "in memory for this process (set CLNN_CACHE_DIR to a writable folder to keep it)")
            _UNSAVED[str(path)] = data
            return None
        _UNSAVED.pop(str(path), None)
        return path


def _warn(text):
    warnings.warn(f"clnn: {text}", stacklevel=3)


def seconds(value):
    """A non-negative, finite number of seconds, or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
        return None
    return float(value)
