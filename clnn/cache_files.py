"""Records that clnn keeps per device in its cache folder (calibration in
clnn.partition.cache, kernel tuning in clnn.ops.tuning): one JSON file per
key, in a folder per kind of record.

A key says what a record depends on (``device_key``: the device, its driver
and clnn's version), so that a new driver or release measures afresh. A
cache can never stop clnn: a file that cannot be read, or was written for
something else, is ignored with a warning naming it; a record that does not
fit its schema is cleaned by the caller's ``clean`` (``RecordFiles.load``),
each part dropped with a warning; a folder that cannot be written keeps the
records in memory for the rest of the process, with a warning.
"""

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path

import platformdirs

from .version import __version__


def cache_dir():
    """clnn's cache folder: CLNN_CACHE_DIR, else the user cache directory."""
    return Path(os.environ.get("CLNN_CACHE_DIR") or platformdirs.user_cache_dir("clnn"))


def device_key(device):
    """What a measurement on ``device`` depends on."""
    return "|".join([device.backend, device.platform, device.name, device.identity, device.driver_version,
                     str(device.compute_units), __version__])


# records that could not be written, by file path: this process still uses them
_UNSAVED = {}


class RecordFiles:
    """The records of one kind, in ``FOLDER`` of ``directory`` (clnn's cache
    folder by default). Subclasses name the kind: its folder, its file
    format, what warnings call it (``WHAT``) and what happens instead of
    using a file (``INSTEAD``) or a dropped part of one (``INSTEAD_PART``)."""
    FOLDER = FORMAT = WHAT = INSTEAD = INSTEAD_PART = ""

    def __init__(self, directory=None):
        self.directory = Path(directory or cache_dir()) / self.FOLDER

    def path(self, key):
        return self.directory / (hashlib.sha1(key.encode()).hexdigest()[:20] + ".json")

    def stamp(self, key):
        """Changes whenever the record ``load(key)`` reads may have changed
        (for callers that keep what they loaded)."""
        path = self.path(key)
        if str(path) in _UNSAVED:
            return ("memory", id(_UNSAVED[str(path)]))
        try:
            stat = path.stat()
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_size)

    def load(self, key, clean=None):
        """The stored record for ``key``, or {}. ``clean(data)`` returns (the
        part of ``data`` that fits its schema, [what was dropped]); each
        drop, and a file that is unusable as a whole, is a warning naming
        the file."""
        path = self.path(key)
        if str(path) in _UNSAVED:
            return _UNSAVED[str(path)]
        try:
            if not path.is_file():
                return {}
            data = json.loads(path.read_text())
            if not isinstance(data, dict) or data.get("format") != self.FORMAT:
                raise ValueError(f"format {data.get('format') if isinstance(data, dict) else type(data).__name__}")
            if data.get("key") != key:
                raise ValueError("it was written for another device or version")
            record = data.get("data")
            if not isinstance(record, dict):
                raise ValueError(f"its data is a {type(record).__name__}, not a record")
        except (OSError, ValueError) as exc:
            _warn(f"ignoring {self.WHAT} cache {path} ({exc}); {self.INSTEAD}")
            return {}
        if clean is None:
            return record
        record, dropped = clean(record)
        for what in dropped:
            _warn(f"{self.WHAT} cache {path}: {what}; {self.INSTEAD_PART}")
        return record

    def save(self, key, data):
        """Write atomically, so a crash never leaves half a file; where the
        directory cannot be written, keep the record for this process.
        Returns the file's path, or None where the record stayed in memory."""
        path = self.path(key)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            with os.fdopen(handle, "w") as f:
                json.dump({"format": self.FORMAT, "key": key, "data": data}, f)
            os.replace(temporary, path)
        except OSError as exc:
            if str(path) not in _UNSAVED:
                _warn(f"cannot write the {self.WHAT} cache in {self.directory} ({exc}); keeping this {self.WHAT} "
                      "in memory for this process (set CLNN_CACHE_DIR to a writable folder to keep it)")
            _UNSAVED[str(path)] = data
            return None
        _UNSAVED.pop(str(path), None)
        return path


def seconds(value):
    """A record's number of seconds: non-negative and finite, or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
        return None
    return float(value)


def _warn(text):
    warnings.warn(f"clnn: {text}", stacklevel=3)
