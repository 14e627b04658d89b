/* Elementwise passes of the task-vector merges (ties, dare_*, magnitude_prune; see csimd.h for the exact
 * arithmetic): the magnitude scan that finds each τ_i's exact cut, and one fused pass that prunes a block of τ_i
 * and adds it into the running sums of the sign election and the disjoint mean. Integer work (the scan) is exact
 * on every path; the float work is one rounded addition (or division) per element and term, never fused, so the
 * bits do not depend on the vector width. */
#include <string.h>
#include "csimd.h"
#include "cpu.h"

#pragma clang fp contract(off)

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

static inline uint32_t magnitude_bits(float value) {
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    return bits & 0x7fffffffu;
}

static inline float keep_at_least(float value, uint32_t least) {
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    bits &= (bits & 0x7fffffffu) >= least ? 0xffffffffu : 0u;
    float kept;
    memcpy(&kept, &bits, sizeof kept);
    return kept;
}

#define SCAN_BODY                                                                                              \
    long above_ = 0, found_ = *found;                                                                          \
    for (long i = 0; i < n; i++) {                                                                             \
        uint32_t a = magnitude_bits(x[i]);                                                                     \
        above_ += a > hi;                                                                                      \
        if (a >= lo && a <= hi) {                                                                              \
            if (found_ < capacity) candidates[found_] = a;                                                     \
            found_++;                                                                                          \
        }                                                                                                      \
    }                                                                                                          \
    *above += above_;                                                                                          \
    *found = found_;

static void scan_portable(const float *x, long n, uint32_t lo, uint32_t hi, long *above, uint32_t *candidates,
                          long capacity, long *found) { SCAN_BODY }

#define SUM_BODY                                                                                               \
    for (long i = 0; i < n; i++) sum[i] = sum[i] + keep_at_least(x[i], least);

/* Positive and negative parts in separate sums and counts: the disjoint mean of either elected sign is then
 * known without a second pass over the terms (each sum adds, in term order, exactly the values old-style
 * "agreeing" sums added, and +0 for the others, which changes no bits). */
#define TIES_BODY(with_vote)                                                                                   \
    for (long i = 0; i < n; i++) {                                                                             \
        float v = keep_at_least(x[i], least);                                                                  \
        if (with_vote) vote[i] = vote[i] + v;                                                                  \
        sum[i] = sum[i] + (v > 0 ? v : 0.0f);                                                                  \
        negative[i] = negative[i] + (v < 0 ? v : 0.0f);                                                        \
        positives[i] = positives[i] + (v > 0 ? 1.0f : 0.0f);                                                   \
        negatives[i] = negatives[i] + (v < 0 ? 1.0f : 0.0f);                                                   \
    }

#define ACCUMULATE_BODY(sum_fn, ties_fn, ties_vote_fn)                                                         \
    switch (mode) {                                                                                            \
    case BRICKYARD_TV_SUM: sum_fn(x, n, least, sum); break;                                                    \
    case BRICKYARD_TV_TIES_TOTAL: ties_vote_fn(x, n, least, sum, vote, negative, positives, negatives); break; \
    default: ties_fn(x, n, least, sum, vote, negative, positives, negatives); break;                           \
    }

static void sum_portable(const float *x, long n, uint32_t least, float *sum) { SUM_BODY }
static void ties_portable(const float *x, long n, uint32_t least, float *sum, float *vote, float *negative,
                          float *positives, float *negatives) { (void)vote; TIES_BODY(0) }
static void ties_vote_portable(const float *x, long n, uint32_t least, float *sum, float *vote, float *negative,
                               float *positives, float *negatives) { TIES_BODY(1) }

#if defined(__x86_64__) || defined(__i386__)
/* 16 magnitudes at a time: the count above by a popcount of the compare mask, the candidates by an in-register
 * compress and a full-width store (the buffer has 16 spare slots; the store is kept only up to `capacity`). */
__attribute__((target("avx512f")))
static void scan_avx512(const float *x, long n, uint32_t lo, uint32_t hi, long *above, uint32_t *candidates,
                        long capacity, long *found) {
    const __m512i mask = _mm512_set1_epi32(0x7fffffff), low = _mm512_set1_epi32((int)lo),
                  high = _mm512_set1_epi32((int)hi);
    long above_ = 0, found_ = *found, i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i a = _mm512_and_si512(_mm512_loadu_si512((const void *)(x + i)), mask);
        __mmask16 over = _mm512_cmpgt_epu32_mask(a, high);
        __mmask16 inside = _mm512_mask_cmpge_epu32_mask(_mm512_cmple_epu32_mask(a, high), a, low);
        above_ += __builtin_popcount((unsigned)over);
        if (inside) {
            int count = __builtin_popcount((unsigned)inside);
            if (found_ + 16 <= capacity) {
                _mm512_storeu_si512((void *)(candidates + found_), _mm512_maskz_compress_epi32(inside, a));
            } else {
                uint32_t lanes[16];
                _mm512_storeu_si512((void *)lanes, _mm512_maskz_compress_epi32(inside, a));
                for (int c = 0; c < count; c++) if (found_ + c < capacity) candidates[found_ + c] = lanes[c];
            }
            found_ += count;
        }
    }
    *above += above_;
    *found = found_;
    scan_portable(x + i, n - i, lo, hi, above, candidates, capacity, found);
}
__attribute__((target("avx2")))
static void scan_avx2(const float *x, long n, uint32_t lo, uint32_t hi, long *above, uint32_t *candidates,
                      long capacity, long *found) { SCAN_BODY }
__attribute__((target("avx512f")))
static void sum_avx512(const float *x, long n, uint32_t least, float *sum) { SUM_BODY }
__attribute__((target("avx512f")))
static void ties_avx512(const float *x, long n, uint32_t least, float *sum, float *vote, float *negative,
                        float *positives, float *negatives) { (void)vote; TIES_BODY(0) }
__attribute__((target("avx512f")))
static void ties_vote_avx512(const float *x, long n, uint32_t least, float *sum, float *vote, float *negative,
                             float *positives, float *negatives) { TIES_BODY(1) }
__attribute__((target("avx2")))
static void sum_avx2(const float *x, long n, uint32_t least, float *sum) { SUM_BODY }
__attribute__((target("avx2")))
static void ties_avx2(const float *x, long n, uint32_t least, float *sum, float *vote, float *negative,
                      float *positives, float *negatives) { (void)vote; TIES_BODY(0) }
__attribute__((target("avx2")))
static void ties_vote_avx2(const float *x, long n, uint32_t least, float *sum, float *vote, float *negative,
                           float *positives, float *negatives) { TIES_BODY(1) }
#endif

void brickyard_magnitude_scan_on_path(int path, const float *x, long n, uint32_t lo, uint32_t hi, long *above,
                                      uint32_t *candidates, long capacity, long *found) {
    if (n <= 0) return;
    if (path > brickyard_row_dots_path()) path = brickyard_row_dots_path();
    switch (path) {
#if defined(__x86_64__) || defined(__i386__)
    case 2: scan_avx512(x, n, lo, hi, above, candidates, capacity, found); break;
    case 1: scan_avx2(x, n, lo, hi, above, candidates, capacity, found); break;
#endif
    default: scan_portable(x, n, lo, hi, above, candidates, capacity, found); break;
    }
}

void brickyard_magnitude_scan(const float *x, long n, uint32_t lo, uint32_t hi, long *above, uint32_t *candidates,
                              long capacity, long *found) {
    brickyard_magnitude_scan_on_path(brickyard_row_dots_path(), x, n, lo, hi, above, candidates, capacity, found);
}

void brickyard_prune_accumulate_on_path(int path, const float *x, long n, uint32_t least, int mode, float *sum,
                                        float *vote, float *negative, float *positives, float *negatives) {
    if (n <= 0) return;
    if (path > brickyard_row_dots_path()) path = brickyard_row_dots_path();
    switch (path) {
#if defined(__x86_64__) || defined(__i386__)
    case 2: ACCUMULATE_BODY(sum_avx512, ties_avx512, ties_vote_avx512) break;
    case 1: ACCUMULATE_BODY(sum_avx2, ties_avx2, ties_vote_avx2) break;
#endif
    default: ACCUMULATE_BODY(sum_portable, ties_portable, ties_vote_portable) break;
    }
}

void brickyard_prune_accumulate(const float *x, long n, uint32_t least, int mode, float *sum, float *vote,
                                float *negative, float *positives, float *negatives) {
    brickyard_prune_accumulate_on_path(brickyard_row_dots_path(), x, n, least, mode, sum, vote, negative, positives,
                                       negatives);
}

void brickyard_ties_finish(long n, int mode, const float *sum, const float *vote, const float *negative,
                           const float *positives, const float *negatives, float *out) {
    for (long i = 0; i < n; i++) {
        /* The elected sign: + where the vote is ≥ 0 (total: Σ values; frequency: Σ signs = positives − negatives,
         * exact in Float for any realistic number of terms). */
        int plus = mode == BRICKYARD_TV_TIES_TOTAL ? vote[i] >= 0 : positives[i] - negatives[i] >= 0;
        float count = plus ? positives[i] : negatives[i];
        out[i] = (plus ? sum[i] : negative[i]) / (count > 1 ? count : 1.0f);
    }
}
