/* N-D copies: every element of a box of the output takes one input element
 * through a map of up to six dims (clnn.ops.nd.IndexMap.table): Transpose,
 * Slice, Split, Pad, Concat off the channel axis, DepthToSpace and
 * SpaceToDepth are all such copies.
 *
 * The element's index in the whole output is taken apart dim by dim,
 * innermost first; dim k reads input index start + step * v, which is
 * outside the input only for padding (mode says what then) and for the
 * other inputs' parts of a concat (skipped: another launch writes them).
 * A dim of input extent -1 reads its index from a list in the map
 * (Gather of indices that do not step evenly). */
#include "clnn_common.h"

#define ND_CONSTANT 0
#define ND_EDGE 1
#define ND_REFLECT 2   /* the layer keeps pads smaller than the dim: one reflection is enough */
#define ND_WRAP 3
#define ND_SKIP 4

__kernel void clnn_nd_copy(CLNN_TENSOR(out), CLNN_CTENSOR(in), __global const int *map, const int mode,
                           const float value, const int C, const int H, const int W,
                           const int n0, const int c0, const int h0, const int bc, const int bh,
                           const int count)
{
    const int i = get_global_id(0);
    if (i >= count)
        return;
    CLNN_BOX_ELEMENT(i, W, n0, c0, h0, bc, bh);
    const int e = (c * H + h) * W + w;
    const int dst = out_off + n * out_ns + e;
    int g = n * C * H * W + e;
    int src = in_off + map[1] + map[2] * in_ns;
    for (int k = map[0] - 1; k >= 0; k--) {
        __global const int *d = map + 3 + 6 * k;
        const int v = g % d[0];
        g /= d[0];
        int j = d[1] + d[2] * v;
        const int length = d[3];
        if (length < 0) {
            j = map[d[1] + v];  /* a dim reading a list of indices, all inside the input */
        } else if (j < 0 || j >= length) {
            if (mode == ND_SKIP)
                return;
            if (mode == ND_CONSTANT) {
                out[dst] = value;
                return;
            }
            j = mode == ND_EDGE ? (j < 0 ? 0 : length - 1)
              : mode == ND_REFLECT ? (j < 0 ? -j : 2 * length - 2 - j)
              : (j % length + length) % length;
        }
        src += j * (d[4] + d[5] * in_ns);
    }
    out[dst] = in[src];
}
