/* Resize, one output element per work-item. The host's tables give every
 * output row the two input rows it reads and their weights (rows, row_w:
 * two entries per output row), and likewise every column; nearest reads
 * the first of each. Linear interpolation (CLNN_RESIZE_LINEAR) and a crop
 * that can fall outside the input (CLNN_RESIZE_CROP: a row or column index
 * of -1 takes the value ``outside``) are built in, so the common kernels
 * carry no branch for them. */
#include "clnn_common.h"

__kernel void clnn_resize_box(CLNN_TENSOR(out), CLNN_CTENSOR(in), __global const int *rows,
                              __global const float *row_w, __global const int *cols,
                              __global const float *col_w, const float outside,
                              const int H, const int W, const int OH, const int OW,
                              const int n0, const int c0, const int h0, const int bc, const int bh,
                              const int bn)
{
    CLNN_GRID_ELEMENT(ow, oh, OW, n0, c0, h0, bc, bh, bn);
    const int r0 = rows[2 * oh], q0 = cols[2 * ow];
#ifdef CLNN_RESIZE_CROP
    if (r0 < 0 || q0 < 0) {
        out[CLNN_AT(out, n, c, oh, ow, OH, OW)] = outside;
        return;
    }
#endif
#ifdef CLNN_RESIZE_LINEAR
    const int r1 = rows[2 * oh + 1], q1 = cols[2 * ow + 1];
    const float a = col_w[2 * ow], b = col_w[2 * ow + 1];
    const float top = a * in[CLNN_AT(in, n, c, r0, q0, H, W)] + b * in[CLNN_AT(in, n, c, r0, q1, H, W)];
    const float bottom = a * in[CLNN_AT(in, n, c, r1, q0, H, W)] + b * in[CLNN_AT(in, n, c, r1, q1, H, W)];
    out[CLNN_AT(out, n, c, oh, ow, OH, OW)] = row_w[2 * oh] * top + row_w[2 * oh + 1] * bottom;
#else
    out[CLNN_AT(out, n, c, oh, ow, OH, OW)] = in[CLNN_AT(in, n, c, r0, q0, H, W)];
#endif
}
