"""Calibration results on disk, in the user cache directory.

One JSON file per device (its layer times and launch cost) and one per
pair of devices (the cost of sharing between them), each keyed by the
devices' identity, driver version and clnn's version, so that a new driver
or release calibrates afresh. A file that cannot be read, or was written for
something else, is ignored with a warning: calibration runs again.
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


class CalibrationCache:
    def __init__(self, directory=None):
        directory = directory or os.environ.get("CLNN_CACHE_DIR") or platformdirs.user_cache_dir("clnn")
        self.directory = Path(directory) / "calibration"

    def _path(self, key):
        return self.directory / (hashlib.sha1(key.encode()).hexdigest()[:20] + ".json")

    def load(self, key):
        """The stored record for ``key``, or {} (with a warning if a file
        was there but unusable)."""
        path = self._path(key)
        if not path.exists():
            return {}
        try:
            data = json.loads(path.read_text())
            if not isinstance(data, dict) or data.get("format") != FORMAT:
                raise ValueError(f"format {data.get('format') if isinstance(data, dict) else type(data).__name__}")
            if data.get("key") != key:
                raise ValueError("it was written for another device or version")
            return data["data"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            warnings.warn(f"clnn: ignoring calibration cache {path} ({exc}); calibrating again", stacklevel=2)
            return {}

    def save(self, key, data):
        """Write atomically, so a crash never leaves half a file."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._path(key)
        handle, temporary = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        with os.fdopen(handle, "w") as f:
            json.dump({"format": FORMAT, "key": key, "data": data}, f)
        os.replace(temporary, path)
        return path
