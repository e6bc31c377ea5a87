"""Carries the completion of an event into another context.

Events do not cross OpenCL contexts (nor backends). For a command that must
wait on another context's command, the bridge makes a user event in the
waiting context and completes it once the source event is done. That lets a
whole run be enqueued up front on every device, without the host blocking
between layers. One worker thread per source queue waits on its events in
order, which is the order an in-order queue completes them in. Workers stop
when the bridge closes (at exit for the process's bridge).
"""

import atexit
import logging
import queue as queue_module
import threading

log = logging.getLogger("clnn")

_STOP = object()


class _Worker:
    def __init__(self, name):
        self._pending = queue_module.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def put(self, wait, settle):
        self._pending.put((wait, settle))

    def stop(self, timeout):
        self._pending.put((_STOP, None))
        self._thread.join(timeout)

    def _loop(self):
        while True:
            wait, settle = self._pending.get()
            if wait is _STOP:
                return
            try:
                wait()
                ok = True
            except Exception as exc:  # the dependents must fail, not hang
                log.warning("bridged event failed: %s", exc)
                ok = False
            settle(ok)


class Bridge:
    def __init__(self):
        self._workers = {}
        self._lock = threading.Lock()

    def forward(self, event, source_context, source_device, target_context):
        """An event of ``target_context`` that completes when ``event`` (a
        command on ``source_device``'s queue of ``source_context``) does."""
        user_event, settle = target_context.user_event()
        key = id(source_context.queue(source_device))
        with self._lock:
            worker = self._workers.get(key)
            if worker is None:
                worker = self._workers[key] = _Worker(f"clnn-bridge-{len(self._workers)}")
        source_context.flush(source_device)
        worker.put(lambda: source_context.wait(event), settle)
        return user_event

    def close(self, timeout=5.0):
        """Stop the workers once the events already handed to them settled."""
        with self._lock:
            workers, self._workers = list(self._workers.values()), {}
        for worker in workers:
            worker.stop(timeout)


BRIDGE = Bridge()
atexit.register(BRIDGE.close)
