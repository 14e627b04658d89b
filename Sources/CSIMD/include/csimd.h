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
#endif
