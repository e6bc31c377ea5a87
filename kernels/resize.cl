/* Resize, one output element per work-item. The host's tables give every
 * output row the two input rows it reads and their weights (rows, row_w:
 * two entries per output row), and likewise every column; nearest reads
 * the first of each. A row or column index of -1 lies outside the crop of
 * tf_crop_and_resize: the element takes the value ``outside``. */
#include "clnn_common.h"

__kernel void clnn_resize_box(CLNN_TENSOR(out), CLNN_CTENSOR(in), __global const int *rows,
                              __global const float *row_w, __global const int *cols,
                              __global const float *col_w, const int linear, const float outside,
                              const int H, const int W, const int OH, const int OW,
                              const int n0, const int c0, const int h0, const int bc, const int bh,
                              const int bn)
{
    CLNN_GRID_ELEMENT(ow, oh, OW, n0, c0, h0, bc, bh, bn);
    const int r0 = rows[2 * oh], q0 = cols[2 * ow];
    float value;
    if (r0 < 0 || q0 < 0) {
        value = outside;
    } else if (!linear) {
        value = in[CLNN_AT(in, n, c, r0, q0, H, W)];
    } else {
        const int r1 = rows[2 * oh + 1], q1 = cols[2 * ow + 1];
        const float a = col_w[2 * ow], b = col_w[2 * ow + 1];
        const float top = a * in[CLNN_AT(in, n, c, r0, q0, H, W)] + b * in[CLNN_AT(in, n, c, r0, q1, H, W)];
        const float bottom = a * in[CLNN_AT(in, n, c, r1, q0, H, W)] + b * in[CLNN_AT(in, n, c, r1, q1, H, W)];
        value = row_w[2 * oh] * top + row_w[2 * oh + 1] * bottom;
    }
    out[CLNN_AT(out, n, c, oh, ow, OH, OW)] = value;
}
