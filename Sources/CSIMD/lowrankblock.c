/* Row blocks of a low-rank product c·B·A (the task vectors τ_i of ties / dare / magnitude_prune): every entry is
 * c × (the fused multiply-add chain over r = 0, 1, … of B[i, r]·A[r, j], starting from 0), rounded once more by
 * the product with c. That is the arithmetic of OpenBLAS's SkylakeX sgemm kernel for these calls (checked bit for
 * bit), but here it is the same on every CPU path and for any block shape, and it needs no packing of A and no
 * zeroing of the output (the two took a third of a ties merge's GEMM time at 64 adapters). */
#include <string.h>
#include "csimd.h"
#include "cpu.h"

#pragma clang fp contract(off)

typedef float lanes16 __attribute__((ext_vector_type(16)));

#define LOAD16(p) ({ lanes16 v_; memcpy(&v_, (p), sizeof v_); v_; })
#define STORE16(p, v) do { lanes16 s_ = (v); memcpy((p), &s_, sizeof s_); } while (0)

enum { ROWS = 8 };

/* 8 rows × 16 columns per step: each A load feeds 8 chains; A's rows stream from cache once per 8 rows of out. */
#define BLOCK_BODY                                                                                             \
    long full = cols / 16 * 16;                                                                                \
    for (long i0 = 0; i0 < rows; i0 += ROWS) {                                                                 \
        int live = rows - i0 < ROWS ? (int)(rows - i0) : ROWS;                                                 \
        const float *bi = b + i0 * rank;                                                                       \
        for (long j = 0; j < full; j += 16) {                                                                  \
            lanes16 acc[ROWS];                                                                                 \
            for (int u = 0; u < ROWS; u++) acc[u] = (lanes16)0;                                                \
            for (long r = 0; r < rank; r++) {                                                                  \
                lanes16 av = LOAD16(a + r * cols + j);                                                         \
                for (int u = 0; u < ROWS; u++)                                                                 \
                    if (u < live) acc[u] = __builtin_elementwise_fma((lanes16)bi[u * rank + r], av, acc[u]);   \
            }                                                                                                  \
            for (int u = 0; u < live; u++) STORE16(out + (i0 + u) * cols + j, acc[u] * alpha);                 \
        }                                                                                                      \
        for (long j = full; j < cols; j++)                                                                     \
            for (int u = 0; u < live; u++) {                                                                   \
                float acc = 0;                                                                                 \
                for (long r = 0; r < rank; r++) acc = __builtin_fmaf(bi[u * rank + r], a[r * cols + j], acc);  \
                out[(i0 + u) * cols + j] = acc * alpha;                                                        \
            }                                                                                                  \
    }

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx512f")))
static void block_avx512(const float *b, long rows, long rank, const float *a, long cols, float alpha, float *out) {
    BLOCK_BODY
}
__attribute__((target("avx2,fma")))
static void block_avx2(const float *b, long rows, long rank, const float *a, long cols, float alpha, float *out) {
    BLOCK_BODY
}
#endif
static void block_portable(const float *b, long rows, long rank, const float *a, long cols, float alpha,
                           float *out) { BLOCK_BODY }

void brickyard_low_rank_block_on_path(int path, const float *b, long rows, long rank, const float *a, long cols,
                                      float alpha, float *out) {
    if (rows <= 0 || cols <= 0) return;
    if (rank <= 0) { memset(out, 0, (size_t)(rows * cols) * sizeof(float)); return; }
    if (path > brickyard_row_dots_path()) path = brickyard_row_dots_path();
    switch (path) {
#if defined(__x86_64__) || defined(__i386__)
    case 2: block_avx512(b, rows, rank, a, cols, alpha, out); break;
    case 1: block_avx2(b, rows, rank, a, cols, alpha, out); break;
#endif
    default: block_portable(b, rows, rank, a, cols, alpha, out); break;
    }
}

void brickyard_low_rank_block(const float *b, long rows, long rank, const float *a, long cols, float alpha,
                              float *out) {
    brickyard_low_rank_block_on_path(brickyard_row_dots_path(), b, rows, rank, a, cols, alpha, out);
}
