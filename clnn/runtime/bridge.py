"""Carries the completion of an event into another context.

Events do not cross OpenCL contexts (nor backends). For a command that must
wait on another context's command, the bridge makes a user event in the
waiting context and completes it once the source event is done. That lets a
whole run be enqueued up front on every device, without the host blocking
between layers. One worker thread per source queue waits on its events in
order, which is the order an in-order queue completes them in.
"""

import logging
import queue as queue_module
import threading

log = logging.getLogger("clnn")


class _Worker:
    def __init__(self, name):
        self._pending = queue_module.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def put(self, event, settle):
        self._pending.put((event, settle))

    def _loop(self):
        while True:
            event, settle = self._pending.get()
            try:
                event.wait()
                ok = True
            except Exception as exc:  # the dependents must fail, not hang
                log.warning("bridged event failed: %s", exc)
                ok = False
            settle(ok)


class Bridge:
    def __init__(self):
        self._workers = {}
        self._lock = threading.Lock()

    def forward(self, event, source_queue, target_context):
        """An event of ``target_context`` that completes when ``event`` (a
        command of ``source_queue``) does."""
        user_event, settle = target_context.user_event()
        key = id(source_queue)
        with self._lock:
            worker = self._workers.get(key)
            if worker is None:
                worker = self._workers[key] = _Worker(f"clnn-bridge-{len(self._workers)}")
        source_queue.flush()
        worker.put(event, settle)
        return user_event


BRIDGE = Bridge()
