/* Convolution (and Dense) as an implicit GEMM tuned for CPUs.
 *
 * One work-item computes nb blocks of NR = 2 * VW consecutive pixels of the
 * box for pb panels of MR output channels. It packs the blocks' im2col
 * columns, KC rows at a time, into its own memory (bounds tests happen
 * once per run of pixels along a row; for each row of the table it reads
 * the nb blocks' pixels one after the other, a contiguous stretch of the
 * input that the CPU's prefetchers follow), then runs an MR x NR
 * register-blocked micro-kernel for each panel and block: MR broadcast
 * weights times two floatv per k, the shape that keeps the CPU's vector FMA
 * units busy. Weights come packed by panels, wpk[(panel * K + k) * MR + i]
 * for channel panel * MR + i (zero past the last channel), so each k reads
 * MR neighbouring floats. Panels are aligned to channel 0 (grouped: to
 * their group's first channel): a box starting at a channel that is not a
 * multiple of MR computes the panel around it and stores only its own
 * channels.
 *
 * A grouped convolution's weights come packed group by group, gp panels of
 * each group's Mg output channels (zero rows past Mg), so that no panel
 * crosses a group: the grid's axis 1 holds gi work-items for each group
 * that the box touches, each taking pb panels of its group's channels
 * inside the box, packing columns from its group's input channels (in_gs
 * floats further on per group; ktab covers one group's K). Ungrouped
 * layers are one group (Mg = M, gi the grid's axis 1).
 *
 * The packed columns serve every panel of the work-item and the weights
 * every block, so more of both pay less packing and weight traffic per
 * output; the host keeps pb * nb <= PBNB (the accumulators' room between
 * chunks of K) and lowers them where that would leave cores idle. The last
 * chunk ends each micro-tile at once: bias, residual, activation and the
 * stores of its MR channels, which then drain while the next micro-tile
 * computes (stored all at the end, the expansions of MobileNets, few input
 * channels and many outputs, stalled on them). Runs of pixels along a row
 * are stored a vector at a time (clnn_finish_store).
 *
 * A 1x1, stride-1, unpadded convolution (flat) whose work-items take few
 * panels (direct, the host's choice) packs nothing for its blocks of NR
 * pixels of one plane: their columns are read in place, a vector pair per
 * input channel. So does a grouped stride-1 one (direct too) for its blocks
 * of NR pixels of one row whose window lies inside the input, a vector pair
 * per row of the table: a group's few panels would use its packed columns
 * too few times to repay the copy.
 *
 * Build options: -DVW (8 or 16), -DMR (output channels per register block),
 * -DKC (im2col rows packed at a time), -DNB (most pixel blocks a work-item
 * takes), -DPBNB (most panels x blocks). */
#include "clnn_common.h"
#include "clnn_vector.h"

#ifndef MR
#define MR 6
#endif
#ifndef KC
#define KC 64
#endif
#ifndef NB
#define NB 2
#endif
#ifndef PBNB
#define PBNB 8
#endif
/* rows of the im2col table ahead of the copy whose input it prefetches */
#ifndef PREFETCH_ROWS
#define PREFETCH_ROWS 8
#endif

#define NR (2 * VW)

/* one k of the micro-kernel: the MR weights of row kk times the block's
 * two vectors of column k */
#define CLNN_MICRO_STEP(b0_, b1_) \
    do { \
        const floatv b0 = (b0_), b1 = (b1_); \
        _Pragma("unroll") \
        for (int i = 0; i < MR; i++) { \
            const float w = wk[kk * MR + i]; \
            lo[i] += w * b0; \
            hi[i] += w * b1; \
        } \
    } while (0)

__kernel CLNN_WORK_GROUP(1, 1, 1)
void clnn_conv_gemm_cpu(CLNN_TENSOR(out), CLNN_CTENSOR(in), __global const float *wpk,
                        __global const float *bias, CLNN_CTENSOR(res), __global const int4 *ktab,
                        const int M, const int K, const int Mg, const int gp, const int gi, const int in_gs,
                        const int H, const int W, const int OW,
                        const int sh, const int sw, const int pt, const int pl,
                        const int n0, const int c0, const int h0, const int bc, const int bh,
                        const int OH, const int P, const int act, const float alpha, const float beta,
                        const int has_bias, const int has_res, const int flat, const int direct,
                        const int pb, const int nb)
{
    floatv panel_v[NB * KC * 2];
    float *panel = (float *)panel_v;
    floatv acc[PBNB * MR * 2];
    const int p_first = get_global_id(0) * nb * NR;
    const int blocks = min(nb, (P - p_first + NR - 1) / NR);
    /* the group, the box's channels within it (gc0 to gc1) and this
     * work-item's panels of it (work-items past the box's part of its first
     * or last group take none) */
    const int g = c0 / Mg + get_global_id(1) / gi;
    const int gc0 = max(c0 - g * Mg, 0), gc1 = min(c0 + bc - g * Mg, Mg);
    const int first_panel = gc0 / MR + get_global_id(1) % gi * pb;
    const int last_panel = min(first_panel + pb, (gc1 + MR - 1) / MR);
    if (first_panel >= last_panel)
        return;
    const int box_plane = bh * OW;

    /* A block's pixels fall into runs along output rows; a run reads one
     * input row at stride sw, so packing copies runs, not single elements.
     * Block b's runs are run_*[b * NR ..], run_count[b] of them. A 1x1,
     * stride-1, unpadded convolution (flat) reads its input plane as the
     * output plane is laid out: its runs go on across rows. */
    int run_j[NB * NR], run_len[NB * NR], run_base[NB * NR], run_ih[NB * NR], run_iw[NB * NR];
    int run_out[NB * NR], run_res[NB * NR], run_count[NB], in_place[NB];
    /* the window's reach below and right of its first tap (the last row of
     * the table: the last channel's last kernel row and column) */
    const int4 reach = ktab[K - 1];
    for (int b = 0; b < blocks; b++) {
        const int p0 = p_first + b * NR;
        int runs = 0;
        for (int j = 0; j < NR && p0 + j < P;) {
            const int p = p0 + j;
            const int n = n0 + p / box_plane;
            const int rem = p % box_plane;
            const int ow = rem % OW;
            const int len = min(NR - j, min(flat ? box_plane - rem : OW - ow, P - p));
            const int oh = h0 + rem / OW;
            const int r = b * NR + runs;
            run_j[r] = j;
            run_len[r] = len;
            run_base[r] = in_off + n * in_ns + g * in_gs;
            run_ih[r] = oh * sh - pt;
            run_iw[r] = ow * sw - pl;
            /* where the run's first pixel goes in channel 0 (and where its
             * residual comes from), so stores need no divisions */
            run_out[r] = CLNN_AT(out, n, 0, oh, ow, OH, OW);
            run_res[r] = CLNN_AT(res, n, 0, oh, ow, OH, OW);
            runs++;
            j += len;
        }
        run_count[b] = runs;
        const int r0 = b * NR;
        in_place[b] = direct && runs == 1 && run_len[r0] == NR &&
                      (flat || (sw == 1 && run_ih[r0] >= 0 && run_ih[r0] + reach.y < H && run_iw[r0] >= 0 &&
                                run_iw[r0] + NR + reach.z <= W));
    }
    for (int k0 = 0; k0 < K; k0 += KC) {
        const int kc = min(KC, K - k0);
        for (int kk = 0; kk < kc; kk++) {
            const int4 t = ktab[k0 + kk];
            for (int b = 0; b < blocks; b++) {
                if (in_place[b])
                    continue;   /* read in place (below) */
                float *dst = panel + (b * KC + kk) * NR;
                int filled = 0;
                for (int r = b * NR; r < b * NR + run_count[b]; r++) {
                    float *d = dst + run_j[r];
                    const int len = run_len[r];
                    const int ih = run_ih[r] + t.y;
                    const int iw = run_iw[r] + t.z;
                    /* columns lo..hi of the run fall inside the input row
                     * (ternaries: min and max are calls in older PoCLs) */
                    int lo = 0, hi = flat ? len : 0;
                    if (!flat && ih >= 0 && ih < H) {
                        lo = iw >= 0 ? 0 : (-iw + sw - 1) / sw;
                        hi = W - iw > 0 ? (W - iw + sw - 1) / sw : 0;
                        hi = hi < len ? hi : len;
                        lo = lo < hi ? lo : hi;
                    }
                    __global const float *src = in + run_base[r] + t.x + ih * W + iw;
                    if (kk + PREFETCH_ROWS < kc) {
                        /* the run's row PREFETCH_ROWS rows of the table on:
                         * a 1x1's next planes are far apart, and waiting for
                         * each row in turn left the copy bound by latency */
                        const int4 ahead = ktab[k0 + kk + PREFETCH_ROWS];
                        __global const float *next = in + run_base[r] + ahead.x + (run_ih[r] + ahead.y) * W +
                                                     run_iw[r] + ahead.z;
                        for (int j = 0; j < len * sw; j += 16)   /* 16 floats: a 64-byte line */
                            CLNN_PREFETCH(next + j);
                    }
                    for (int j = 0; j < lo; j++)
                        d[j] = 0.0f;
                    if (sw == 1) {
                        for (int j = lo; j < hi; j++)
                            d[j] = src[j];
                    } else if (sw == 2 && lo == 0 && hi == NR && iw + 2 * NR <= W) {
                        /* a whole block at stride 2 (its row holds the
                         * last, odd, lane too): the even lanes of four vectors */
                        floatv *dv = (floatv *)d;
                        dv[0] = CLNN_EVEN_LANES(CLNN_LOADV(src), CLNN_LOADV(src + VW));
                        dv[1] = CLNN_EVEN_LANES(CLNN_LOADV(src + 2 * VW), CLNN_LOADV(src + 3 * VW));
                    } else {
                        for (int j = lo; j < hi; j++)
                            d[j] = src[j * sw];
                    }
                    for (int j = hi; j < len; j++)
                        d[j] = 0.0f;
                    filled = run_j[r] + len;
                }
                for (int j = filled; j < NR; j++)
                    dst[j] = 0.0f;
            }
        }
        /* the first chunk starts its sums at zero; the last one ends them
         * in the epilogue at once, its stores draining while the next
         * micro-tile computes (sums kept back in acc only between chunks) */
        const bool first = k0 == 0, last = k0 + kc >= K;
        for (int q = first_panel; q < last_panel; q++) {
            __global const float *wk = wpk + ((size_t)(g * gp + q) * K + k0) * MR;
            for (int b = 0; b < blocks; b++) {
                /* a single chunk keeps no sums (and may take more panels
                 * x blocks than acc holds) */
                floatv *a = acc + (first && last ? 0 : ((q - first_panel) * blocks + b) * MR * 2);
                const floatv *pv = panel_v + b * KC * 2;
                floatv lo[MR], hi[MR];
#pragma unroll
                for (int i = 0; i < MR; i++) {
                    lo[i] = first ? 0.0f : a[2 * i];
                    hi[i] = first ? 0.0f : a[2 * i + 1];
                }
                if (in_place[b]) {
                    /* a block of NR pixels, row k of its columns read
                     * where the input holds it: a 1x1's from one plane after
                     * the other, others where the table's row points */
                    const int r0 = b * NR, plane_in = H * W;
                    __global const float *src = in + run_base[r0] + run_ih[r0] * W + run_iw[r0];
                    if (flat) {
                        src += (size_t)k0 * plane_in;
                        for (int kk = 0; kk < kc; kk++, src += plane_in)
                            CLNN_MICRO_STEP(CLNN_LOADV(src), CLNN_LOADV(src + VW));
                    } else {
                        for (int kk = 0; kk < kc; kk++) {
                            const int4 t = ktab[k0 + kk];
                            __global const float *s = src + t.x + t.y * W + t.z;
                            CLNN_MICRO_STEP(CLNN_LOADV(s), CLNN_LOADV(s + VW));
                        }
                    }
                } else {
                    for (int kk = 0; kk < kc; kk++)
                        CLNN_MICRO_STEP(pv[2 * kk], pv[2 * kk + 1]);
                }
                if (!last) {
#pragma unroll
                    for (int i = 0; i < MR; i++) {
                        a[2 * i] = lo[i];
                        a[2 * i + 1] = hi[i];
                    }
                    continue;
                }
                const int r0 = b * NR;
                const bool whole = run_count[b] == 1 && run_len[r0] == NR;
#pragma unroll
                for (int i = 0; i < MR; i++) {
                    const int gc = q * MR + i, c = g * Mg + gc;
                    if (gc < gc0 || gc >= gc1)
                        continue;
                    const float bv = has_bias ? bias[c] : 0.0f;
                    const int plane = c * OH * OW;
                    if (whole) {
                        /* one run of NR pixels: two vectors */
                        __global float *o = out + run_out[r0] + plane;
                        __global const float *rs = has_res ? res + run_res[r0] + plane : 0;
                        CLNN_STOREV(o, clnn_finishv(lo[i], bv, rs, act, alpha, beta));
                        CLNN_STOREV(o + VW, clnn_finishv(hi[i], bv, has_res ? rs + VW : 0, act, alpha, beta));
                        continue;
                    }
                    /* a vector past the last run's start (clnn_finish_store reads one) */
                    floatv sums[3] = {lo[i], hi[i], 0.0f};
                    const float *s = (const float *)sums;
                    for (int r = r0; r < r0 + run_count[b]; r++) {
                        for (int j = 0; j < run_len[r]; j += VW)
                            clnn_finish_store(out + run_out[r] + plane + j, s + run_j[r] + j,
                                              min(VW, run_len[r] - j), bv,
                                              has_res ? res + run_res[r] + plane + j : 0, act, alpha, beta);
                    }
                }
            }
        }
    }
}
