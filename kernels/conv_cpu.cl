/* Convolution (and Dense) as an implicit GEMM tuned for CPUs.
 *
 * One work-item computes 16 pixels of the box for PB panels of MR output
 * channels. It packs the 16 im2col columns, KC rows at a time, into local
 * memory (bounds tests happen once per run of pixels along a row), then
 * runs an MR x 16 register-blocked micro-kernel over each panel: MR broadcast weights times
 * two float8 rows per k, the shape that keeps the CPU's vector FMA units
 * busy. Weights come packed by panels, wpk[(panel * K + k) * MR + i] for
 * channel panel * MR + i (zero past the last channel), so each k reads MR
 * neighbouring floats. Panels are aligned to channel 0: a box starting at a
 * channel that is not a multiple of MR computes the panel around it and
 * stores only its own channels.
 *
 * The packed columns are reused by every panel of the work-item, so more
 * panels per work-item (pb, at most PB) pay less packing per output; the
 * host lowers pb where that would leave cores idle.
 *
 * Build options: -DMR (4 or 6 or 8), -DPB (most panels a work-item takes),
 * -DKC (im2col rows packed at a time). */
#include "clnn_common.h"

#ifndef MR
#define MR 6
#endif
#ifndef PB
#define PB 96
#endif
#ifndef KC
#define KC 256
#endif

#define NR 16

__kernel CLNN_WORK_GROUP(1, 1, 1)
void clnn_conv_gemm_cpu(CLNN_TENSOR(out), CLNN_CTENSOR(in), __global const float *wpk,
                        __global const float *bias, CLNN_CTENSOR(res), __global const int4 *ktab,
                        const int M, const int K, const int H, const int W, const int OW,
                        const int sh, const int sw, const int pt, const int pl,
                        const int n0, const int c0, const int h0, const int bc, const int bh,
                        const int OH, const int P, const int act, const float alpha, const float beta,
                        const int has_bias, const int has_res, const int pb)
{
    __local float8 panel8[KC * 2];
    CLNN_LOCAL_PTR float *panel = (CLNN_LOCAL_PTR float *)panel8;
    float8 acc_mem8[PB * MR * 2];
    const int p0 = get_global_id(0) * NR;
    const int first_panel = c0 / MR + get_global_id(1) * pb;
    const int last_panel = min(first_panel + pb, (c0 + bc + MR - 1) / MR);
    const int box_plane = bh * OW;

    /* The 16 pixels fall into runs along output rows; a run reads one input
     * row at stride sw, so packing copies runs, not single elements. */
    int run_j[NR], run_len[NR], run_base[NR], run_ih[NR], run_iw[NR], run_out[NR], run_res[NR];
    int runs = 0;
    for (int j = 0; j < NR && p0 + j < P;) {
        const int p = p0 + j;
        const int n = n0 + p / box_plane;
        const int rem = p % box_plane;
        const int ow = rem % OW;
        const int len = min(NR - j, min(OW - ow, P - p));
        const int oh = h0 + rem / OW;
        run_j[runs] = j;
        run_len[runs] = len;
        run_base[runs] = in_off + n * in_ns;
        run_ih[runs] = oh * sh - pt;
        run_iw[runs] = ow * sw - pl;
        /* where the run's first pixel goes in channel 0 (and where its
         * residual comes from), so stores need no divisions */
        run_out[runs] = CLNN_AT(out, n, 0, oh, ow, OH, OW);
        run_res[runs] = CLNN_AT(res, n, 0, oh, ow, OH, OW);
        runs++;
        j += len;
    }
    const int filled = runs ? run_j[runs - 1] + run_len[runs - 1] : 0;
    for (int i = 0; i < pb * MR * 2; i++)
        acc_mem8[i] = 0.0f;

    for (int k0 = 0; k0 < K; k0 += KC) {
        const int kc = min(KC, K - k0);
        for (int kk = 0; kk < kc; kk++) {
            const int4 t = ktab[k0 + kk];
            CLNN_LOCAL_PTR float *dst = panel + kk * NR;
            for (int r = 0; r < runs; r++) {
                CLNN_LOCAL_PTR float *d = dst + run_j[r];
                const int len = run_len[r];
                const int ih = run_ih[r] + t.y;
                const int iw = run_iw[r] + t.z;
                /* columns lo..hi of the run fall inside the input row */
                int lo = 0, hi = 0;
                if (ih >= 0 && ih < H) {
                    lo = iw >= 0 ? 0 : (-iw + sw - 1) / sw;
                    hi = W - iw > 0 ? min(len, (W - iw + sw - 1) / sw) : 0;
                    lo = min(lo, hi);
                }
                __global const float *src = in + run_base[r] + t.x + ih * W + iw;
                for (int j = 0; j < lo; j++)
                    d[j] = 0.0f;
                if (sw == 1) {
                    for (int j = lo; j < hi; j++)
                        d[j] = src[j];
                } else {
                    for (int j = lo; j < hi; j++)
                        d[j] = src[j * sw];
                }
                for (int j = hi; j < len; j++)
                    d[j] = 0.0f;
            }
            for (int j = filled; j < NR; j++)
                dst[j] = 0.0f;
        }
        for (int q = first_panel; q < last_panel; q++) {
            __global const float *wk = wpk + ((size_t)q * K + k0) * MR;
            float8 *acc = acc_mem8 + (q - first_panel) * MR * 2;
            float8 lo[MR], hi[MR];
#pragma unroll
            for (int i = 0; i < MR; i++) {
                lo[i] = acc[2 * i];
                hi[i] = acc[2 * i + 1];
            }
            for (int kk = 0; kk < kc; kk++) {
                const float8 b0 = panel8[2 * kk];
                const float8 b1 = panel8[2 * kk + 1];
#pragma unroll
                for (int i = 0; i < MR; i++) {
                    const float w = wk[kk * MR + i];
                    lo[i] += w * b0;
                    hi[i] += w * b1;
                }
            }
#pragma unroll
            for (int i = 0; i < MR; i++) {
                acc[2 * i] = lo[i];
                acc[2 * i + 1] = hi[i];
            }
        }
    }

    const float *acc_mem = (const float *)acc_mem8;
    for (int q = first_panel; q < last_panel; q++) {
        for (int i = 0; i < MR; i++) {
            const int c = q * MR + i;
            if (c < c0 || c >= c0 + bc)
                continue;
            const float b = has_bias ? bias[c] : 0.0f;
            const int plane = c * OH * OW;
            const float *acc = acc_mem + ((q - first_panel) * MR + i) * NR;
            for (int r = 0; r < runs; r++) {
                __global float *dst = out + run_out[r] + plane;
                const float *src = acc + run_j[r];
                for (int j = 0; j < run_len[r]; j++) {
                    float v = src[j] + b;
                    if (has_res)
                        v += res[run_res[r] + plane + j];
                    dst[j] = clnn_act(v, act, alpha, beta);
                }
            }
        }
    }
}
