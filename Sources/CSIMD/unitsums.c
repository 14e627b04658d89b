/* Per-cluster sums over units in unit order (see csimd.h for the exact arithmetic): the k-means centroid sums
 * (y ± x) and lego's power-iteration products (y + (x_read · w_c) x_write). Every element of a sum gets one rounded
 * product and one rounded addition per unit, never fused, so the bits do not depend on the vector width; the dot
 * products are brickyard_row_dots' (16 lanes by fused multiply-add, then pairwise), computed here for the one
 * direction a unit needs instead of all k. */
#include <stdlib.h>
#include <string.h>
#include "csimd.h"
#include "cpu.h"

#pragma clang fp contract(off)

typedef float lanes16 __attribute__((ext_vector_type(16)));
typedef float lanes8 __attribute__((ext_vector_type(8)));
typedef float lanes4 __attribute__((ext_vector_type(4)));
typedef float lanes2 __attribute__((ext_vector_type(2)));

#define LOAD16(p) ({ lanes16 v_; memcpy(&v_, (p), sizeof v_); v_; })
#define STORE16(p, v) do { lanes16 s_ = (v); memcpy((p), &s_, sizeof s_); } while (0)

/* y[j] = y[j] + x[j] (or − x[j]) for j < d. */
#define ADD_BODY(y, x, d, negative)                                                                            \
    do {                                                                                                       \
        long j_ = 0;                                                                                           \
        if (negative) {                                                                                        \
            for (; j_ + 16 <= (d); j_ += 16) STORE16((y) + j_, LOAD16((y) + j_) - LOAD16((x) + j_));            \
            for (; j_ < (d); j_++) (y)[j_] = (y)[j_] - (x)[j_];                                                \
        } else {                                                                                               \
            for (; j_ + 16 <= (d); j_ += 16) STORE16((y) + j_, LOAD16((y) + j_) + LOAD16((x) + j_));            \
            for (; j_ < (d); j_++) (y)[j_] = (y)[j_] + (x)[j_];                                                \
        }                                                                                                      \
    } while (0)

#define SIGNED_SUMS_BODY                                                                                       \
    for (long i = 0; i < n; i++) {                                                                             \
        long c = cluster[i];                                                                                   \
        if (c < 0 || c >= k) continue;                                                                         \
        ADD_BODY(sums + c * d, x + i * d, d, signs[i] < 0);                                                    \
    }

/* The row-dots sum of a · b over n values: lane l accumulates j ≡ l (mod 16) by fused multiply-add, the tail
 * j ≥ n/16·16 goes to lanes 0, 1, … in order, then lanes are added pairwise. */
#define DOT_BODY                                                                                               \
    long full = n / 16 * 16;                                                                                   \
    lanes16 acc = (lanes16)0;                                                                                  \
    for (long j = 0; j < full; j += 16) acc = __builtin_elementwise_fma(LOAD16(a + j), LOAD16(b + j), acc);   \
    for (long j = full; j < n; j++) acc[j - full] = __builtin_fmaf(a[j], b[j], acc[j - full]);                 \
    lanes8 h = acc.lo + acc.hi;                                                                                \
    lanes4 q = h.lo + h.hi;                                                                                    \
    lanes2 p = q.lo + q.hi;                                                                                    \
    return p.x + p.y;

/* The same sum for 4 pairs at once (4 independent accumulator chains instead of one: the dot products' bits are
 * those of DOT_BODY, each chain is). */
#define DOT4_BODY                                                                                              \
    long full = n / 16 * 16;                                                                                   \
    lanes16 acc[4] = { (lanes16)0, (lanes16)0, (lanes16)0, (lanes16)0 };                                       \
    for (long j = 0; j < full; j += 16)                                                                        \
        for (int u = 0; u < 4; u++) acc[u] = __builtin_elementwise_fma(LOAD16(a[u] + j), LOAD16(b[u] + j), acc[u]); \
    for (int u = 0; u < 4; u++) {                                                                              \
        for (long j = full; j < n; j++) acc[u][j - full] = __builtin_fmaf(a[u][j], b[u][j], acc[u][j - full]); \
        lanes8 h = acc[u].lo + acc[u].hi;                                                                      \
        lanes4 q = h.lo + h.hi;                                                                                \
        lanes2 p = q.lo + q.hi;                                                                                \
        out[u] = p.x + p.y;                                                                                    \
    }

/* Units in groups of 4: their dot products first (independent chains), then their additions in unit order. */
#define DOT_ADD_BODY(dot, dot4)                                                                                \
    for (long i0 = 0; i0 < n; i0 += 4) {                                                                       \
        float w[4] = { 0, 0, 0, 0 };                                                                           \
        long cs[4];                                                                                            \
        int live = 0;                                                                                          \
        for (int u = 0; u < 4; u++) {                                                                          \
            cs[u] = i0 + u < n ? cluster[i0 + u] : -1;                                                         \
            if (cs[u] < 0 || cs[u] >= k) cs[u] = -1; else live++;                                              \
        }                                                                                                      \
        if (live == 4) {                                                                                       \
            const float *as[4], *bs[4];                                                                        \
            for (int u = 0; u < 4; u++) {                                                                      \
                as[u] = x + (i0 + u) * stride + read_offset;                                                   \
                bs[u] = directions + cs[u] * read_length;                                                      \
            }                                                                                                  \
            dot4(as, bs, read_length, w);                                                                      \
        } else {                                                                                               \
            for (int u = 0; u < 4; u++)                                                                        \
                if (cs[u] >= 0) w[u] = dot(x + (i0 + u) * stride + read_offset, directions + cs[u] * read_length, \
                                           read_length);                                                       \
        }                                                                                                      \
        for (int u = 0; u < 4; u++) {                                                                          \
            if (cs[u] < 0 || w[u] == 0) continue;                                                              \
            const float *source = x + (i0 + u) * stride + write_offset;                                        \
            float *target = sums + cs[u] * write_length;                                                       \
            lanes16 wv = (lanes16)w[u];                                                                        \
            long j = 0;                                                                                        \
            for (; j + 16 <= write_length; j += 16) STORE16(target + j, LOAD16(target + j) + wv * LOAD16(source + j)); \
            for (; j < write_length; j++) target[j] = target[j] + w[u] * source[j];                            \
        }                                                                                                      \
    }

/* The same sums, visiting the units cluster by cluster (each cluster's members in unit order, found by a stable
 * counting sort): every sum element still gets its members' rounded products and additions in unit order, so the
 * bits are DOT_ADD_BODY's. What changes is the traffic: one cluster's sum row stays in cache while its members
 * stream past (in unit order, a 14336-wide sum row per unit went to L3 and back: k rows of sums exceed L2), and
 * up to 4 members' additions are applied to a chunk of the row in registers before it is stored again (the same
 * sequence of rounded operations per element). `order` holds n entries, `first` 2k + 1 (offsets, then fill counts). */
#define DOT_ADD_GROUPED_BODY(dot, dot4)                                                                        \
    for (long c = 0; c <= k; c++) first[c] = 0;                                                                \
    for (long i = 0; i < n; i++) if (cluster[i] >= 0 && cluster[i] < k) first[cluster[i] + 1]++;               \
    for (long c = 0; c < k; c++) first[c + 1] += first[c];                                                     \
    {                                                                                                          \
        long *fill = first + k + 1;                                                                            \
        for (long c = 0; c < k; c++) fill[c] = first[c];                                                       \
        for (long i = 0; i < n; i++) if (cluster[i] >= 0 && cluster[i] < k) order[fill[cluster[i]]++] = i;     \
    }                                                                                                          \
    for (long c = 0; c < k; c++) {                                                                             \
        const float *direction = directions + c * read_length;                                                 \
        float *target = sums + c * write_length;                                                               \
        for (long g = first[c]; g < first[c + 1]; g += 4) {                                                    \
            int live = first[c + 1] - g < 4 ? (int)(first[c + 1] - g) : 4;                                    \
            float w[4] = { 0, 0, 0, 0 };                                                                       \
            const float *source[4];                                                                            \
            int used = 0;                                                                                      \
            if (live == 4) {                                                                                   \
                const float *as[4], *bs[4] = { direction, direction, direction, direction };                   \
                for (int u = 0; u < 4; u++) as[u] = x + order[g + u] * stride + read_offset;                   \
                dot4(as, bs, read_length, w);                                                                  \
            } else {                                                                                           \
                for (int u = 0; u < live; u++) w[u] = dot(x + order[g + u] * stride + read_offset, direction,  \
                                                          read_length);                                        \
            }                                                                                                  \
            float wu[4];                                                                                       \
            for (int u = 0; u < live; u++) {                                                                   \
                if (w[u] == 0) continue;                                                                       \
                wu[used] = w[u];                                                                               \
                source[used++] = x + order[g + u] * stride + write_offset;                                     \
            }                                                                                                  \
            long j = 0;                                                                                        \
            for (; j + 16 <= write_length; j += 16) {                                                          \
                lanes16 t = LOAD16(target + j);                                                                \
                for (int u = 0; u < used; u++) t = t + (lanes16)wu[u] * LOAD16(source[u] + j);                 \
                STORE16(target + j, t);                                                                        \
            }                                                                                                  \
            for (; j < write_length; j++) {                                                                    \
                float t = target[j];                                                                           \
                for (int u = 0; u < used; u++) t = t + wu[u] * source[u][j];                                   \
                target[j] = t;                                                                                 \
            }                                                                                                  \
        }                                                                                                      \
    }

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx512f")))
static void signed_sums_avx512(const float *x, long n, long d, const long *cluster, const float *signs, long k,
                               float *sums) { SIGNED_SUMS_BODY }
__attribute__((target("avx2,fma")))
static void signed_sums_avx2(const float *x, long n, long d, const long *cluster, const float *signs, long k,
                             float *sums) { SIGNED_SUMS_BODY }
__attribute__((target("avx512f")))
static float dot_avx512(const float *a, const float *b, long n) { DOT_BODY }
__attribute__((target("avx2,fma")))
static float dot_avx2(const float *a, const float *b, long n) { DOT_BODY }
__attribute__((target("avx512f")))
static void dot4_avx512(const float *const a[4], const float *const b[4], long n, float out[4]) { DOT4_BODY }
__attribute__((target("avx2,fma")))
static void dot4_avx2(const float *const a[4], const float *const b[4], long n, float out[4]) { DOT4_BODY }
__attribute__((target("avx512f")))
static void dot_add_avx512(const float *x, long n, long stride, long read_offset, long read_length,
                           long write_offset, long write_length, const long *cluster, long k,
                           const float *directions, float *sums) { DOT_ADD_BODY(dot_avx512, dot4_avx512) }
__attribute__((target("avx2,fma")))
static void dot_add_avx2(const float *x, long n, long stride, long read_offset, long read_length,
                         long write_offset, long write_length, const long *cluster, long k,
                         const float *directions, float *sums) { DOT_ADD_BODY(dot_avx2, dot4_avx2) }
__attribute__((target("avx512f")))
static void dot_add_grouped_avx512(const float *x, long n, long stride, long read_offset, long read_length,
                                   long write_offset, long write_length, const long *cluster, long k,
                                   const float *directions, float *sums, long *order, long *first) {
    DOT_ADD_GROUPED_BODY(dot_avx512, dot4_avx512)
}
__attribute__((target("avx2,fma")))
static void dot_add_grouped_avx2(const float *x, long n, long stride, long read_offset, long read_length,
                                 long write_offset, long write_length, const long *cluster, long k,
                                 const float *directions, float *sums, long *order, long *first) {
    DOT_ADD_GROUPED_BODY(dot_avx2, dot4_avx2)
}
#endif

static void signed_sums_portable(const float *x, long n, long d, const long *cluster, const float *signs, long k,
                                 float *sums) { SIGNED_SUMS_BODY }
static float dot_portable(const float *a, const float *b, long n) { DOT_BODY }
static void dot4_portable(const float *const a[4], const float *const b[4], long n, float out[4]) { DOT4_BODY }
static void dot_add_portable(const float *x, long n, long stride, long read_offset, long read_length,
                             long write_offset, long write_length, const long *cluster, long k,
                             const float *directions, float *sums) { DOT_ADD_BODY(dot_portable, dot4_portable) }
static void dot_add_grouped_portable(const float *x, long n, long stride, long read_offset, long read_length,
                                     long write_offset, long write_length, const long *cluster, long k,
                                     const float *directions, float *sums, long *order, long *first) {
    DOT_ADD_GROUPED_BODY(dot_portable, dot4_portable)
}

/* Σ x_j² in Double, 8 lanes then in order: the exact norms the k-means bounds are about (`LloydBounds`; any
 * Double-accurate order will do there, the output bits do not depend on it). */
#define SUM_SQUARES_BODY                                                                                       \
    typedef double lanes8d __attribute__((ext_vector_type(8)));                                               \
    lanes8d acc = (lanes8d)0;                                                                                  \
    long j = 0;                                                                                                \
    for (; j + 8 <= n; j += 8) {                                                                               \
        lanes8 v; memcpy(&v, x + j, sizeof v);                                                                 \
        lanes8d w = __builtin_convertvector(v, lanes8d);                                                       \
        acc = acc + w * w;                                                                                     \
    }                                                                                                          \
    double sum = 0;                                                                                            \
    for (int l = 0; l < 8; l++) sum += acc[l];                                                                 \
    for (; j < n; j++) sum += (double)x[j] * (double)x[j];                                                     \
    return sum;

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx512f")))
static double sum_squares_avx512(const float *x, long n) { SUM_SQUARES_BODY }
#endif
static double sum_squares_portable(const float *x, long n) { SUM_SQUARES_BODY }

double brickyard_sum_squares(const float *x, long n) {
#if defined(__x86_64__) || defined(__i386__)
    if (brickyard_row_dots_path() == 2) return sum_squares_avx512(x, n);
#endif
    return sum_squares_portable(x, n);
}

float brickyard_row_dot_on_path(int path, const float *a, const float *b, long n) {
    if (n <= 0) return 0;
    if (path > brickyard_row_dots_path()) path = brickyard_row_dots_path();
    switch (path) {
#if defined(__x86_64__) || defined(__i386__)
    case 2: return dot_avx512(a, b, n);
    case 1: return dot_avx2(a, b, n);
#endif
    default: return dot_portable(a, b, n);
    }
}

void brickyard_row_dot_pairs_on_path(int path, const float *const *a, const float *const *b, long count, long n,
                                     float *out) {
    if (path > brickyard_row_dots_path()) path = brickyard_row_dots_path();
    long u = 0;
    if (n > 0) {
        for (; u + 4 <= count; u += 4) {
            switch (path) {
#if defined(__x86_64__) || defined(__i386__)
            case 2: dot4_avx512(a + u, b + u, n, out + u); break;
            case 1: dot4_avx2(a + u, b + u, n, out + u); break;
#endif
            default: dot4_portable(a + u, b + u, n, out + u); break;
            }
        }
    }
    for (; u < count; u++) out[u] = brickyard_row_dot_on_path(path, a[u], b[u], n);
}

void brickyard_row_dot_pairs(const float *const *a, const float *const *b, long count, long n, float *out) {
    brickyard_row_dot_pairs_on_path(brickyard_row_dots_path(), a, b, count, n, out);
}

float brickyard_row_dot(const float *a, const float *b, long n) {
    return brickyard_row_dot_on_path(brickyard_row_dots_path(), a, b, n);
}

void brickyard_signed_sums_on_path(int path, const float *x, long n, long d, const long *cluster,
                                   const float *signs, long k, float *sums) {
    if (n <= 0 || d <= 0 || k <= 0) return;
    if (path > brickyard_row_dots_path()) path = brickyard_row_dots_path();
    switch (path) {
#if defined(__x86_64__) || defined(__i386__)
    case 2: signed_sums_avx512(x, n, d, cluster, signs, k, sums); break;
    case 1: signed_sums_avx2(x, n, d, cluster, signs, k, sums); break;
#endif
    default: signed_sums_portable(x, n, d, cluster, signs, k, sums); break;
    }
}

void brickyard_signed_sums(const float *x, long n, long d, const long *cluster, const float *signs, long k,
                           float *sums) {
    brickyard_signed_sums_on_path(brickyard_row_dots_path(), x, n, d, cluster, signs, k, sums);
}

void brickyard_cluster_dot_add_on_path(int path, const float *x, long n, long stride, long read_offset,
                                       long read_length, long write_offset, long write_length, const long *cluster,
                                       long k, const float *directions, float *sums) {
    if (n <= 0 || k <= 0 || read_length <= 0 || write_length <= 0) return;
    if (path > brickyard_row_dots_path()) path = brickyard_row_dots_path();
    long *order = malloc((size_t)n * sizeof(long)), *first = malloc((size_t)(2 * k + 1) * sizeof(long));
    if (order && first) {
        switch (path) {
#if defined(__x86_64__) || defined(__i386__)
        case 2: dot_add_grouped_avx512(x, n, stride, read_offset, read_length, write_offset, write_length, cluster, k,
                                       directions, sums, order, first); break;
        case 1: dot_add_grouped_avx2(x, n, stride, read_offset, read_length, write_offset, write_length, cluster, k,
                                     directions, sums, order, first); break;
#endif
        default: dot_add_grouped_portable(x, n, stride, read_offset, read_length, write_offset, write_length, cluster,
                                          k, directions, sums, order, first); break;
        }
        free(order);
        free(first);
        return;
    }
    free(order);
    free(first);
    switch (path) {  /* no memory for the visiting order: unit order, the same bits */
#if defined(__x86_64__) || defined(__i386__)
    case 2: dot_add_avx512(x, n, stride, read_offset, read_length, write_offset, write_length, cluster, k,
                           directions, sums); break;
    case 1: dot_add_avx2(x, n, stride, read_offset, read_length, write_offset, write_length, cluster, k,
                         directions, sums); break;
#endif
    default: dot_add_portable(x, n, stride, read_offset, read_length, write_offset, write_length, cluster, k,
                              directions, sums); break;
    }
}

void brickyard_cluster_dot_add(const float *x, long n, long stride, long read_offset, long read_length,
                               long write_offset, long write_length, const long *cluster, long k,
                               const float *directions, float *sums) {
    brickyard_cluster_dot_add_on_path(brickyard_row_dots_path(), x, n, stride, read_offset, read_length,
                                      write_offset, write_length, cluster, k, directions, sums);
}
