// The attention cell's wave aggregate and the cells' noise draws in compiled code
// (ampsim/cells/aggregate.py, AttentionCell; ampsim/cells/noise.py).
//
// Wave aggregate (Velickovic et al. 2018, Eqs. 1-4, as the AMP attention cell of Section 4.1):
// for every receiver v and head h, over the delivered copies k = (u -> v) of one wave (its own
// message included as a copy v -> v),
//
//     e_k  = LeakyReLU(q[v,h] + s[u,h])            mu = max_k e_k
//     x_k  = exp(e_k - mu)                         lam = sum_k x_k
//     A[v,h,:] = sum_k x_k d_k z[u,h,:]            d_k = attention dropout (1 when off)
//
// a softmax taken at once over the set of copies (what the cell's running softmax ends with, in
// any arrival order). The copies are grouped by receiver with a counting sort (stable: copies of
// one receiver are summed in the order given), so one pass per receiver computes mu, lam and A
// without E x H x F temporaries; the backward pass walks the same groups. mu gets no gradient:
// every use of (mu, lam, A) depends on them only through (lam e^mu, A e^mu), so the terms through
// mu cancel exactly (the caller marks mu non-differentiable).
//
// Noise: u(key, counter, j) = mix(mix(key K3 + counter) xor (j K2)) / 2^32 with mix the 32-bit
// MurmurHash3 finaliser -- in uint32 arithmetic the very bits of noise.py's int64 formula, so the
// masks are the same whichever side draws them.
//
// Plain C++ without torch headers, called through ctypes (see ampsim/native.py).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "fastmath.h"

namespace {

const uint32_t K1 = 0x045D9F3Bu, K2 = 0x0119DE1Fu, K3 = 0x01000193u;

inline uint32_t mix(uint32_t x) {
    x ^= x >> 16;
    x *= K1;
    x ^= x >> 16;
    x *= K1;
    x ^= x >> 16;
    return x;
}

// bits(key, counter, col) of noise.py's _bits, for key >= 0 (callers clamp), col >= 0
inline uint32_t bits(int64_t key, int64_t counter, int64_t col) {
    uint32_t a = mix((uint32_t)((uint64_t)key * K3 + (uint64_t)counter));
    return mix(a ^ (uint32_t)((uint64_t)col * K2));
}

template <typename T>
inline T unit(uint32_t b) { return (T)(b >> 8) * (T)(1.0 / (1 << 24)); }

struct Attend {
    int64_t B, E, H, F;       // rows, copies, heads, features per head
    const int64_t* src;       // (E,) sender row of each copy
    const int64_t* dst;       // (E,) receiver row of each copy
    const int64_t* keys;      // (B,) noise keys (-1: none), or null: no attention dropout
    int64_t counter;          // the draw's counter (64 + wave)
    double p, slope;          // attention dropout rate, LeakyReLU slope
    const void* z;            // (B, H*F) the wave's messages (by sender row)
    const void* s;            // (B, H) sender scores a . z_u
    const void* q;            // (B, H) receiver scores
    int64_t* indptr;          // out (B + 1): copies of receiver v are order[indptr[v] : indptr[v+1]]
    int64_t* order;           // out (E,)
    void* ex;                 // out (E, H): x_k in grouped order (kept for the backward pass)
    void* drop;               // out (E, H): d_k in grouped order (null without dropout)
    void* slope_k;            // out (E, H): LeakyReLU's derivative at each score (1 or the slope), or null
    void* mu;                 // out (B, H)
    void* lam;                // out (B, H)
    void* A;                  // out (B, H*F)
    const void* gA;           // backward in (B, H*F)
    const void* glam;         // backward in (B, H)
    void* gz;                 // backward out, zeroed by the caller (B, H*F)
    void* gs;                 // backward out, zeroed (B, H)
    void* gq;                 // backward out, zeroed (B, H)
};

// FF > 0: the features per head as a compile-time constant (the loops over them vectorise); 0: a.F
template <typename T, int FF>
int forward(const Attend& a) {
    // every field in a local: the output pointers cannot alias them, so the loops stay tight
    const int64_t B = a.B, E = a.E, H = a.H, F = FF ? FF : a.F, HF = H * F, counter = a.counter;
    const int64_t* __restrict__ src = a.src;
    const int64_t* __restrict__ dst = a.dst;
    const int64_t* __restrict__ keys = a.keys;
    int64_t* __restrict__ indptr = a.indptr;
    int64_t* __restrict__ order = a.order;
    const T* __restrict__ z = (const T*)a.z;
    const T* __restrict__ s = (const T*)a.s;
    const T* __restrict__ q = (const T*)a.q;
    T* __restrict__ ex = (T*)a.ex;
    T* __restrict__ drop = (T*)a.drop;
    T* __restrict__ dl = (T*)a.slope_k;
    T* __restrict__ mu = (T*)a.mu;
    T* __restrict__ lam = (T*)a.lam;
    T* __restrict__ A = (T*)a.A;
    const T slope = (T)a.slope, pt = (T)a.p, scale = (T)(1.0 / (1.0 - a.p));
    for (int64_t v = 0; v <= B; ++v) indptr[v] = 0;
    for (int64_t k = 0; k < E; ++k) {
        if (dst[k] < 0 || dst[k] >= B || src[k] < 0 || src[k] >= B) return 3;
        indptr[dst[k] + 1]++;
    }
    for (int64_t v = 0; v < B; ++v) indptr[v + 1] += indptr[v];
    // stable counting sort: indptr[v] is receiver v's cursor, then shifted back by one receiver
    for (int64_t k = 0; k < E; ++k) order[indptr[dst[k]]++] = k;
    for (int64_t v = B; v > 0; --v) indptr[v] = indptr[v - 1];
    indptr[0] = 0;
    for (int64_t v = 0; v < B; ++v) {
        const int64_t k0 = indptr[v], k1 = indptr[v + 1];
        T* __restrict__ m = mu + v * H;
        T* __restrict__ l = lam + v * H;
        T* __restrict__ acc = A + v * HF;
        const T* __restrict__ qv = q + v * H;
        std::fill(acc, acc + HF, (T)0);
        for (int64_t h = 0; h < H; ++h) { m[h] = k0 == k1 ? (T)0 : -std::numeric_limits<T>::infinity(); l[h] = 0; }
        for (int64_t k = k0; k < k1; ++k) {
            const T* __restrict__ su = s + src[order[k]] * H;
            T* __restrict__ e = ex + k * H;
            for (int64_t h = 0; h < H; ++h) {
                const T x = qv[h] + su[h];
                e[h] = x > 0 ? x : x * slope;
                m[h] = std::max(m[h], e[h]);
            }
            if (dl) {  // kept for the backward pass, where a compare would become a mispredicted branch
                T* __restrict__ g = dl + k * H;
                for (int64_t h = 0; h < H; ++h) g[h] = qv[h] + su[h] > 0 ? (T)1 : slope;
            }
        }
        const bool live_v = keys && keys[v] >= 0;
        const uint32_t kv = live_v ? mix((uint32_t)((uint64_t)keys[v] * K3 + (uint64_t)counter)) : 0u;
        for (int64_t k = k0; k < k1; ++k) {
            const int64_t u = src[order[k]];
            const T* __restrict__ zu = z + u * HF;
            T* __restrict__ e = ex + k * H;
            for (int64_t h = 0; h < H; ++h) {
                e[h] = ampsim_fast::ex<T>(e[h] - m[h]);
                l[h] += e[h];
            }
            if (drop) {
                T* __restrict__ d = drop + k * H;
                if (live_v && keys[u] >= 0) {
                    const uint64_t c0 = (uint64_t)keys[u] * (uint64_t)H;
                    for (int64_t h = 0; h < H; ++h)
                        d[h] = unit<T>(mix(kv ^ (uint32_t)((c0 + (uint64_t)h) * K2))) >= pt ? scale : (T)0;
                } else {
                    for (int64_t h = 0; h < H; ++h) d[h] = 1;
                }
                for (int64_t h = 0; h < H; ++h) {
                    const T w = e[h] * d[h];
                    for (int64_t f = 0; f < F; ++f) acc[h * F + f] += w * zu[h * F + f];
                }
            } else {
                for (int64_t h = 0; h < H; ++h) {
                    const T w = e[h];
                    for (int64_t f = 0; f < F; ++f) acc[h * F + f] += w * zu[h * F + f];
                }
            }
        }
    }
    return 0;
}

template <typename T, int FF>
int backward(const Attend& a) {
    // Sender-major: each sender's gradient rows (gz, gs) are summed in registers and written once;
    // the receiver-side reads (gA, glam, q) and the small gq writes are the scattered ones.
    const int64_t B = a.B, E = a.E, H = a.H, F = FF ? FF : a.F, HF = H * F;
    const int64_t* __restrict__ src = a.src;
    const int64_t* __restrict__ dst = a.dst;
    const int64_t* __restrict__ order = a.order;
    const T* __restrict__ z = (const T*)a.z;
    const T* __restrict__ s = (const T*)a.s;
    const T* __restrict__ q = (const T*)a.q;
    const T* __restrict__ ex = (const T*)a.ex;
    const T* __restrict__ drop = (const T*)a.drop;
    const T* __restrict__ dl = (const T*)a.slope_k;
    const T* __restrict__ gA = (const T*)a.gA;
    const T* __restrict__ glam = (const T*)a.glam;
    T* __restrict__ gz = (T*)a.gz;
    T* __restrict__ gs = (T*)a.gs;
    T* __restrict__ gq = (T*)a.gq;
    // the grouped positions k of each sender's copies (counting sort of k by sender)
    std::vector<int64_t> sptr(B + 1, 0), by(E);
    for (int64_t k = 0; k < E; ++k) sptr[src[order[k]] + 1]++;
    for (int64_t u = 0; u < B; ++u) sptr[u + 1] += sptr[u];
    for (int64_t k = 0; k < E; ++k) by[sptr[src[order[k]]]++] = k;
    for (int64_t u = B; u > 0; --u) sptr[u] = sptr[u - 1];
    sptr[0] = 0;
    std::vector<T> ones_(H, (T)1), dot_(H), gzu_(HF), gsu_(H);
    const T* __restrict__ ones = ones_.data();
    T* __restrict__ dot = dot_.data();
    T* __restrict__ gzu = gzu_.data();
    T* __restrict__ gsu = gsu_.data();
    for (int64_t u = 0; u < B; ++u) {
        const int64_t j0 = sptr[u], j1 = sptr[u + 1];
        if (j0 == j1) continue;
        const T* __restrict__ zu = z + u * HF;
        std::fill(gzu, gzu + HF, (T)0);
        std::fill(gsu, gsu + H, (T)0);
        for (int64_t j = j0; j < j1; ++j) {
            const int64_t k = by[j], v = dst[order[k]];
            const T* __restrict__ gav = gA + v * HF;
            const T* __restrict__ glv = glam + v * H;
            T* __restrict__ gqv = gq + v * H;
            const T* __restrict__ x = ex + k * H;
            const T* __restrict__ d = drop ? drop + k * H : ones;
            for (int64_t h = 0; h < H; ++h) {
                T acc = 0;
#pragma omp simd reduction(+ : acc)
                for (int64_t f = 0; f < F; ++f) acc += gav[h * F + f] * zu[h * F + f];
                dot[h] = acc;
            }
            for (int64_t h = 0; h < H; ++h) {
                const T w = x[h] * d[h];
                for (int64_t f = 0; f < F; ++f) gzu[h * F + f] += w * gav[h * F + f];
            }
            // d(lam)/dx = 1, d(A)/dx = d z: the exponent's gradient is x (glam + d <gA, z>)
            const T* __restrict__ lk = dl + k * H;
            for (int64_t h = 0; h < H; ++h) {
                const T gp = (glv[h] + d[h] * dot[h]) * x[h] * lk[h];
                gqv[h] += gp;
                gsu[h] += gp;
            }
        }
        T* __restrict__ gz_out = gz + u * HF;
        T* __restrict__ gs_out = gs + u * H;
        for (int64_t i = 0; i < HF; ++i) gz_out[i] += gzu[i];
        for (int64_t h = 0; h < H; ++h) gs_out[h] += gsu[h];
    }
    return 0;
}

struct Noise {
    int64_t n;               // draws
    int64_t C;               // grid: columns per key (keys[i / C], column i % C); 0: pairs keys[i], cols[i]
    const int64_t* keys;     // (B,) or (n,) noise keys; a key < 0 draws nothing (see the callers)
    const int64_t* cols;     // (n,) columns of the pairs (null for a grid)
    int64_t counter;
    double p;                // dropout rate: out_i = u_i >= p ? 1/(1-p) : 0, and 1 where the key is < 0
    void* out;               // (n,) of the dtype
};

template <typename T>
void dropout_factors(const Noise& a) {
    T* __restrict__ out = (T*)a.out;
    const int64_t* __restrict__ keys = a.keys;
    const int64_t* __restrict__ cols = a.cols;
    const T pt = (T)a.p, scale = (T)(1.0 / (1.0 - a.p));
    const uint64_t counter = (uint64_t)a.counter;
    if (a.C) {  // a grid: row r of C columns draws with keys[r]; one mix of (key, counter) per row
        const int64_t C = a.C;
        for (int64_t r = 0; r < a.n / C; ++r) {
            T* __restrict__ o = out + r * C;
            if (keys[r] < 0) {
                for (int64_t c = 0; c < C; ++c) o[c] = 1;
                continue;
            }
            const uint32_t kv = mix((uint32_t)((uint64_t)keys[r] * K3 + counter));
            for (int64_t c = 0; c < C; ++c)
                o[c] = unit<T>(mix(kv ^ (uint32_t)((uint64_t)c * K2))) >= pt ? scale : (T)0;
        }
        return;
    }
    for (int64_t i = 0; i < a.n; ++i)
        out[i] = keys[i] < 0 ? (T)1 : (unit<T>(bits(keys[i], a.counter, cols[i])) >= pt ? scale : (T)0);
}

template <typename T>
int forward_any(const Attend& a) {
    switch (a.F) {
        case 8: return forward<T, 0>(a);
        case 16: return forward<T, 16>(a);
        default: return forward<T, 0>(a);
    }
}

template <typename T>
int backward_any(const Attend& a) {
    switch (a.F) {
        case 8: return backward<T, 8>(a);
        case 16: return backward<T, 16>(a);
        default: return backward<T, 0>(a);
    }
}

}  // namespace

extern "C" int ampsim_attend_forward(Attend* a, int dtype) {
    if (dtype == 32) return forward_any<float>(*a);
    if (dtype == 64) return forward_any<double>(*a);
    return 1;
}

extern "C" int ampsim_attend_backward(Attend* a, int dtype) {
    if (dtype == 32) return backward_any<float>(*a);
    if (dtype == 64) return backward_any<double>(*a);
    return 1;
}

extern "C" int ampsim_dropout_factors(Noise* a, int dtype) {
    if (dtype == 32) { dropout_factors<float>(*a); return 0; }
    if (dtype == 64) { dropout_factors<double>(*a); return 0; }
    return 1;
}
