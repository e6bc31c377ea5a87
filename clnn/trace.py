"""Chrome trace files (chrome://tracing, Perfetto) of a run: one track per
device queue and one for the host, each kernel and copy with its layer and
box."""

import json


def chrome_trace(timeline, host_spans):
    """``timeline``: Executor.timeline() records; ``host_spans``: (name,
    start, end) in the same host nanoseconds."""
    starts = [r["start"] for r in timeline] + [s for _, s, _ in host_spans]
    origin = min(starts) if starts else 0
    tracks = {"host": 0}
    for record in timeline:
        tracks.setdefault(record["device"], len(tracks))
    events = [{"name": "thread_name", "ph": "M", "pid": 1, "tid": tid, "args": {"name": name}}
              for name, tid in tracks.items()]
    for name, start, end in host_spans:
        events.append({"name": name, "cat": "host", "ph": "X", "pid": 1, "tid": 0,
                       "ts": (start - origin) / 1e3, "dur": (end - start) / 1e3})
    for r in timeline:
        args = {k: v for k, v in r.items() if k not in ("start", "end", "device", "kind", "label")}
        name = r["label"] if r["kind"] == "kernel" else f"{r['kind']} {r['label']}"
        events.append({"name": name, "cat": r["kind"], "ph": "X", "pid": 1, "tid": tracks[r["device"]],
                       "ts": (r["start"] - origin) / 1e3, "dur": max(r["end"] - r["start"], 0) / 1e3,
                       "args": args})
    return {"traceEvents": events, "displayTimeUnit": "ms"}


def write_trace(path, timeline, host_spans):
    with open(path, "w") as f:
        json.dump(chrome_trace(timeline, host_spans), f)
