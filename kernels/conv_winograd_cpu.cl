/* 3x3 stride-1 convolution for CPUs by Winograd's F(4x4, 3x3) or
 * F(2x2, 3x3) (-DWT=4 or 2, the tile's side): each WT x WT block of
 * outputs (a tile) comes from a WP x WP patch of the input (WP = WT + 2) as
 * Y = A^T [sum_c (G g_c G^T) . (B^T d_c B)] A: WXI = WP^2 multiplications
 * per tile and channel pair where the direct sum takes 9 WT^2 (36 for 144,
 * 16 for 36). F(2x2) suits small maps, whose few tiles leave F(4x4)'s
 * vectors of tiles mostly empty.
 *
 * One work-item computes tb blocks of NT = 2 * VW tiles (a block fills the
 * lanes of two floatv) for pb panels of MR output channels. For each chunk
 * of KC input channels it transforms its blocks' patches, V[block][xi][k]
 * (the transform runs on vectors across a block's tiles), then for each
 * panel and each of the WXI points xi loads the MR transformed weights of
 * each input channel once and multiplies them by the NT values of every
 * block in an MR x NT register block, adding to the accumulators
 * M[block][panel][xi][i]. At the end it transforms those back into tiles
 * of outputs, adds bias and residual, applies the activation and stores the
 * tiles' pixels that lie inside the box. More panels per work-item reuse
 * the input transform more; more blocks reuse the weights more.
 *
 * Tiles start at output rows that are multiples of WT and are numbered
 * over the box (batch item, tile row, tile column); a box stores only its
 * own rows of the tiles that straddle its edges. Each output is thus
 * computed from the same values whatever box holds it, and a split layer
 * equals the whole bit for bit. A tile reads the input rows its tile rows
 * need (Conv2d.input_box widens a box to whole tiles of 4 rows, enough for
 * both tile sizes) and zeros outside the input.
 *
 * Weights come transformed and packed by the host (clnn.ops.conv_cpu):
 * u[(((q * chunks + c / KC) * WXI + xi) * KC + c % KC) * MR + i] =
 * (G w G^T)[xi] of output channel q * MR + i and input channel c, zero past
 * the last channels, so that one panel and chunk is one contiguous run.
 *
 * Build options: -DWT (4 or 2), -DVW (8 or 16), -DMR (output channels per
 * register block), -DKC (input channels transformed at a time), -DTB (most
 * tile blocks a work-item takes), -DTPB (most blocks x panels, the
 * accumulators' room); the host passes tb <= TB and pb with tb * pb <= TPB. */
#include "clnn_common.h"
#include "clnn_vector.h"

#ifndef WT
#define WT 4
#endif
#ifndef MR
#define MR 6
#endif
#ifndef KC
#define KC 8
#endif
#ifndef TB
#define TB 1
#endif
#ifndef TPB
#define TPB 4
#endif

#define NT (2 * VW)
#define WP (WT + 2)
#define WXI (WP * WP)

/* The 1-D steps of the transforms on WP values s[0], s[ss], ..: the input
 * transform B^T s into d[0], d[ds], .. (WP values), the output transform
 * A^T s into d (WT values). */
#if WT == 4
#define WINO_BT(s, ss, d, ds) \
    do { \
        const floatv wb_a = s[4 * (ss)] - s[2 * (ss)], wb_b = s[3 * (ss)] - s[ss]; \
        d[0] = 4.0f * s[0] - 5.0f * s[2 * (ss)] + s[4 * (ss)]; \
        d[ds] = s[3 * (ss)] + s[4 * (ss)] - 4.0f * (s[ss] + s[2 * (ss)]); \
        d[2 * (ds)] = s[4 * (ss)] - s[3 * (ss)] + 4.0f * (s[ss] - s[2 * (ss)]); \
        d[3 * (ds)] = wb_a + 2.0f * wb_b; \
        d[4 * (ds)] = wb_a - 2.0f * wb_b; \
        d[5 * (ds)] = 4.0f * s[ss] - 5.0f * s[3 * (ss)] + s[5 * (ss)]; \
    } while (0)
#define WINO_AT(s, ss, d, ds) \
    do { \
        const floatv wa_a = s[ss] + s[2 * (ss)], wa_b = s[ss] - s[2 * (ss)]; \
        const floatv wa_c = s[3 * (ss)] + s[4 * (ss)], wa_d = s[3 * (ss)] - s[4 * (ss)]; \
        d[0] = s[0] + wa_a + wa_c; \
        d[ds] = wa_b + 2.0f * wa_d; \
        d[2 * (ds)] = wa_a + 4.0f * wa_c; \
        d[3 * (ds)] = wa_b + 8.0f * wa_d + s[5 * (ss)]; \
    } while (0)
#elif WT == 2
#define WINO_BT(s, ss, d, ds) \
    do { \
        d[0] = s[0] - s[2 * (ss)]; \
        d[ds] = s[ss] + s[2 * (ss)]; \
        d[2 * (ds)] = s[2 * (ss)] - s[ss]; \
        d[3 * (ds)] = s[ss] - s[3 * (ss)]; \
    } while (0)
#define WINO_AT(s, ss, d, ds) \
    do { \
        d[0] = s[0] + s[ss] + s[2 * (ss)]; \
        d[ds] = s[ss] - s[2 * (ss)] - s[3 * (ss)]; \
    } while (0)
#else
#error "WT must be 4 or 2"
#endif

__kernel CLNN_WORK_GROUP(1, 1, 1)
void clnn_conv_winograd_cpu(CLNN_TENSOR(out), CLNN_CTENSOR(in), __global const float *u,
                            __global const float *bias, CLNN_CTENSOR(res),
                            const int M, const int C, const int H, const int W, const int OH, const int OW,
                            const int pt, const int pl, const int n0, const int c0, const int h0,
                            const int bc, const int bh, const int bn, const int act, const float alpha,
                            const float beta, const int has_bias, const int has_res, const int tb,
                            const int pb)
{
    floatv vt[TB * WXI * KC * 2];
    floatv acc[TPB * WXI * MR * 2];
    floatv patch[WXI * 2];
    float *patch_f = (float *)patch;
    /* tiles start at rows that are multiples of WT, wherever the box
     * starts, so that an output's arithmetic does not depend on the box */
    const int top = h0 / WT * WT, bottom = min((h0 + bh + WT - 1) / WT * WT, OH);
    const int tw = (OW + WT - 1) / WT, th = (h0 + bh - top + WT - 1) / WT;
    const int tiles = bn * th * tw;
    const int t0 = get_global_id(0) * tb * NT;
    const int blocks = min(tb, (tiles - t0 + NT - 1) / NT);
    const int chunks = (C + KC - 1) / KC;
    const int first_panel = c0 / MR + get_global_id(1) * pb;
    const int last_panel = min(first_panel + pb, (c0 + bc + MR - 1) / MR);
    const int np = last_panel - first_panel;
    /* the input rows the box reads (within Conv2d.input_box's) */
    const int row_lo = max(top - pt, 0), row_hi = min(bottom + 2 - pt, H);

    /* per tile: where its patch starts in the input, whether all of the
     * patch is inside, and where its outputs go; lanes past the last tile
     * repeat it and store nothing */
    int t_in[TB * NT], t_row[TB * NT], t_col[TB * NT], t_inside[TB * NT];
    int t_out[TB * NT], t_res[TB * NT], t_r0[TB * NT], t_r1[TB * NT], t_cols[TB * NT];
    for (int t = 0; t < blocks * NT; t++) {
        const int tile = min(t0 + t, tiles - 1);
        const int n = n0 + tile / (th * tw), r = tile % (th * tw);
        const int oh = top + r / tw * WT, ow = r % tw * WT;
        t_row[t] = oh - pt;
        t_col[t] = ow - pl;
        t_in[t] = in_off + n * in_ns;
        t_inside[t] = t_row[t] >= row_lo && t_row[t] + WP <= row_hi && t_col[t] >= 0 && t_col[t] + WP <= W;
        t_out[t] = CLNN_AT(out, n, 0, oh, ow, OH, OW);
        t_res[t] = CLNN_AT(res, n, 0, oh, ow, OH, OW);
        /* rows r0..r1 of the tile are in the box */
        t_r0[t] = max(h0 - oh, 0);
        t_r1[t] = t0 + t < tiles ? min(WT, h0 + bh - oh) : 0;
        t_cols[t] = min(WT, OW - ow);
    }
    for (int i = 0; i < blocks * np * WXI * MR * 2; i++)
        acc[i] = 0.0f;

    for (int ck = 0; ck < C; ck += KC) {
        const int kc = min(KC, C - ck);
        for (int bl = 0; bl < blocks; bl++) {
            for (int k = 0; k < kc; k++) {
                /* gather the patches, tile t in lane t: patch_f[(r * WP + j) * NT + t] */
                for (int t = 0; t < NT; t++) {
                    const int tt = bl * NT + t;
                    __global const float *src = in + t_in[tt] + (ck + k) * H * W;
                    const int r0 = t_row[tt], j0 = t_col[tt];
                    if (t_inside[tt]) {
                        src += r0 * W + j0;
#pragma unroll
                        for (int r = 0; r < WP; r++)
#pragma unroll
                            for (int j = 0; j < WP; j++)
                                patch_f[(r * WP + j) * NT + t] = src[r * W + j];
                    } else {
                        for (int r = 0; r < WP; r++) {
                            const int ih = r0 + r;
                            const int row_in = ih >= row_lo && ih < row_hi;
                            for (int j = 0; j < WP; j++) {
                                const int iw = j0 + j;
                                patch_f[(r * WP + j) * NT + t] =
                                    row_in && iw >= 0 && iw < W ? src[ih * W + iw] : 0.0f;
                            }
                        }
                    }
                }
                /* V = B^T d B on both halves, into vt[((bl * WXI + xi) * KC + k) * 2 + half] */
                for (int h = 0; h < 2; h++) {
                    floatv x[WXI];
#pragma unroll
                    for (int j = 0; j < WP; j++)
                        WINO_BT((patch + j * 2 + h), WP * 2, (x + j), WP);
                    floatv *v = vt + (bl * WXI * KC + k) * 2 + h;
#pragma unroll
                    for (int r = 0; r < WP; r++)
                        WINO_BT((x + r * WP), 1, (v + r * WP * KC * 2), KC * 2);
                }
            }
        }
        for (int q = first_panel; q < last_panel; q++) {
            for (int xi = 0; xi < WXI; xi++) {
                __global const float *wk = u + (((size_t)q * chunks + ck / KC) * WXI + xi) * KC * MR;
                for (int bl = 0; bl < blocks; bl++) {
                    floatv *a = acc + ((bl * np + q - first_panel) * WXI + xi) * MR * 2;
                    const floatv *b = vt + (bl * WXI + xi) * KC * 2;
                    floatv lo[MR], hi[MR];
#pragma unroll
                    for (int i = 0; i < MR; i++) {
                        lo[i] = a[2 * i];
                        hi[i] = a[2 * i + 1];
                    }
                    for (int k = 0; k < kc; k++) {
                        const floatv b0 = b[2 * k];
                        const floatv b1 = b[2 * k + 1];
#pragma unroll
                        for (int i = 0; i < MR; i++) {
                            const float w = wk[k * MR + i];
                            lo[i] += w * b0;
                            hi[i] += w * b1;
                        }
                    }
#pragma unroll
                    for (int i = 0; i < MR; i++) {
                        a[2 * i] = lo[i];
                        a[2 * i + 1] = hi[i];
                    }
                }
            }
        }
    }

    for (int bl = 0; bl < blocks; bl++) {
        for (int q = first_panel; q < last_panel; q++) {
            for (int i = 0; i < MR; i++) {
                const int c = q * MR + i;
                if (c < c0 || c >= c0 + bc)
                    continue;
                const float b = has_bias ? bias[c] : 0.0f;
                const int plane = c * OH * OW;
                for (int h = 0; h < 2; h++) {
                    const floatv *m = acc + (bl * np + q - first_panel) * WXI * MR * 2 + i * 2 + h;
                    floatv s[WT * WP], y[WT * WT];
#pragma unroll
                    for (int j = 0; j < WP; j++)
                        WINO_AT((m + j * MR * 2), WP * MR * 2, (s + j), WP);
#pragma unroll
                    for (int r = 0; r < WT; r++)
                        WINO_AT((s + r * WP), 1, (y + r * WT), 1);
                    float *yf = (float *)y;
                    if (has_res) {
                        /* y[r * WT + j] lane l: pixel (r, j) of tile h * VW + l */
                        for (int l = 0; l < VW; l++) {
                            const int t = bl * NT + h * VW + l;
                            for (int r = t_r0[t]; r < t_r1[t]; r++)
                                for (int j = 0; j < t_cols[t]; j++)
                                    yf[(r * WT + j) * VW + l] += res[t_res[t] + plane + r * OW + j];
                        }
                    }
#pragma unroll
                    for (int e = 0; e < WT * WT; e++)
                        y[e] = clnn_finishv(y[e], b, 0, act, alpha, beta);
                    for (int l = 0; l < VW; l++) {
                        const int t = bl * NT + h * VW + l;
                        __global float *dst = out + t_out[t] + plane;
                        for (int r = t_r0[t]; r < t_r1[t]; r++)
                            for (int j = 0; j < t_cols[t]; j++)
                                dst[r * OW + j] = yf[(r * WT + j) * VW + l];
                    }
                }
            }
        }
    }
}
