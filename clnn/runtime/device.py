"""The public description of one compute device."""

from dataclasses import dataclass, field


@dataclass(frozen=True, eq=False)
class Device:
    """One device that clnn can run layers on.

    The first seven fields are the public contract (README, "Devices"). The
    next describe what layers and the planner need of any backend's device;
    the rest serve the runtime: ``identity`` names the physical device so
    that one seen through two drivers is used once, ``handle`` is the
    backend's own object, which nothing outside that backend reads.
    """

    id: str
    name: str
    kind: str
    platform: str
    backend: str
    unified_memory: bool
    compute_units: int
    driver_version: str = ""
    local_mem_size: int = 32768        # bytes of local (shared) memory per work-group
    max_work_group_size: int = 256
    native_vector_width: int = 8       # floats per SIMD register (the CPU kernels' vectors)
    simulator: bool = False            # simulates a device (Oclgrind): used only when named
    identity: str = field(default="", repr=False)
    handle: object = field(default=None, repr=False, compare=False)
    # platform version as a tuple, used to prefer the newer driver of a pair
    platform_version: tuple = field(default=(), repr=False)

    @property
    def platform_key(self):
        """Tells platforms apart even where two installs share a name
        (ids are backend:platform-slug:index)."""
        return self.id.rsplit(":", 1)[0]

    def __eq__(self, other):
        return isinstance(other, Device) and other.id == self.id

    def __hash__(self):
        return hash(self.id)

    def __str__(self):
        return f"{self.id} ({self.name})"
