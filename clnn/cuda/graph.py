"""A compiled run replayed as one CUDA graph: the schedule's commands on one
stream are captured once, and each run launches the graph with one driver
call instead of one Python call (and two events) per command.

Timed recordings keep a start and an end event per command as external
event nodes, which every replay records again, so Executor.timeline() reads
them as it reads a command-by-command run's; untimed ones have no events
but the run's own (Executor.timed = False). Only a run on one stream is
recorded: waits for other contexts (the bridge's user events) wait for a
new flag value each run, which a graph cannot hold.
"""

import weakref

from .driver import call, cu, release


class Recording:
    """What CudaContext.recorder returns (see clnn.runtime.backend.Context)."""

    def __init__(self, stream, timed):
        self._stream = stream
        self.timed = timed
        self._graph = None
        self._events = ()

    def record(self, enqueue_all):
        """Capture the commands that ``enqueue_all()`` enqueues, in order,
        returning their events; nothing runs yet."""
        try:
            graph, events = self._stream.capture(enqueue_all, self.timed)
            try:
                with self._stream.ctx:  # instantiating needs the capturing context current
                    self._graph = call(cu().cuGraphInstantiate, graph, 0)
            finally:
                release(self._stream.ctx.waits, cu().cuGraphDestroy, graph)
        except Exception as exc:
            self._stream.capture_failure = exc  # the context records no more runs (one warning, not one a run)
            raise
        weakref.finalize(self, release, self._stream.ctx.waits, cu().cuGraphExecDestroy, self._graph)
        self._events = tuple(events)

    def replay(self):
        """Launch the graph; the events of its commands, in order."""
        graph = self._graph
        launched = self._stream.enqueue((), lambda handle: call(cu().cuGraphLaunch, graph, handle))
        if not self.timed:
            return [RunEvent(launched)] * len(self._events)
        for event in self._events:
            event.sequence = launched.sequence  # for the stream's clock (Stream.times)
        return list(self._events)


class RunEvent:
    """Stands for every command of an untimed replay: waits for the whole
    run, and has no times (Stream.times refuses it)."""

    def __init__(self, launched):
        self._launched = launched
        self.stream = launched.stream

    def wait(self):
        self._launched.wait()

    @property
    def cause(self):
        return self._launched.cause
