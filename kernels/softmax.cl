/* Softmax over the channels of each pixel (the last axis of an (N, C)
 * tensor), one work-item per pixel: max, sum of exponentials, then write. */
#include "clnn_common.h"

__kernel void clnn_softmax_channels(CLNN_TENSOR(out), CLNN_CTENSOR(in), const int C,
                                    const int H, const int W, const int n0, const int h0,
                                    const int bh, const int count)
{
    const int i = get_global_id(0);
    if (i >= count)
        return;
    const int w = i % W;
    const int h = h0 + (i / W) % bh;
    const int n = n0 + i / (W * bh);
    float top = -INFINITY;
    for (int c = 0; c < C; c++)
        top = fmax(top, in[CLNN_AT(in, n, c, h, w, H, W)]);
    float sum = 0.0f;
    for (int c = 0; c < C; c++)
        sum += exp(in[CLNN_AT(in, n, c, h, w, H, W)] - top);
    for (int c = 0; c < C; c++)
        out[CLNN_AT(out, n, c, h, w, H, W)] = exp(in[CLNN_AT(in, n, c, h, w, H, W)] - top) / sum;
}
