#ifndef BRICKYARD_CSIMD_H
#define BRICKYARD_CSIMD_H
/* Hand-vectorised routines with runtime CPU dispatch (AVX-512, AVX2+FMA, portable C). Every path computes the
 * same arithmetic in the same order, so results are bit-identical whichever path a machine takes. */
#include <stddef.h>
#include <stdint.h>

/* out[i * k + c] = x_i · m_c for the n rows of x ([n, d], row-major) and the k rows of m ([k, d], row-major).
 * Each dot product is 16 lane sums, lane l accumulating j ≡ l (mod 16) in increasing j by fused multiply-add,
 * then added pairwise (lanes l and l + 8, then l + 4, l + 2, l + 1). Reads x once, without packing it. */
void brickyard_row_dots(const float *x, long n, long d, const float *m, long k, float *out);

/* The same on a given path (capped at what this CPU supports): for tests that every path gives the same bits. */
void brickyard_row_dots_on_path(int path, const float *x, long n, long d, const float *m, long k, float *out);

/* The same products for n rows given by pointers (rows[i] is row i, d floats): out[i * k + c] = rows[i] · m_c, the
 * bits of brickyard_row_dots on those rows (a row's products do not depend on the rows it is computed with). */
void brickyard_row_dots_gathered(const float *const *rows, long n, long d, const float *m, long k, float *out);
void brickyard_row_dots_gathered_on_path(int path, const float *const *rows, long n, long d, const float *m, long k,
                                         float *out);

/* One product a · b over n floats, in brickyard_row_dots' order (the same bits as that row and centroid there). */
float brickyard_row_dot(const float *a, const float *b, long n);
float brickyard_row_dot_on_path(int path, const float *a, const float *b, long n);

/* out[u] = a[u] · b[u] over n floats for u < count, each with brickyard_row_dot's bits; 4 pairs at a time as
 * independent chains (a lone product is one dependent chain of fused multiply-adds: latency-bound). */
void brickyard_row_dot_pairs(const float *const *a, const float *const *b, long count, long n, float *out);
void brickyard_row_dot_pairs_on_path(int path, const float *const *a, const float *const *b, long count, long n,
                                     float *out);

/* Σ x_j² over n floats, accumulated in Double (8 lanes, then in order). */
double brickyard_sum_squares(const float *x, long n);

/* Which path brickyard_row_dots takes here: 2 = AVX-512, 1 = AVX2 + FMA, 0 = portable C. */
int brickyard_row_dots_path(void);

/* Centroid sums of one k-means step: for i < n in order, sums[cluster[i]] += x_i (− x_i when signs[i] < 0), x
 * [n, d] row-major, sums [k, d]; units with cluster outside 0..<k are skipped. One rounded addition per element and
 * unit, so the bits are those of any axpy with alpha = ±1, on every path. */
void brickyard_signed_sums(const float *x, long n, long d, const long *cluster, const float *signs, long k,
                           float *sums);
void brickyard_signed_sums_on_path(int path, const float *x, long n, long d, const long *cluster,
                                   const float *signs, long k, float *sums);

/* Lego's power-iteration half step over n units (rows of x with row stride `stride`): for i < n in order, with
 * c = cluster[i] in 0..<k (others skipped), w = x_i[read_offset ..< read_offset + read_length] · directions_c (the
 * row-dots sum: 16 lanes by fused multiply-add, tail into lanes 0, 1, …, then pairwise), and if w ≠ 0,
 * sums_c[j] = sums_c[j] + w · x_i[write_offset + j] (rounded product, then rounded sum: never fused) for
 * j < write_length. directions [k, read_length], sums [k, write_length], row-major. The units are visited cluster
 * by cluster (members in unit order), which gives every sum element the same additions in the same order. */
void brickyard_cluster_dot_add(const float *x, long n, long stride, long read_offset, long read_length,
                               long write_offset, long write_length, const long *cluster, long k,
                               const float *directions, float *sums);
void brickyard_cluster_dot_add_on_path(int path, const float *x, long n, long stride, long read_offset,
                                       long read_length, long write_offset, long write_length, const long *cluster,
                                       long k, const float *directions, float *sums);

/* CRC-32C (Castagnoli) register update over n bytes with the SSE 4.2 crc32 instruction: `state` is the running
 * register (initially 0xFFFFFFFF; the checksum is the final state XOR 0xFFFFFFFF). Only call when
 * brickyard_crc32c_hardware() is 1. */
uint32_t brickyard_crc32c_update(uint32_t state, const void *bytes, size_t n);
int brickyard_crc32c_hardware(void);

/* What this CPU and its OS support, as bits: 1 SSE 4.2, 2 AVX2 + FMA, 4 AVX-512F, 8 Skylake-X's AVX-512 subsets
 * (F, DQ, CD, BW, VL). 0 on other architectures. */
int brickyard_cpu_features(void);

/* Task-vector merges (ties, dare_*, magnitude_prune). The magnitude scan: for i < n, with a = the bits of |x[i]|
 * (sign cleared; non-negative floats order like their bits), adds to *above the count of a > hi and appends each a
 * with lo <= a <= hi to `candidates`, and its position first + i to `positions`, while *found < capacity (*found
 * counts them all, so *found > capacity means the buffers overflowed). Both buffers need room for capacity + 16
 * values. Exact integer work on every path; candidates come in increasing position. */
void brickyard_magnitude_scan(const float *x, long n, uint32_t first, uint32_t lo, uint32_t hi, long *above,
                              uint32_t *candidates, uint32_t *positions, long capacity, long *found);
void brickyard_magnitude_scan_on_path(int path, const float *x, long n, uint32_t first, uint32_t lo, uint32_t hi,
                                      long *above, uint32_t *candidates, uint32_t *positions, long capacity,
                                      long *found);

/* Accumulation modes of brickyard_prune_accumulate. */
enum { BRICKYARD_TV_SUM = 0, BRICKYARD_TV_TIES_TOTAL = 1, BRICKYARD_TV_TIES_FREQUENCY = 2 };

/* A group of `terms` term blocks (blocks[t], n entries each) into the running sums, term after term for every
 * entry i: v = blocks[t][i] if a > thresholds[t] or (a == thresholds[t] and i <= tie_limits[t]) (a = |value|'s
 * bits; tie_limits in -1 ..< 2^31), else +0. SUM: sum[i] += v. TIES_*: sum[i] += (v > 0 ? v : +0),
 * negative[i] += (v < 0 ? v : +0), positives[i] += (v > 0), negatives[i] += (v < 0), and for TIES_TOTAL also
 * vote[i] += v. One rounded addition per element and term (never fused), so groups called in term order give every
 * sum in term order. */
void brickyard_prune_accumulate(const float *const *blocks, const uint32_t *thresholds, const long *tie_limits,
                                int terms, long n, int mode, float *sum, float *vote, float *negative,
                                float *positives, float *negatives);
void brickyard_prune_accumulate_on_path(int path, const float *const *blocks, const uint32_t *thresholds,
                                        const long *tie_limits, int terms, long n, int mode, float *sum, float *vote,
                                        float *negative, float *positives, float *negatives);

/* TIES' disjoint mean from those sums: the elected sign is + where vote >= 0 (TIES_TOTAL) or positives >= negatives
 * (TIES_FREQUENCY: the vote Σ sign); out[i] = the elected side's sum / max(its count, 1). */
void brickyard_ties_finish(long n, int mode, const float *sum, const float *vote, const float *negative,
                           const float *positives, const float *negatives, float *out);

/* out[i, j] (row-major [rows, cols]) = alpha × (fused multiply-add chain over r = 0 ..< rank of b[i, r]·a[r, j],
 * from 0), b row-major [rows, rank], a row-major [rank, cols]: a row block of a low-rank product c·B·A. The same
 * bits on every path and for any block shape (and those of OpenBLAS's SkylakeX sgemm kernel for rank ≤ 32). */
void brickyard_low_rank_block(const float *b, long rows, long rank, const float *a, long cols, float alpha,
                              float *out);
void brickyard_low_rank_block_on_path(int path, const float *b, long rows, long rank, const float *a, long cols,
                                      float alpha, float *out);

/* Allocator and page settings (memory.c; no-ops returning 0 off Linux). brickyard_tune_allocator sets glibc's
 * M_MMAP_THRESHOLD and M_TRIM_THRESHOLD (fixed values, which also turns off glibc's dynamic threshold): with the
 * defaults, a merge's per-adapter temporaries (~1 MB) are mapped, freed and trimmed again and again, and every reuse
 * page-faults fresh zeroed pages. brickyard_advise_huge_pages asks for transparent huge pages (MADV_HUGEPAGE) on the
 * 2 MB-aligned part of [start, start + length): a large buffer written once then faults 512× less often. Both return
 * 1 when applied. Neither changes any value computed. */
int brickyard_tune_allocator(size_t mmap_threshold, size_t trim_threshold);
int brickyard_advise_huge_pages(void *start, size_t length);
#endif
