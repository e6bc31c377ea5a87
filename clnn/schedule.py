"""A run compiled once and replayed: commands on device queues with the
exact dependencies between them, and the bookkeeping that decides which
boxes of which tensor must cross between contexts.

Building a schedule walks the layers once; each run then only enqueues the
commands in order, each with ``wait_for`` on the events it depends on (events
of another context come through the bridge), so the whole run is on the
devices before the host waits for anything. A run whose commands all go to
one queue is recorded once where its context can replay a recording (CUDA
graphs: Context.recorder), and each run then replays it in one submission.
"""

import logging
from dataclasses import dataclass, field

from .box import subtract_all
from .errors import DeviceError
from .runtime.bridge import BRIDGE
from .storage import to_receive

HOST = "host"

log = logging.getLogger("clnn")


@dataclass
class Command:
    context: object
    device: object
    enqueue: object          # callable(wait_for) -> event
    deps: tuple
    kind: str                # "kernel", "to_host", "to_device"
    label: str
    detail: dict = field(default_factory=dict)

    @property
    def queue(self):
        return self.context.queue(self.device)


class Schedule:
    def __init__(self):
        self.commands = []
        self._recordings = {}  # timed: the run's Recording, or None where it is enqueued command by command

    def add(self, context, device, enqueue, deps, kind, label, **detail):
        self.commands.append(Command(context, device, enqueue, tuple(sorted(set(deps))),
                                     kind, label, detail))
        return len(self.commands) - 1

    def run(self, events, timed=True):
        """Enqueue every command, putting their events in ``events`` (a list
        as long as the commands), which a failed run leaves partly filled.
        True where the run was replayed from a recording; ``timed``: its
        events keep each command's times (see Context.recorder)."""
        recording = self._recording(timed)
        if recording is not None:
            command = self.commands[0]
            try:
                events[:] = recording.replay()
            except Exception as exc:
                raise DeviceError(f"replaying the recorded run on {command.device} failed: {exc}",
                                  device=command.device.id) from exc
            return True
        forwarded = {}
        for index, command in enumerate(self.commands):
            wait_for = []
            for dep in command.deps:
                source = self.commands[dep]
                if source.context is command.context:
                    wait_for.append(events[dep])
                    continue
                key = (dep, id(command.context))
                if key not in forwarded:
                    forwarded[key] = BRIDGE.forward(events[dep], source.context, source.device, command.context)
                wait_for.append(forwarded[key])
            try:
                events[index] = command.enqueue(wait_for)
            except BaseException as exc:  # an interrupt too: what is enqueued must finish first
                self._drain(events)
                if not isinstance(exc, Exception):
                    raise
                layer = command.label if command.kind == "kernel" else None
                raise DeviceError(f"enqueueing {command.kind} {command.label} on {command.device} failed: {exc}",
                                  device=command.device.id, layer=layer) from exc
        self._flush()
        return False

    def _recording(self, timed):
        if timed not in self._recordings:
            self._recordings[timed] = self._record(timed)
        return self._recordings[timed]

    def _record(self, timed):
        """The run recorded where all of it goes to one queue and its context
        can record, else None. Recording runs nothing, so a failure only
        means the run is enqueued command by command."""
        if len({id(c.queue) for c in self.commands}) != 1:
            return None
        context, device = self.commands[0].context, self.commands[0].device
        recording = context.recorder(device, timed)
        if recording is None:
            return None

        def enqueue_all():
            events = [None] * len(self.commands)
            for index, command in enumerate(self.commands):
                events[index] = command.enqueue([events[dep] for dep in command.deps])
            return events

        try:
            recording.record(enqueue_all)
        except Exception as exc:
            log.warning("clnn: recording the run on %s failed (%s); enqueueing it command by command", device, exc)
            return None
        return recording

    def failure(self, events):
        """(device, label, exception) of the first command of a finished run
        that failed, or None. A failed command fails every command that
        waits for it (across contexts too, through the bridge), so only the
        commands nothing waits for are checked unless one of them failed."""
        waited = {dep for command in self.commands for dep in command.deps}
        sinks = [i for i in range(len(self.commands)) if i not in waited]
        if all(self._error(i, events) is None for i in sinks):
            return None
        for index, command in enumerate(self.commands):
            error = self._error(index, events)
            if error is not None:
                return command.device, command.label, error
        return None

    def last_kernel(self, device):
        """The layer of the last kernel on ``device``, or None."""
        kernels = [c.label for c in self.commands if c.kind == "kernel" and c.device.id == device.id]
        return kernels[-1] if kernels else None

    def _error(self, index, events):
        if events[index] is None:
            return None
        try:
            self.commands[index].context.wait(events[index])
        except Exception as exc:
            return exc
        return None

    def _flush(self):
        for context in {id(c.context): c.context for c in self.commands}.values():
            for device in context.devices:
                context.flush(device)

    def _drain(self, events):
        """Let the commands a failed run did enqueue finish before their events
        are dropped: pyopencl waits for a host copy's event when freeing it
        while holding the GIL, which the bridge needs to settle the events
        that copy may wait on, so dropping them early deadlocks."""
        self._flush()
        for command, event in zip(self.commands, events):
            if event is not None:
                try:
                    command.context.wait(event)
                except Exception:  # a failed command is finished too
                    pass


@dataclass
class _Valid:
    box: object
    location: object         # HOST or a discrete context
    command: object          # index of the command that made it valid, or None
    device: object           # the device whose queue that command ran on


class Coherence:
    """Tracks, while a schedule is built, where each box of each tensor is
    valid, and adds the copies that make a box valid where it is read.

    Locations are the host (the tensors' homes, which unified contexts use in
    place) and each discrete context's resident buffers. A box crosses only
    when a reader needs it and it is not already where the reader is.
    """

    def __init__(self, schedule, previous=None):
        """``previous``: {tensor: the tensor that had its memory before it,
        or None}, for tensors that take turns in one slot of memory."""
        self.schedule = schedule
        self._valid = {}
        self._previous = previous or {}
        self._touches = {}   # (tensor, location) -> commands that read or wrote it there

    @staticmethod
    def location(context):
        return HOST if context.unified else context

    def host_wrote(self, tensor, box):
        """The host filled ``box`` of the home before the run."""
        self._valid.setdefault(tensor, []).append(_Valid(box, HOST, None, None))

    def wrote(self, tensor, box, context, device, command):
        self._valid.setdefault(tensor, []).append(
            _Valid(box, self.location(context), command, device))

    def need(self, tensor, box, context, device):
        """Commands that a reader of ``box`` on ``device`` must wait for,
        after adding whatever copies bring the box there."""
        return self._need(tensor, box, self.location(context), context, device)

    def need_on_host(self, tensor, box):
        return self._need(tensor, box, HOST, None, None)

    def touched(self, tensor, context, command):
        """``command``, a kernel on ``context``, read or wrote ``tensor``."""
        self._touch(tensor, self.location(context), command)

    def hazards(self, tensor, context):
        """Commands that a kernel writing ``tensor`` on ``context`` must wait for."""
        return self._hazards(tensor, self.location(context))

    def _touch(self, tensor, location, command):
        self._touches.setdefault((tensor, location), []).append(command)

    def _hazards(self, tensor, location):
        """The commands of the last earlier tenant of ``tensor``'s memory that
        touched it at ``location``: only those share that memory with a write
        there (each location holds its own copy of the slot), and they came
        after the writes that waited for the tenants before them. So a
        device whose share of a layer lives in its own memory never waits
        for another device's use of the slot's previous tenant."""
        previous = self._previous.get(tensor)
        while previous is not None:
            if (previous, location) in self._touches:
                return self._touches[previous, location]
            previous = self._previous.get(previous)
        return []

    def _need(self, tensor, box, location, context, device):
        records = self._valid.get(tensor, [])
        here = [r for r in records if r.location is location and r.box.intersect(box)]
        deps = [r.command for r in here if r.command is not None]
        if location is HOST:
            return deps + self._fetch_to_host(tensor, box, records)
        for piece in subtract_all(box, [r.box for r in here]):
            host_deps = self._need(tensor, piece, HOST, None, None)
            command = self.schedule.add(
                context, device,
                lambda wait_for, t=tensor, p=piece, c=context, d=device:
                    t.copy(c, c.queue(d), p, False, wait_for),
                host_deps + self._hazards(tensor, location), "to_device", f"{tensor.name} {piece}",
                tensor=tensor.name, box=str(piece), bytes=piece.count(tensor.shape[3]) * 4)
            self._touch(tensor, HOST, command)
            self._touch(tensor, location, command)
            records.append(_Valid(piece, location, command, device))
            deps.append(command)
        return deps

    def _fetch_to_host(self, tensor, box, records):
        """Copies from discrete contexts of what the host lacks of ``box``."""
        deps = []
        on_host = [r.box for r in records if r.location is HOST]
        elsewhere = [(r.box, r) for r in records if r.location is not HOST]
        for r, part in to_receive(box, on_host, elsewhere):
            if r is None:
                raise DeviceError(f"{tensor.name} {part} is read before any device wrote it")
            command = self.schedule.add(
                r.location, r.device,
                lambda wait_for, t=tensor, p=part, c=r.location, d=r.device:
                    t.copy(c, c.queue(d), p, True, wait_for),
                ([r.command] if r.command is not None else []) + self._hazards(tensor, HOST), "to_host",
                f"{tensor.name} {part}", tensor=tensor.name, box=str(part), bytes=part.count(tensor.shape[3]) * 4)
            self._touch(tensor, r.location, command)
            self._touch(tensor, HOST, command)
            records.append(_Valid(part, HOST, command, r.device))
            deps.append(command)
        return deps
