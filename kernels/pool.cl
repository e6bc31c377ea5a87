/* Max and average pooling (global pooling is a window over the whole
 * plane), one output element per work-item. Average pooling divides by the
 * count of the window's taps inside the padded input (count_include_pad) or
 * inside the input: a dilated window counts its taps, not its span.
 * A NaN in a max window gives NaN, as numpy's max does (fmax would drop it).
 * clnn_pool_rows_cpu computes the same pools row by row for CPUs.
 * Build options -DCLNN_POOL_KH=.. -DCLNN_POOL_KW=.. (and, for the CPU
 * kernel, -DCLNN_POOL_SW=..) build the window in, so that its loops unroll
 * and every load of a window is in flight at once. */
#include "clnn_common.h"

#ifdef CLNN_POOL_KH
#define CLNN_KH CLNN_POOL_KH
#define CLNN_KW CLNN_POOL_KW
#else
#define CLNN_KH KH
#define CLNN_KW KW
#endif
#ifdef CLNN_POOL_SW
#define CLNN_SW CLNN_POOL_SW
#else
#define CLNN_SW sw
#endif

#define VW 8
#include "clnn_vector.h"

/* The window of the output whose window starts at input row hs, column ws
 * of ``plane``, bounds tested. */
CLNN_INLINE float clnn_pool_window(__global const float *plane, const int is_max, const int count_pad,
                                   const int H, const int W, const int KH, const int KW, const int dh,
                                   const int dw, const int pad_bottom, const int pad_right, const int hs,
                                   const int ws)
{
    float acc = is_max ? -INFINITY : 0.0f;
    int inside = 0;
    for (int i = 0; i < KH; i++) {
        const int ih = hs + i * dh;
        if (ih < 0 || ih >= H)
            continue;
        for (int j = 0; j < KW; j++) {
            const int iw = ws + j * dw;
            if (iw < 0 || iw >= W)
                continue;
            const float v = plane[ih * W + iw];
            acc = is_max ? (v > acc || v != v ? v : acc) : acc + v;
            inside++;
        }
    }
    if (is_max)
        return acc;
    /* the window's taps inside the padded input (a ceil_mode window may pass its end) */
    const int padded = min(KH, (H + pad_bottom - hs + dh - 1) / dh) * min(KW, (W + pad_right - ws + dw - 1) / dw);
    return acc / (float)(count_pad ? padded : inside);
}

__kernel void clnn_pool_box(CLNN_TENSOR(out), CLNN_CTENSOR(in), const int is_max,
                            const int count_pad, const int H, const int W, const int OH, const int OW,
                            const int KH, const int KW, const int sh, const int sw,
                            const int dh, const int dw, const int pad_top, const int pad_left,
                            const int pad_bottom, const int pad_right,
                            const int n0, const int c0, const int h0, const int bc, const int bh,
                            const int bn)
{
    CLNN_GRID_ELEMENT(ow, oh, OW, n0, c0, h0, bc, bh, bn);
    out[CLNN_AT(out, n, c, oh, ow, OH, OW)] =
        clnn_pool_window(in + CLNN_AT(in, n, c, 0, 0, H, W), is_max, count_pad, H, W, CLNN_KH, CLNN_KW, dh, dw,
                         pad_bottom, pad_right, oh * sh - pad_top, ow * sw - pad_left);
}

/* For CPUs, one work-item computes all of the box's rows of one channel of
 * one batch item (launched over (channels, batch) in work-groups of one).
 * Where the window lies inside the input (all rows but the edges, all
 * columns but the edges) a loop with no bounds tests runs along the row,
 * with the window's shape and column stride built in (all or none) and
 * unrolled; at column stride 2 it computes 8 outputs at a time from the
 * even lanes of vectors loaded at each window column. Other outputs take the tested window. A
 * window covering the whole plane (global pooling) reduces it as one
 * contiguous run of vectors. */
__kernel CLNN_WORK_GROUP(1, 1, 1)
void clnn_pool_rows_cpu(CLNN_TENSOR(out), CLNN_CTENSOR(in), const int is_max,
                        const int count_pad, const int H, const int W, const int OH, const int OW,
                        const int KH, const int KW, const int sh, const int sw,
                        const int dh, const int dw, const int pad_top, const int pad_left,
                        const int pad_bottom, const int pad_right,
                        const int n0, const int c0, const int h0, const int bc, const int bh,
                        const int bn)
{
    if ((int)get_global_id(0) >= bc || (int)get_global_id(1) >= bn)
        return;
    const int c = c0 + get_global_id(0);
    const int n = n0 + get_global_id(1);
    __global const float *plane = in + CLNN_AT(in, n, c, 0, 0, H, W);

    if (KH == H && KW == W && (pad_top | pad_left | pad_bottom | pad_right) == 0 && dh == 1 && dw == 1) {
        /* VW partial results, then their lanes and the plane's tail */
        floatv part = is_max ? (floatv)(-INFINITY) : (floatv)(0.0f);
        int i = 0;
        for (; i + VW <= H * W; i += VW)
            part = is_max ? clnn_maxv(part, CLNN_LOADV(plane + i)) : part + CLNN_LOADV(plane + i);
        const float *lanes = (const float *)&part;
        float acc = lanes[0];
        for (int l = 1; l < VW; l++)
            acc = is_max ? (lanes[l] > acc || lanes[l] != lanes[l] ? lanes[l] : acc) : acc + lanes[l];
        for (; i < H * W; i++) {
            const float v = plane[i];
            acc = is_max ? (v > acc || v != v ? v : acc) : acc + v;
        }
        out[CLNN_AT(out, n, c, 0, 0, OH, OW)] = is_max ? acc : acc / (float)(H * W);
        return;
    }

    const float area = 1.0f / (float)(KH * KW);
    for (int oh = h0; oh < h0 + bh; oh++) {
        __global float *dst = out + CLNN_AT(out, n, c, oh, 0, OH, OW);
        const int hs = oh * sh - pad_top;
        /* output columns whose window is inside the input: [lo, hi) */
        int lo = OW, hi = OW;
        if (hs >= 0 && hs + (KH - 1) * dh < H && dh == 1 && dw == 1) {
            lo = min((pad_left + sw - 1) / sw, OW);
            hi = W - KW + pad_left >= 0 ? max(min((W - KW + pad_left) / sw + 1, OW), lo) : lo;
        }
        for (int o = 0; o < lo; o++)
            dst[o] = clnn_pool_window(plane, is_max, count_pad, H, W, KH, KW, dh, dw, pad_bottom, pad_right, hs,
                                      o * sw - pad_left);
        __global const float *src = plane + hs * W - pad_left;
        int o = lo;
        if (CLNN_SW == 2) {
            /* 8 outputs read 16 + KW - 1 columns from 2 * o - pad_left on */
            for (; o + 8 <= hi && 2 * o - pad_left + 15 + CLNN_KW <= W; o += 8) {
                __global const float *s = src + 2 * o;
                floatv acc = is_max ? (floatv)(-INFINITY) : (floatv)(0.0f);
#pragma unroll
                for (int i = 0; i < CLNN_KH; i++) {
#pragma unroll
                    for (int j = 0; j < CLNN_KW; j++) {
                        const floatv a = CLNN_LOADV(s + i * W + j), b = CLNN_LOADV(s + i * W + j + 8);
                        acc = is_max ? clnn_maxv(acc, CLNN_EVEN_LANES(a, b)) : acc + CLNN_EVEN_LANES(a, b);
                    }
                }
                CLNN_STOREV(dst + o, is_max ? acc : area * acc);
            }
        }
        for (; o < hi; o++) {
            __global const float *s = src + o * CLNN_SW;
            float acc = is_max ? -INFINITY : 0.0f;
#pragma unroll
            for (int i = 0; i < CLNN_KH; i++) {
#pragma unroll
                for (int j = 0; j < CLNN_KW; j++) {
                    const float v = s[i * W + j];
                    acc = is_max ? (v > acc || v != v ? v : acc) : acc + v;
                }
            }
            dst[o] = is_max ? acc : acc * area;
        }
        for (o = hi; o < OW; o++)
            dst[o] = clnn_pool_window(plane, is_max, count_pad, H, W, KH, KW, dh, dw, pad_bottom, pad_right, hs,
                                      o * sw - pad_left);
    }
}
