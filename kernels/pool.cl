/* Max and average pooling (global pooling is a window over the whole
 * plane), one output element per work-item. Average pooling divides by the
 * window clipped to the padded input (count_include_pad) or to the input.
 * A NaN in a max window gives NaN, as numpy's max does (fmax would drop it).
 * Build options -DCLNN_POOL_KH=.. -DCLNN_POOL_KW=.. build the window in, so
 * that its loops unroll and every load of a window is in flight at once. */
#include "clnn_common.h"

#ifdef CLNN_POOL_KH
#define CLNN_KH CLNN_POOL_KH
#define CLNN_KW CLNN_POOL_KW
#else
#define CLNN_KH KH
#define CLNN_KW KW
#endif

__kernel void clnn_pool_box(CLNN_TENSOR(out), CLNN_CTENSOR(in), const int is_max,
                            const int count_pad, const int H, const int W, const int OH, const int OW,
                            const int KH, const int KW, const int sh, const int sw,
                            const int dh, const int dw, const int pad_top, const int pad_left,
                            const int pad_bottom, const int pad_right,
                            const int n0, const int c0, const int h0, const int bc, const int bh,
                            const int bn)
{
    CLNN_GRID_ELEMENT(ow, oh, OW, n0, c0, h0, bc, bh, bn);
    const int hs = oh * sh - pad_top, ws = ow * sw - pad_left;
    float acc = is_max ? -INFINITY : 0.0f;
    int inside = 0;
    for (int i = 0; i < CLNN_KH; i++) {
        const int ih = hs + i * dh;
        if (ih < 0 || ih >= H)
            continue;
        for (int j = 0; j < CLNN_KW; j++) {
            const int iw = ws + j * dw;
            if (iw < 0 || iw >= W)
                continue;
            const float v = in[CLNN_AT(in, n, c, ih, iw, H, W)];
            acc = is_max ? (v > acc || v != v ? v : acc) : acc + v;
            inside++;
        }
    }
    if (!is_max) {
        const int padded = (min(hs + CLNN_KH, H + pad_bottom) - hs) * (min(ws + CLNN_KW, W + pad_right) - ws);
        acc /= (float)(count_pad ? padded : inside);
    }
    out[CLNN_AT(out, n, c, oh, ow, OH, OW)] = acc;
}
