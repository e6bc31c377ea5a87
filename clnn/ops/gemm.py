"""How a GPU GEMM (kernels/conv_gemm.cl) is cut into work-groups: which
tile of the tuning, and into how many slices of K, for a product of
``rows`` x ``cols`` outputs ``depth`` deep (``batch`` independent ones).

The cost model: a launch runs in waves of ``compute_units x wg_per_cu``
work-groups; a wave lasts as long as one work-group's multiply-adds divided
by its tile's speed (GemmTile.speed). Where a tile's work-groups would not
fill one wave, K may be split (into up to two waves): that multiplies the
work-groups and divides each one's depth, and the partial sums cost one
more pass (SPLIT_COST). The cheapest tile and split win, the earlier tile of
the tuning on a tie.
"""

from dataclasses import dataclass

from ..errors import DeviceError
from .base import ceil_div

# a split's extra pass over its partial sums, as a fraction of the unsplit cost
SPLIT_COST = 0.05


@dataclass(frozen=True)
class GemmPlan:
    tile: object        # clnn.ops.tuning.GemmTile
    slices: int         # slices of K (work-group z)
    kc: int             # depth of each slice, a multiple of the tile's TK

    def groups(self, rows, cols):
        """(global, local) of the launch over ``rows`` x ``cols`` outputs."""
        wg_x, wg_y = self.tile.local
        size = (ceil_div(cols, self.tile.TN) * wg_x, ceil_div(rows, self.tile.TM) * wg_y, self.slices)
        return size, (wg_x, wg_y, 1)


def plan_gemm(target, rows, cols, depth, batch=1, split=True):
    """The cheapest GemmPlan on ``target`` (its tuning's tiles that fit its
    work-group and local memory limits); ``split=False`` keeps K whole."""
    tuning = target.tuning
    slots = max(target.compute_units * tuning.wg_per_cu, 1)
    best = None
    for tile in tuning.conv_tiles:
        staged = 2 * 4 * tile.TK * (tile.TM + tile.TN)   # two buffers of float tiles
        if tile.threads > target.max_work_group or staged > target.local_mem:
            continue
        groups = ceil_div(rows, tile.TM) * ceil_div(cols, tile.TN) * batch
        steps = ceil_div(depth, tile.TK)
        splits = [1]
        while (split and groups < slots and splits[-1] * 2 <= tuning.max_split
               and steps // (splits[-1] * 2) >= tuning.min_split_steps and groups * splits[-1] * 2 <= 2 * slots):
            splits.append(splits[-1] * 2)
        for s in splits:
            per_slice = ceil_div(steps, s)
            cost = ceil_div(groups * s, slots) * per_slice * tile.TK * tile.TM * tile.TN / tile.speed
            cost *= 1 + SPLIT_COST * (s > 1)
            if best is None or cost < best[0]:
                best = (cost, GemmPlan(tile, ceil_div(steps, per_slice), per_slice * tile.TK))
    if best is None:
        raise DeviceError(f"no GEMM tile of {tuning.conv_tiles} fits a work-group of {target.max_work_group} "
                         f"and {target.local_mem} bytes of local memory")
    return best[1]
