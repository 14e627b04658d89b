/* Elementwise passes of the task-vector merges (ties, dare_*, magnitude_prune; see csimd.h for the exact
 * arithmetic): the magnitude scan that finds each τ_i's exact cut, and one fused pass that prunes the blocks of a
 * group of terms and adds them, in term order, into the running sums of the sign election and the disjoint mean.
 * Integer work (the scan, the pruning masks) is exact on every path; the float work is one rounded addition (or
 * division) per element and term, never fused, so the bits do not depend on the vector width. */
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

#define SCAN_BODY                                                                                              \
    long above_ = 0, found_ = *found;                                                                          \
    for (long i = 0; i < n; i++) {                                                                             \
        uint32_t a = magnitude_bits(x[i]);                                                                     \
        above_ += a > hi;                                                                                      \
        if (a >= lo && a <= hi) {                                                                              \
            if (found_ < capacity) {                                                                           \
                candidates[found_] = a;                                                                        \
                positions[found_] = first + (uint32_t)i;                                                       \
            }                                                                                                  \
            found_++;                                                                                          \
        }                                                                                                      \
    }                                                                                                          \
    *above += above_;                                                                                          \
    *found = found_;

static void scan_portable(const float *x, long n, uint32_t first, uint32_t lo, uint32_t hi, long *above,
                          uint32_t *candidates, uint32_t *positions, long capacity, long *found) { SCAN_BODY }

/* Entry i of term t survives iff a > thresholds[t], or a == thresholds[t] and i <= tie_limits[t] (a = |value|'s
 * bits; pruned entries read +0). */
static inline float pruned(const float *block, long i, uint32_t threshold, long tie_limit) {
    uint32_t bits;
    memcpy(&bits, block + i, sizeof bits);
    uint32_t a = bits & 0x7fffffffu;
    bits &= (a > threshold || (a == threshold && i <= tie_limit)) ? 0xffffffffu : 0u;
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

typedef float lanes16 __attribute__((ext_vector_type(16)));
typedef uint32_t bits16 __attribute__((ext_vector_type(16)));
typedef int32_t ints16 __attribute__((ext_vector_type(16)));

#define LOADF(p) ({ lanes16 v_; memcpy(&v_, (p), sizeof v_); v_; })
#define LOADU(p) ({ bits16 v_; memcpy(&v_, (p), sizeof v_); v_; })
#define STOREF(p, v) do { lanes16 s_ = (v); memcpy((p), &s_, sizeof s_); } while (0)
#define ASF(u) ({ bits16 u_ = (u); lanes16 f_; memcpy(&f_, &u_, sizeof f_); f_; })
#define ASU(f) ({ lanes16 f_ = (f); bits16 u_; memcpy(&u_, &f_, sizeof u_); u_; })

/* Every entry's sums take the group's terms in order (16 entries at a time, each sum loaded and stored once per
 * group); a value is added where kept and +0 elsewhere (masking its bits), exactly the scalar tail's arithmetic. */
#define GROUP_BODY(mode_value)                                                                                 \
    const ints16 iota = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };                             \
    const bits16 one = ASU((lanes16)1.0f);                                                                     \
    long i = 0;                                                                                                \
    for (; i + 16 <= n; i += 16) {                                                                             \
        lanes16 s = LOADF(sum + i), vo = 0, ne = 0, po = 0, nn = 0;                                            \
        if ((mode_value) == BRICKYARD_TV_TIES_TOTAL) vo = LOADF(vote + i);                                     \
        if ((mode_value) != BRICKYARD_TV_SUM) { ne = LOADF(negative + i); po = LOADF(positives + i);           \
                                                nn = LOADF(negatives + i); }                                   \
        ints16 index = iota + (int32_t)i;                                                                      \
        for (int t = 0; t < terms; t++) {                                                                      \
            bits16 bits = LOADU(blocks[t] + i);                                                                \
            bits16 a = bits & 0x7fffffffu;                                                                     \
            ints16 keep = (a > thresholds[t]) | ((a == thresholds[t]) & (index <= (int32_t)tie_limits[t]));   \
            lanes16 v = ASF(bits & (bits16)keep);                                                              \
            if ((mode_value) == BRICKYARD_TV_SUM) { s = s + v; continue; }                                     \
            if ((mode_value) == BRICKYARD_TV_TIES_TOTAL) vo = vo + v;                                          \
            bits16 plus = (bits16)(v > 0), minus = (bits16)(v < 0);                                            \
            s = s + ASF(ASU(v) & plus);                                                                        \
            ne = ne + ASF(ASU(v) & minus);                                                                     \
            po = po + ASF(one & plus);                                                                         \
            nn = nn + ASF(one & minus);                                                                        \
        }                                                                                                      \
        STOREF(sum + i, s);                                                                                    \
        if ((mode_value) == BRICKYARD_TV_TIES_TOTAL) STOREF(vote + i, vo);                                     \
        if ((mode_value) != BRICKYARD_TV_SUM) { STOREF(negative + i, ne); STOREF(positives + i, po);           \
                                                STOREF(negatives + i, nn); }                                   \
    }                                                                                                          \
    for (; i < n; i++) {                                                                                       \
        float s = sum[i], vo = 0, ne = 0, po = 0, nn = 0;                                                      \
        if ((mode_value) == BRICKYARD_TV_TIES_TOTAL) vo = vote[i];                                             \
        if ((mode_value) != BRICKYARD_TV_SUM) { ne = negative[i]; po = positives[i]; nn = negatives[i]; }      \
        for (int t = 0; t < terms; t++) {                                                                      \
            float v = pruned(blocks[t], i, thresholds[t], tie_limits[t]);                                      \
            if ((mode_value) == BRICKYARD_TV_SUM) { s = s + v; continue; }                                     \
            if ((mode_value) == BRICKYARD_TV_TIES_TOTAL) vo = vo + v;                                          \
            s = s + (v > 0 ? v : 0.0f);                                                                        \
            ne = ne + (v < 0 ? v : 0.0f);                                                                      \
            po = po + (v > 0 ? 1.0f : 0.0f);                                                                   \
            nn = nn + (v < 0 ? 1.0f : 0.0f);                                                                   \
        }                                                                                                      \
        sum[i] = s;                                                                                            \
        if ((mode_value) == BRICKYARD_TV_TIES_TOTAL) vote[i] = vo;                                             \
        if ((mode_value) != BRICKYARD_TV_SUM) { negative[i] = ne; positives[i] = po; negatives[i] = nn; }      \
    }

#define GROUP_SIGNATURE                                                                                        \
    (const float *const *blocks, const uint32_t *thresholds, const long *tie_limits, int terms, long n,        \
     float *sum, float *vote, float *negative, float *positives, float *negatives)
#define GROUP_ARGUMENTS blocks, thresholds, tie_limits, terms, n, sum, vote, negative, positives, negatives

static void sum_portable GROUP_SIGNATURE { (void)vote; (void)negative; (void)positives; (void)negatives;
                                           GROUP_BODY(BRICKYARD_TV_SUM) }
static void ties_portable GROUP_SIGNATURE { GROUP_BODY(BRICKYARD_TV_TIES_FREQUENCY) }
static void ties_vote_portable GROUP_SIGNATURE { GROUP_BODY(BRICKYARD_TV_TIES_TOTAL) }

#define DISPATCH(sum_fn, ties_fn, ties_vote_fn)                                                                \
    switch (mode) {                                                                                            \
    case BRICKYARD_TV_SUM: sum_fn(GROUP_ARGUMENTS); break;                                                     \
    case BRICKYARD_TV_TIES_TOTAL: ties_vote_fn(GROUP_ARGUMENTS); break;                                        \
    default: ties_fn(GROUP_ARGUMENTS); break;                                                                  \
    }

#if defined(__x86_64__) || defined(__i386__)
/* 16 magnitudes at a time: the count above by a popcount of the compare mask, the candidates (and their positions)
 * by an in-register compress and a full-width store whatever the mask (no branch to mispredict; the buffers have 16
 * spare slots), kept only up to `capacity`. */
__attribute__((target("avx512f")))
static void scan_avx512(const float *x, long n, uint32_t first, uint32_t lo, uint32_t hi, long *above,
                        uint32_t *candidates, uint32_t *positions, long capacity, long *found) {
    const __m512i mask = _mm512_set1_epi32(0x7fffffff), low = _mm512_set1_epi32((int)lo),
                  high = _mm512_set1_epi32((int)hi), sixteen = _mm512_set1_epi32(16);
    __m512i index = _mm512_add_epi32(_mm512_set1_epi32((int)first),
                                     _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
    long above_ = 0, found_ = *found, i = 0;
    for (; i + 16 <= n && found_ + 16 <= capacity; i += 16) {
        __m512i a = _mm512_and_si512(_mm512_loadu_si512((const void *)(x + i)), mask);
        __mmask16 over = _mm512_cmpgt_epu32_mask(a, high);
        __mmask16 inside = _mm512_mask_cmpge_epu32_mask(_mm512_cmple_epu32_mask(a, high), a, low);
        above_ += __builtin_popcount((unsigned)over);
        _mm512_storeu_si512((void *)(candidates + found_), _mm512_maskz_compress_epi32(inside, a));
        _mm512_storeu_si512((void *)(positions + found_), _mm512_maskz_compress_epi32(inside, index));
        found_ += __builtin_popcount((unsigned)inside);
        index = _mm512_add_epi32(index, sixteen);
    }
    *above += above_;
    *found = found_;
    scan_portable(x + i, n - i, first + (uint32_t)i, lo, hi, above, candidates, positions, capacity, found);
}
__attribute__((target("avx2")))
static void scan_avx2(const float *x, long n, uint32_t first, uint32_t lo, uint32_t hi, long *above,
                      uint32_t *candidates, uint32_t *positions, long capacity, long *found) { SCAN_BODY }
__attribute__((target("avx512f")))
static void sum_avx512 GROUP_SIGNATURE { (void)vote; (void)negative; (void)positives; (void)negatives;
                                         GROUP_BODY(BRICKYARD_TV_SUM) }
__attribute__((target("avx512f")))
static void ties_avx512 GROUP_SIGNATURE { GROUP_BODY(BRICKYARD_TV_TIES_FREQUENCY) }
__attribute__((target("avx512f")))
static void ties_vote_avx512 GROUP_SIGNATURE { GROUP_BODY(BRICKYARD_TV_TIES_TOTAL) }
__attribute__((target("avx2")))
static void sum_avx2 GROUP_SIGNATURE { (void)vote; (void)negative; (void)positives; (void)negatives;
                                       GROUP_BODY(BRICKYARD_TV_SUM) }
__attribute__((target("avx2")))
static void ties_avx2 GROUP_SIGNATURE { GROUP_BODY(BRICKYARD_TV_TIES_FREQUENCY) }
__attribute__((target("avx2")))
static void ties_vote_avx2 GROUP_SIGNATURE { GROUP_BODY(BRICKYARD_TV_TIES_TOTAL) }
#endif

void brickyard_magnitude_scan_on_path(int path, const float *x, long n, uint32_t first, uint32_t lo, uint32_t hi,
                                      long *above, uint32_t *candidates, uint32_t *positions, long capacity,
                                      long *found) {
    if (n <= 0) return;
    if (path > brickyard_row_dots_path()) path = brickyard_row_dots_path();
    switch (path) {
#if defined(__x86_64__) || defined(__i386__)
    case 2: scan_avx512(x, n, first, lo, hi, above, candidates, positions, capacity, found); break;
    case 1: scan_avx2(x, n, first, lo, hi, above, candidates, positions, capacity, found); break;
#endif
    default: scan_portable(x, n, first, lo, hi, above, candidates, positions, capacity, found); break;
    }
}

void brickyard_magnitude_scan(const float *x, long n, uint32_t first, uint32_t lo, uint32_t hi, long *above,
                              uint32_t *candidates, uint32_t *positions, long capacity, long *found) {
    brickyard_magnitude_scan_on_path(brickyard_row_dots_path(), x, n, first, lo, hi, above, candidates, positions,
                                     capacity, found);
}

void brickyard_prune_accumulate_on_path(int path, const float *const *blocks, const uint32_t *thresholds,
                                        const long *tie_limits, int terms, long n, int mode, float *sum, float *vote,
                                        float *negative, float *positives, float *negatives) {
    if (n <= 0 || terms <= 0) return;
    if (path > brickyard_row_dots_path()) path = brickyard_row_dots_path();
    switch (path) {
#if defined(__x86_64__) || defined(__i386__)
    case 2: DISPATCH(sum_avx512, ties_avx512, ties_vote_avx512) break;
    case 1: DISPATCH(sum_avx2, ties_avx2, ties_vote_avx2) break;
#endif
    default: DISPATCH(sum_portable, ties_portable, ties_vote_portable) break;
    }
}

void brickyard_prune_accumulate(const float *const *blocks, const uint32_t *thresholds, const long *tie_limits,
                                int terms, long n, int mode, float *sum, float *vote, float *negative,
                                float *positives, float *negatives) {
    brickyard_prune_accumulate_on_path(brickyard_row_dots_path(), blocks, thresholds, tie_limits, terms, n, mode,
                                       sum, vote, negative, positives, negatives);
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
