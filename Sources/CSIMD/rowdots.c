/* Row dot products x_i · m_c for k-means distances (see csimd.h for the exact arithmetic). Blocks of 4 rows of x
 * and 4 rows of m share 16 accumulators of 16 lanes; the d axis is cut into chunks so the 4 row pieces and every
 * centroid piece stay in L1 while the centroid pairs sweep them, and each lane's running sum is kept between
 * chunks, so the order of additions is the same for any chunk size, target or remainder handling. */
#include <string.h>
#include "csimd.h"
#include "cpu.h"

typedef float lanes16 __attribute__((ext_vector_type(16)));
typedef float lanes8 __attribute__((ext_vector_type(8)));
typedef float lanes4 __attribute__((ext_vector_type(4)));
typedef float lanes2 __attribute__((ext_vector_type(2)));

/* ROWS × COLS register blocks; up to SMALL_K centroids, 4-row tiles and CHUNK_SMALL floats of d at a time; above, tiles
 * of TILE_ROWS rows × GROUP centroids and CHUNK_TILED floats (see the cache blocking below). */
enum { LANES = 16, ROWS = 4, COLS = 4, SMALL_K = 16, CHUNK_SMALL = 128, TILE_ROWS = 32, GROUP = 32, CHUNK_TILED = 256 };

#define LOAD16(p) ({ lanes16 v_; memcpy(&v_, (p), sizeof v_); v_; })

/* Register blocking: 4 rows × 4 centroids = 16 accumulators fed by 8 loads per 16 lanes (measured 1.5× the 4 × 2
 * blocking's rate on this Xeon: 50 against 33 GFLOP/s at d = 18432). The last block of centroids may be narrower
 * (1–3 columns, e.g. the 5 candidates of a greedy seeding step are 4 + 1): it gets a block of its own width instead
 * of repeating a column, which costs no accuracy and no bits (each accumulator sees the same fused products in the
 * same order whatever the block width) and saves up to 3/4 of that block's work. */
#define ROW_DOTS_BLOCK(NC)                                                                                     \
    do {                                                                                                       \
        const float *mc[NC];                                                                                   \
        for (int q = 0; q < NC; q++) mc[q] = m + (c + q) * d;                                                  \
        lanes16 a[ROWS][NC];                                                                                   \
        for (int r = 0; r < ROWS; r++) for (int q = 0; q < NC; q++) a[r][q] = acc[r0 + r][c - c0 + q];         \
        for (long j = j0; j < jend; j += LANES) {                                                              \
            lanes16 v[NC], xv[ROWS];                                                                           \
            for (int q = 0; q < NC; q++) v[q] = LOAD16(mc[q] + j);                                             \
            for (int r = 0; r < ROWS; r++) xv[r] = LOAD16(rows[r0 + r] + j);                                   \
            for (int r = 0; r < ROWS; r++)                                                                     \
                for (int q = 0; q < NC; q++) a[r][q] = __builtin_elementwise_fma(xv[r], v[q], a[r][q]);        \
        }                                                                                                      \
        for (int r = 0; r < ROWS; r++) for (int q = 0; q < NC; q++) acc[r0 + r][c - c0 + q] = a[r][q];         \
    } while (0)

/* Cache blocking. Up to 16 centroids (a Lloyd step at k ≤ 16) fit in L2 together: 4 rows at a time meet all of
 * them one 128-float chunk of the d axis at a time, the 4 row pieces staying in L1. More centroids (the 65
 * candidates of a k-means|| round at d = 18432 are 4.8 MB) do not, and re-reading them from L3 for every 4 rows bound
 * the kernel to that traffic (42 GFLOP/s, and two processes sharing the cache slowed each other): then a tile of 32
 * rows meets a group of 32 centroids one 256-float chunk at a time, so the centroids travel from L3 once per 32 rows
 * (measured 58 GFLOP/s at k = 65, d = 18432, n = 1920; the same 60 at k = 16 with the small blocking). Each
 * accumulator lane still sees its products in increasing j, so the bits do not depend on the blocking. */
#define ROW_DOTS_BODY                                                                                          \
    long full = d / LANES * LANES;                                                                             \
    long tile_rows = k > SMALL_K ? TILE_ROWS : ROWS, chunk = k > SMALL_K ? CHUNK_TILED : CHUNK_SMALL;          \
    lanes16 acc[TILE_ROWS][GROUP];                                                                             \
    const float *rows[TILE_ROWS];                                                                              \
    for (long t0 = 0; t0 < n; t0 += tile_rows) {                                                               \
        long tile = t0 + tile_rows < n ? tile_rows : n - t0;                                                   \
        long padded = (tile + ROWS - 1) / ROWS * ROWS;                                                         \
        for (long r = 0; r < padded; r++) rows[r] = ROW_AT(r < tile ? t0 + r : t0);                            \
        for (long c0 = 0; c0 < k; c0 += GROUP) {                                                               \
            long cend = c0 + GROUP < k ? c0 + GROUP : k;                                                       \
            for (long r = 0; r < padded; r++) for (long c = 0; c < cend - c0; c++) acc[r][c] = (lanes16)0;     \
            for (long j0 = 0; j0 < full; j0 += chunk) {                                                        \
                long jend = j0 + chunk < full ? j0 + chunk : full;                                             \
                for (long r0 = 0; r0 < padded; r0 += ROWS) {                                                   \
                    long c = c0;                                                                               \
                    for (; c + COLS <= cend; c += COLS) ROW_DOTS_BLOCK(COLS);                                  \
                    switch (cend - c) {                                                                        \
                    case 3: ROW_DOTS_BLOCK(3); break;                                                          \
                    case 2: ROW_DOTS_BLOCK(2); break;                                                          \
                    case 1: ROW_DOTS_BLOCK(1); break;                                                          \
                    default: break;                                                                            \
                    }                                                                                          \
                }                                                                                              \
            }                                                                                                  \
            for (long r = 0; r < tile; r++) {                                                                  \
                for (long c = c0; c < cend; c++) {                                                             \
                    lanes16 a = acc[r][c - c0];                                                                \
                    const float *mc = m + c * d;                                                               \
                    for (long j = full; j < d; j++) a[j - full] = __builtin_fmaf(rows[r][j], mc[j], a[j - full]); \
                    lanes8 h = a.lo + a.hi;                                                                    \
                    lanes4 q = h.lo + h.hi;                                                                    \
                    lanes2 p = q.lo + q.hi;                                                                    \
                    out[(t0 + r) * k + c] = p.x + p.y;                                                         \
                }                                                                                              \
            }                                                                                                  \
        }                                                                                                      \
    }

/* Rows x + i·d (brickyard_row_dots), or rows given by pointers (brickyard_row_dots_gathered: `x` is then unused and
 * `at` holds the n row pointers); the same arithmetic on each row either way. */
#define ROW_AT(i) (at ? at[(i)] : x + (i) * d)

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx512f")))
static void row_dots_avx512(const float *x, const float *const *at, long n, long d, const float *m, long k,
                            float *out) { ROW_DOTS_BODY }

__attribute__((target("avx2,fma")))
static void row_dots_avx2(const float *x, const float *const *at, long n, long d, const float *m, long k,
                          float *out) { ROW_DOTS_BODY }
#endif

static void row_dots_portable(const float *x, const float *const *at, long n, long d, const float *m, long k,
                              float *out) { ROW_DOTS_BODY }

int brickyard_row_dots_path(void) {
    static int cached = -1;
    if (cached < 0) {
        int level = brickyard_cpu_level();
        cached = (level & BRICKYARD_CPU_AVX512) ? 2 : (level & BRICKYARD_CPU_AVX2_FMA) ? 1 : 0;
    }
    return cached;
}

static void row_dots_dispatch(int path, const float *x, const float *const *at, long n, long d, const float *m,
                              long k, float *out) {
    if (n <= 0 || k <= 0) return;
    if (path > brickyard_row_dots_path()) path = brickyard_row_dots_path();
    switch (path) {
#if defined(__x86_64__) || defined(__i386__)
    case 2: row_dots_avx512(x, at, n, d, m, k, out); break;
    case 1: row_dots_avx2(x, at, n, d, m, k, out); break;
#endif
    default: row_dots_portable(x, at, n, d, m, k, out); break;
    }
}

void brickyard_row_dots_on_path(int path, const float *x, long n, long d, const float *m, long k, float *out) {
    row_dots_dispatch(path, x, NULL, n, d, m, k, out);
}

void brickyard_row_dots_gathered_on_path(int path, const float *const *rows, long n, long d, const float *m, long k,
                                         float *out) {
    row_dots_dispatch(path, NULL, rows, n, d, m, k, out);
}

void brickyard_row_dots_gathered(const float *const *rows, long n, long d, const float *m, long k, float *out) {
    row_dots_dispatch(brickyard_row_dots_path(), NULL, rows, n, d, m, k, out);
}

void brickyard_row_dots(const float *x, long n, long d, const float *m, long k, float *out) {
    brickyard_row_dots_on_path(brickyard_row_dots_path(), x, n, d, m, k, out);
}
