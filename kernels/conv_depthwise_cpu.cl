/* Depthwise convolution for CPUs: every output channel c reads one input
 * channel, c / mult (mult output channels per input channel), through its
 * own KH x KW window, with any stride, dilation and padding.
 *
 * One work-item computes rows ra..rz of channels ca..cz of one batch item
 * (the host picks how many of each, clnn.ops.conv_depthwise), all columns.
 * It goes down its rows OR at a time and along them CW columns at a time:
 * for each such pass it copies the IR input rows the OR output rows read
 * into private memory, zero outside the input (so that the sums need no
 * bounds tests), each row split into SW phases, phase q holding the
 * columns x with x % SW == q. Output columns ow..ow + VW then read, for
 * kernel column kw, VW consecutive floats of phase (kw * DW) % SW: one
 * vector load at any stride. Each such vector serves every output row of
 * the pass whose window holds its input row, so the OR rows' sums, OR
 * floatv, take one load per input row and kernel column.
 *
 * Every output is computed by the same sums whatever box or work-item
 * holds it, so a split layer equals the whole bit for bit.
 *
 * Build options: -DVW (8 or 16), -DKH, -DKW (window), -DSH, -DSW
 * (strides), -DDH, -DDW (dilations), -DOR (output rows per pass), -DCW
 * (output columns per pass, a multiple of VW). */
#include "clnn_common.h"
#include "clnn_vector.h"

#ifndef KH
#define KH 3
#endif
#ifndef KW
#define KW 3
#endif
#ifndef SH
#define SH 1
#endif
#ifndef SW
#define SW 1
#endif
#ifndef DH
#define DH 1
#endif
#ifndef DW
#define DW 1
#endif
#ifndef OR
#define OR 4
#endif
#ifndef CW
#define CW (8 * VW)
#endif

/* input rows a pass reads; floats of a row's phase */
#define IR ((OR - 1) * SH + (KH - 1) * DH + 1)
#define PL (CW + (KW - 1) * DW / SW)

/* d[q * PL + i] = the input row src at column x + SW * i + q (0 outside
 * 0..W), for i < n (n <= PL) */
CLNN_INLINE void clnn_dw_copy_row(float *d, __global const float *src, const int x0, const int W, const int n)
{
    for (int q = 0; q < SW; q++, d += PL) {
        const int x = x0 + q;
        /* i in lo..hi reads inside the row (ternaries: min and max are calls in older PoCLs) */
        int lo = x >= 0 ? 0 : (-x + SW - 1) / SW;
        int hi = W - x > 0 ? (W - x + SW - 1) / SW : 0;
        hi = hi < n ? hi : n;
        lo = lo < hi ? lo : hi;
        int i = 0;
        for (; i < lo; i++)
            d[i] = 0.0f;
        if (SW == 1) {
            for (; i + VW <= hi; i += VW)
                CLNN_STOREPV(d + i, CLNN_LOADV(src + x + i));
            /* the rest as the vector that ends the run (lanes copied twice) */
            if (i < hi && hi - lo >= VW) {
                CLNN_STOREPV(d + hi - VW, CLNN_LOADV(src + x + hi - VW));
                i = hi;
            }
        } else if (SW == 2) {
            /* the even lanes of two vectors, while both lie inside the row */
            for (; i + VW <= hi && x + 2 * (i + VW) <= W; i += VW)
                CLNN_STOREPV(d + i, CLNN_EVEN_LANES(CLNN_LOADV(src + x + 2 * i),
                                                    CLNN_LOADV(src + x + 2 * i + VW)));
        }
        for (; i < hi; i++)
            d[i] = src[x + i * SW];
        for (; i < n; i++)
            d[i] = 0.0f;
    }
}

__kernel CLNN_WORK_GROUP(1, 1, 1)
void clnn_conv_depthwise_cpu(CLNN_TENSOR(out), CLNN_CTENSOR(in), __global const float *w,
                             __global const float *bias, CLNN_CTENSOR(res),
                             const int H, const int W, const int OH, const int OW, const int pt, const int pl,
                             const int mult, const int n0, const int c0, const int h0, const int bc,
                             const int bh, const int act, const float alpha, const float beta,
                             const int has_bias, const int has_res, const int cb, const int rb)
{
    floatv rows_v[(IR * SW * PL + VW - 1) / VW];
    float *rows = (float *)rows_v;
    const int n = n0 + get_global_id(2);
    const int ca = c0 + get_global_id(1) * cb, cz = min(ca + cb, c0 + bc);
    const int ra = h0 + get_global_id(0) * rb, rz = min(ra + rb, h0 + bh);
    /* the input rows that rows ra..rz read end here (within Conv2d.input_box's) */
    const int row_hi = min(H, (rz - 1) * SH - pt + (KH - 1) * DH + 1);

    for (int c = ca; c < cz; c++) {
        float wk[KH * KW];
#pragma unroll
        for (int t = 0; t < KH * KW; t++)
            wk[t] = w[c * KH * KW + t];
        const float bv = has_bias ? bias[c] : 0.0f;
        __global const float *src = in + in_off + n * in_ns + c / mult * H * W;
        for (int oh = ra; oh < rz; oh += OR) {
            for (int oc = 0; oc < OW; oc += CW) {
                const int cols = min(CW, OW - oc);
                /* the phases' floats that the pass's vectors read */
                const int used = (cols + VW - 1) / VW * VW + (KW - 1) * DW / SW;
                for (int j = 0; j < IR; j++) {
                    const int ih = oh * SH - pt + j;
                    float *d = rows + j * SW * PL;
                    if (ih >= 0 && ih < row_hi) {
                        clnn_dw_copy_row(d, src + ih * W, oc * SW - pl, W, used);
                    } else {
                        for (int q = 0; q < SW; q++)
                            for (int i = 0; i < used; i++)
                                d[q * PL + i] = 0.0f;
                    }
                }
                for (int vv = 0; vv < cols; vv += VW) {
                    /* a pass of at least a vector ends on a whole vector,
                     * overlapping the one before: it stores lanes that the
                     * same sums gave before, and no lane one at a time */
                    const int v = vv + VW > cols && cols >= VW ? cols - VW : vv;
                    floatv acc[OR];
#pragma unroll
                    for (int r = 0; r < OR; r++)
                        acc[r] = 0.0f;
#pragma unroll
                    for (int j = 0; j < IR; j++) {
#pragma unroll
                        for (int kw = 0; kw < KW; kw++) {
                            const floatv x = CLNN_LOADPV(rows + (j * SW + kw * DW % SW) * PL + v + kw * DW / SW);
#pragma unroll
                            for (int r = 0; r < OR; r++) {
                                /* input row j is kernel row (j - r * SH) / DH of output row r */
                                const int k = j - r * SH;
                                if (k >= 0 && k % DH == 0 && k / DH < KH)
                                    acc[r] += wk[k / DH * KW + kw] * x;
                            }
                        }
                    }
#pragma unroll
                    for (int r = 0; r < OR; r++) {
                        if (oh + r >= rz)
                            break;
                        __global float *o = out + CLNN_AT(out, n, c, oh + r, oc + v, OH, OW);
                        __global const float *rs = has_res ? res + CLNN_AT(res, n, c, oh + r, oc + v, OH, OW) : 0;
                        if (cols >= VW) {
                            /* a whole vector, finished in line */
                            CLNN_STOREV(o, clnn_finishv(acc[r], bv, rs, act, alpha, beta));
                            continue;
                        }
                        const floatv sum = acc[r];
                        clnn_finish_store(o, (const float *)&sum, cols, bv, rs, act, alpha, beta);
                    }
                }
            }
        }
    }
}

/* Small planes (stride 1, dilation 1): rows of fewer columns than a few
 * vectors leave most lanes of the kernel above idle and its row copies and
 * stores lane by lane. Here one work-item takes rows ra..rz of channels
 * ca..cz of one batch item as flat runs: it copies the in_rows = rows + KH - 1
 * input rows its output rows read into private memory at a pitch of
 * OW + KW - 1 floats (the left and right padding as zero columns, zero
 * rows outside the input), where output (r, x) at flat position
 * q = r * pitch + x sums in[q + kh * pitch + kw] over the window: vectors of VW
 * consecutive q, one load per tap whatever the row boundaries, the lanes at
 * x >= OW computed and dropped. The rows are then packed to their OW
 * columns and stored as the output holds them, a run of rows * OW floats of
 * one channel: whole vectors, the last one ending at the run's end
 * (overlapping the one before with the same values). FLAT_FLOATS bounds
 * in_rows * pitch (the host picks this kernel where it fits). */
#ifndef FLAT_FLOATS
#define FLAT_FLOATS 2048
#endif

__kernel CLNN_WORK_GROUP(1, 1, 1)
void clnn_conv_depthwise_flat_cpu(CLNN_TENSOR(out), CLNN_CTENSOR(in), __global const float *w,
                                  __global const float *bias, CLNN_CTENSOR(res),
                                  const int H, const int W, const int OH, const int OW, const int pt,
                                  const int pl, const int mult, const int n0, const int c0, const int h0,
                                  const int bc, const int bh, const int act, const float alpha,
                                  const float beta, const int has_bias, const int has_res, const int cb,
                                  const int rb)
{
    /* padded input rows; sums at the padded pitch; the same packed to OW
     * columns (each with a vector's slack: whole vectors run past the end) */
    floatv pad_v[(FLAT_FLOATS + 2 * VW) / VW], sums_v[(FLAT_FLOATS + 2 * VW) / VW], packed_v[(FLAT_FLOATS + VW) / VW];
    float *pad = (float *)pad_v, *sums = (float *)sums_v, *packed = (float *)packed_v;
    const int n = n0 + get_global_id(2);
    const int ca = c0 + get_global_id(1) * cb, cz = min(ca + cb, c0 + bc);
    const int ra = h0 + get_global_id(0) * rb, rz = min(ra + rb, h0 + bh);
    const int rows = rz - ra, pitch = OW + KW - 1, in_rows = rows + KH - 1;
    /* flat positions whose sums are kept, in whole vectors (packing reads
     * up to a vector past the last row's OW columns) */
    const int positions = (rows - 1) * pitch + (OW + VW - 1) / VW * VW;
    const int total = rows * OW;

    for (int i = 0; i < in_rows * pitch + 2 * VW; i++)
        pad[i] = 0.0f;
    for (int c = ca; c < cz; c++) {
        float wk[KH * KW];
        for (int t = 0; t < KH * KW; t++)
            wk[t] = w[c * KH * KW + t];
        const float bv = has_bias ? bias[c] : 0.0f;
        __global const float *src = in + in_off + n * in_ns + c / mult * H * W;
        /* input columns 0..W of row ih go to pad[j * pitch + pl ..]; the
         * columns outside stay zero from the start, rows outside are zeroed */
        for (int j = 0; j < in_rows; j++) {
            const int ih = ra - pt + j;
            float *d = pad + j * pitch + pl;
            if (ih >= 0 && ih < H) {
                /* a row of at least a vector as whole vectors, the last
                 * ending at the row's end; a shorter one float by float
                 * (a vector would read past the input's last row) */
                __global const float *row = src + ih * W;
                int x = 0;
                for (; x + VW <= W; x += VW)
                    CLNN_STOREPV(d + x, CLNN_LOADV(row + x));
                if (x < W && W >= VW)
                    CLNN_STOREPV(d + W - VW, CLNN_LOADV(row + W - VW));
                else
                    for (; x < W; x++)
                        d[x] = row[x];
            } else {
                for (int x = 0; x < pitch - pl; x++)
                    d[x] = 0.0f;
            }
        }
        for (int q = 0; q < positions; q += VW) {
            floatv acc = 0.0f;
#pragma unroll
            for (int kh = 0; kh < KH; kh++)
#pragma unroll
                for (int kw = 0; kw < KW; kw++)
                    acc += wk[kh * KW + kw] * CLNN_LOADPV(pad + q + kh * pitch + kw);
            CLNN_STOREPV(sums + q, acc);
        }
        for (int r = 0; r < rows; r++)
            for (int x = 0; x < OW; x += VW)
                CLNN_STOREPV(packed + r * OW + x, CLNN_LOADPV(sums + r * pitch + x));
        __global float *o = out + CLNN_AT(out, n, c, ra, 0, OH, OW);
        __global const float *rs = has_res ? res + CLNN_AT(res, n, c, ra, 0, OH, OW) : 0;
        if (total < VW) {
            clnn_finish_store(o, packed, total, bv, rs, act, alpha, beta);
            continue;
        }
        for (int i = 0; i < total; i += VW) {
            const int at = i + VW > total ? total - VW : i;
            CLNN_STOREV(o + at, clnn_finishv(CLNN_LOADPV(packed + at), bv, has_res ? rs + at : 0, act, alpha, beta));
        }
    }
}
