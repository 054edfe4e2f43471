// The fused level loop: forward and backward of every delivery of a level program in one call
// (AMP, Section 3; the cells' formulas are PyTorch's, as ampsim/batched/kernels.py).
//
// A level program lists its deliveries in level order, and every delivery reads only rows made
// by deliveries of lower levels (its receiver's previous state, the message that caused it):
// so one pass over the rows in program order computes every row after its inputs (forward), and
// one pass in reverse order has every row's output gradient complete before it is used (backward).
// The level structure only matters for batching tensor operations; this loop runs row by row.
//
// Per row, forward: gather h = states[ssrc[i]], m = msgs[msrc[i]]; cell step; write the new
// state to states[c + i] and the outgoing message W_m [h' | m] + b_m to msgs[cm + i]; keep what
// the backward needs in act[i] (same layout as kernels.py). Backward: from g_states[c + i] and
// g_msgs[cm + i], the input gradients are scatter-added into g_states[ssrc[i]] and g_msgs[msrc[i]],
// and act[i] is overwritten with the pre-activation gradients (kernels.py's layout), from which the
// caller forms the parameter gradients with large matrix products.
//
// Plain C++ without torch headers, called through ctypes: it compiles in about a second.
// Subnormal floats are flushed to zero during a call (the MXCSR is restored on return).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "fastmath.h"
#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#define AMPSIM_HAVE_MXCSR 1
#endif

namespace {

using ampsim_fast::ex;
using ampsim_fast::fexp;

struct Args {
    int64_t P;          // deliveries (rows) of this call
    int64_t c, cm;      // the first own row of the state / message buffer
    int64_t H, M, S;    // hidden size, message size, state row width
    int64_t idx64;      // 1: ssrc / msrc are int64, 0: int32
    void* states;       // (c + P, S)
    void* msgs;         // (cm + P, M)
    const void* ssrc;   // (P,)
    const void* msrc;   // (P,)
    void* act;          // (P, A) or null (forward without gradients)
    void* g_states;     // backward: (c + P, S)
    void* g_msgs;       // backward: (cm + P, M)
    const void* w[8];   // the cell's weights, per kind (see the Python wrapper)
};

struct FlushDenormals {
#ifdef AMPSIM_HAVE_MXCSR
    unsigned int saved;
    FlushDenormals() : saved(_mm_getcsr()) { _mm_setcsr(saved | 0x8040u); }
    ~FlushDenormals() { _mm_setcsr(saved); }
#endif
};

template <typename T> inline T sigm(T x) { return T(1) / (T(1) + ex<T>(-x)); }
template <typename T> inline T tanh_(T x) { return std::tanh(x); }
template <> inline float tanh_<float>(float x) { return 1.0f - 2.0f / (1.0f + fexp(2.0f * x)); }

// y[0:n] += a * w[0:n]
template <typename T> inline void axpy(T* __restrict y, const T* __restrict w, T a, int64_t n) {
    for (int64_t j = 0; j < n; ++j) y[j] += a * w[j];
}

// y[0:n] += sum_k x[k] * W[k, 0:n] for k < K (W row-major with row stride ld): four rows at a time
template <typename T>
inline void gemv_t(T* __restrict y, const T* __restrict W, int64_t ld, const T* __restrict x, int64_t K, int64_t n) {
    int64_t k = 0;
    for (; k + 4 <= K; k += 4) {
        const T a0 = x[k], a1 = x[k + 1], a2 = x[k + 2], a3 = x[k + 3];
        const T* w0 = W + k * ld;
        const T* w1 = w0 + ld;
        const T* w2 = w1 + ld;
        const T* w3 = w2 + ld;
        for (int64_t j = 0; j < n; ++j) y[j] += a0 * w0[j] + a1 * w1[j] + a2 * w2[j] + a3 * w3[j];
    }
    for (; k < K; ++k) axpy(y, W + k * ld, x[k], n);
}

// y[r][0:n] += sum_k x[r][k] * W[k, 0:n] for R rows at once (each weight load serves every row)
template <int R, typename T>
inline void gemv_rows(T* const* y, const T* __restrict W, int64_t ld, const T* const* x, int64_t K, int64_t n) {
    static_assert(R == 1 || R == 2, "one or two rows");
    if (R == 1) {
        gemv_t(y[0], W, ld, x[0], K, n);
        return;
    }
    int64_t k = 0;
    for (; k + 4 <= K; k += 4) {
        const T* w0 = W + k * ld;
        const T* w1 = w0 + ld;
        const T* w2 = w1 + ld;
        const T* w3 = w2 + ld;
        T c[R][4];
        for (int r = 0; r < R; ++r)
            for (int q = 0; q < 4; ++q) c[r][q] = x[r][k + q];
        T* __restrict y0 = y[0];
        T* __restrict y1 = y[R > 1 ? 1 : 0];
        for (int64_t j = 0; j < n; ++j) {
            const T v0 = w0[j], v1 = w1[j], v2 = w2[j], v3 = w3[j];
            y0[j] += c[0][0] * v0 + c[0][1] * v1 + c[0][2] * v2 + c[0][3] * v3;
            y1[j] += c[R - 1][0] * v0 + c[R - 1][1] * v1 + c[R - 1][2] * v2 + c[R - 1][3] * v3;
        }
    }
    for (; k < K; ++k)
        for (int r = 0; r < R; ++r) axpy(y[r], W + k * ld, x[r][k], n);
}

template <typename I> inline int64_t at(const void* p, int64_t i) { return static_cast<const I*>(p)[i]; }

// The outgoing message out = b_m + Wm_t^T [h' | m]; Wm_t = W_m^T (H + M, M).
template <typename T>
inline void message(T* __restrict out, const T* __restrict h2, const T* __restrict m, const T* Wm_t, const T* bm,
                    int64_t H, int64_t M) {
    std::copy(bm, bm + M, out);
    gemv_t(out, Wm_t, M, h2, H, M);
    gemv_t(out, Wm_t + H * M, M, m, M, M);
}

// g_h[0:H] += Wm_h^T g_out, g_m[0:M] = Wm_m^T g_out; Wm = W_m (M, H + M) row-major.
template <typename T>
inline void message_back(T* __restrict g, T* __restrict g_m, const T* __restrict g_out, const T* Wm, int64_t H,
                         int64_t M) {
    std::fill(g_m, g_m + M, T(0));
    for (int64_t j = 0; j < M; ++j) {
        axpy(g, Wm + j * (H + M), g_out[j], H);
        axpy(g_m, Wm + j * (H + M) + H, g_out[j], M);
    }
}

// ------------------------------------------------------------------ GRU
// w: Wh_t = W_hh^T (H, 3H), Wi_t = W_ih^T (M, 3H), b (4H) = [b_ir + b_hr | b_iz + b_hz | b_in | b_hn],
//    Wm_t (H + M, M), bm (M), W_hh (3H, H), W_ih (3H, M), W_m (M, H + M).
// act = [r | z | n | W_hn h + b_hn]; after backward [da_r | da_z | da_n | r da_n].
// Two rows at a time where they are independent (the second does not read the first's outputs;
// backward: the first does not scatter into the second's output rows): each weight load then
// serves both rows. Rows of one level are independent, so most consecutive rows pair up.
template <typename T, int R> struct GruScratch {
    std::vector<T> buf;
    explicit GruScratch(int64_t H, int64_t M) : buf(static_cast<size_t>(R * (6 * H + 2 * M))) {}
};

template <typename T, typename I, int R>
inline void gru_fwd_rows(const Args& a, int64_t i0, T* scratch) {
    const int64_t H = a.H, M = a.M, S = a.S, H3 = 3 * H;
    const T *Wh_t = (const T*)a.w[0], *Wi_t = (const T*)a.w[1], *b = (const T*)a.w[2];
    const T *Wm_t = (const T*)a.w[3], *bm = (const T*)a.w[4];
    T* states = (T*)a.states;
    T* msgs = (T*)a.msgs;
    const T* h[R];
    const T* m[R];
    T* g[R];
    T* g3[R];
    T* hn[R];
    T* out[R];
    for (int r = 0; r < R; ++r) {
        const int64_t i = i0 + r;
        h[r] = states + at<I>(a.ssrc, i) * S;
        m[r] = msgs + at<I>(a.msrc, i) * M;
        g[r] = a.act ? (T*)a.act + i * 4 * H : scratch + r * 4 * H;
        g3[r] = g[r] + H3;
        hn[r] = states + (a.c + i) * S;
        out[r] = msgs + (a.cm + i) * M;
        std::copy(b, b + 4 * H, g[r]);
    }
    // [r z | . | ghn] from h: columns 0:2H of Wh_t go to 0:2H, columns 2H:3H to 3H:4H
    gemv_rows<R>(g, Wh_t, H3, h, H, 2 * H);
    gemv_rows<R>(g3, Wh_t + 2 * H, H3, h, H, H);
    gemv_rows<R>(g, Wi_t, H3, m, M, H3);
    for (int r = 0; r < R; ++r) {
        T* gr = g[r];
        const T* hr = h[r];
        T* hnr = hn[r];
        for (int64_t k = 0; k < 2 * H; ++k) gr[k] = sigm(gr[k]);
        for (int64_t k = 0; k < H; ++k) {
            const T n = tanh_(gr[2 * H + k] + gr[k] * gr[H3 + k]);
            gr[2 * H + k] = n;
            hnr[k] = n + gr[H + k] * (hr[k] - n);
        }
        std::copy(bm, bm + M, out[r]);
    }
    const T* hc[R];
    for (int r = 0; r < R; ++r) hc[r] = hn[r];
    gemv_rows<R>(out, Wm_t, M, hc, H, M);
    gemv_rows<R>(out, Wm_t + H * M, M, m, M, M);
}

template <typename T, typename I> void gru_forward(const Args& a) {
    GruScratch<T, 2> sc(a.H, a.M);
    int64_t i = 0;
    while (i < a.P) {
        if (i + 1 < a.P && at<I>(a.ssrc, i + 1) != a.c + i && at<I>(a.msrc, i + 1) != a.cm + i) {
            gru_fwd_rows<T, I, 2>(a, i, sc.buf.data());
            i += 2;
        } else {
            gru_fwd_rows<T, I, 1>(a, i, sc.buf.data());
            i += 1;
        }
    }
}

// rows i0, i0 - 1, ..., i0 - R + 1 (reverse order)
template <typename T, typename I, int R>
inline void gru_bwd_rows(const Args& a, int64_t i0, T* scratch) {
    const int64_t H = a.H, M = a.M, S = a.S, H3 = 3 * H;
    const T *W_hh = (const T*)a.w[5], *W_ih = (const T*)a.w[6], *Wm = (const T*)a.w[7];
    const T* states = (const T*)a.states;
    T* gs = (T*)a.g_states;
    T* gm = (T*)a.g_msgs;
    T* g[R];
    T* gh[R];
    T* g_m[R];
    T* dhh[R];
    const T* g_out[R];
    const T* actc[R];
    const T* dc[R];
    int64_t rs[R], rm[R];
    for (int r = 0; r < R; ++r) {
        const int64_t i = i0 - r;
        T* base = scratch + r * (6 * H + 2 * M);
        g[r] = base;
        gh[r] = base + H;
        g_m[r] = base + 2 * H;
        dhh[r] = base + 2 * H + M;
        rs[r] = at<I>(a.ssrc, i);
        rm[r] = at<I>(a.msrc, i);
        std::copy(gs + (a.c + i) * S, gs + (a.c + i) * S + H, g[r]);
        std::fill(g_m[r], g_m[r] + M, T(0));
        g_out[r] = gm + (a.cm + i) * M;
        actc[r] = (const T*)a.act + i * 4 * H;
        dc[r] = dhh[r];
    }
    gemv_rows<R>(g, Wm, H + M, g_out, M, H);        // g += Wm_h^T g_out
    gemv_rows<R>(g_m, Wm + H, H + M, g_out, M, M);  // g_m = Wm_m^T g_out
    for (int r = 0; r < R; ++r) {
        const T* h = states + rs[r] * S;
        T* act = (T*)a.act + (i0 - r) * 4 * H;
        T *rr = act, *z = act + H, *n = act + 2 * H, *ghn = act + H3;
        T *gr = g[r], *ghr = gh[r], *d = dhh[r];
        for (int64_t k = 0; k < H; ++k) {
            const T gk = gr[k], zk = z[k], nk = n[k], rk = rr[k];
            const T direct = gk * zk;
            const T gz = gk - direct;
            const T da_z = zk * gz * (h[k] - nk);
            const T da_n = (T(1) - nk * nk) * gz;
            const T da_r = (rk - rk * rk) * (ghn[k] * da_n);
            ghr[k] = direct;
            rr[k] = da_r;
            z[k] = da_z;
            n[k] = da_n;
            ghn[k] = rk * da_n;
            d[k] = da_r;
            d[H + k] = da_z;
            d[2 * H + k] = rk * da_n;
        }
    }
    gemv_rows<R>(gh, W_hh, H, dc, H3, H);
    gemv_rows<R>(g_m, W_ih, M, actc, H3, M);
    for (int r = 0; r < R; ++r) {
        T* gsr = gs + rs[r] * S;
        T* gmr = gm + rm[r] * M;
        for (int64_t k = 0; k < H; ++k) gsr[k] += gh[r][k];
        for (int64_t k = 0; k < M; ++k) gmr[k] += g_m[r][k];
    }
}

template <typename T, typename I> void gru_backward(const Args& a) {
    GruScratch<T, 2> sc(a.H, a.M);
    int64_t i = a.P - 1;
    while (i >= 0) {
        if (i >= 1 && at<I>(a.ssrc, i) != a.c + i - 1 && at<I>(a.msrc, i) != a.cm + i - 1) {
            gru_bwd_rows<T, I, 2>(a, i, sc.buf.data());
            i -= 2;
        } else {
            gru_bwd_rows<T, I, 1>(a, i, sc.buf.data());
            i -= 1;
        }
    }
}

// ------------------------------------------------------------------ RNN (ReLU)
// w: W_t = W^T (H + M, H), b (H), Wm_t, bm, (unused), W (H, H + M), (unused), W_m.
// act: nothing in the forward (ReLU mask = h' > 0); after backward the pre-activation gradient.
template <typename T, typename I> void rnn_forward(const Args& a) {
    const int64_t H = a.H, M = a.M, S = a.S;
    const T *W_t = (const T*)a.w[0], *b = (const T*)a.w[1], *Wm_t = (const T*)a.w[3], *bm = (const T*)a.w[4];
    T* states = (T*)a.states;
    T* msgs = (T*)a.msgs;
    for (int64_t i = 0; i < a.P; ++i) {
        const T* h = states + at<I>(a.ssrc, i) * S;
        const T* m = msgs + at<I>(a.msrc, i) * M;
        T* hn = states + (a.c + i) * S;
        std::copy(b, b + H, hn);
        gemv_t(hn, W_t, H, h, H, H);
        gemv_t(hn, W_t + H * H, H, m, M, H);
        for (int64_t k = 0; k < H; ++k) hn[k] = hn[k] > T(0) ? hn[k] : T(0);
        message(msgs + (a.cm + i) * M, hn, m, Wm_t, bm, H, M);
    }
}

template <typename T, typename I> void rnn_backward(const Args& a) {
    const int64_t H = a.H, M = a.M, S = a.S;
    const T *W = (const T*)a.w[5], *Wm = (const T*)a.w[7];
    const T* states = (const T*)a.states;
    T* gs = (T*)a.g_states;
    T* gm = (T*)a.g_msgs;
    std::vector<T> buf(2 * H + M);
    T *g = buf.data(), *gh = g + H, *g_m = gh + H;
    for (int64_t i = a.P - 1; i >= 0; --i) {
        const int64_t rs = at<I>(a.ssrc, i), rm = at<I>(a.msrc, i);
        T* act = (T*)a.act + i * H;
        const T* hn = states + (a.c + i) * S;
        std::copy(gs + (a.c + i) * S, gs + (a.c + i) * S + H, g);
        message_back(g, g_m, gm + (a.cm + i) * M, Wm, H, M);
        for (int64_t k = 0; k < H; ++k) act[k] = hn[k] > T(0) ? g[k] : T(0);
        std::fill(gh, gh + H, T(0));
        for (int64_t j = 0; j < H; ++j) {
            axpy(gh, W + j * (H + M), act[j], H);
            axpy(g_m, W + j * (H + M) + H, act[j], M);
        }
        T* gsr = gs + rs * S;
        T* gmr = gm + rm * M;
        for (int64_t k = 0; k < H; ++k) gsr[k] += gh[k];
        for (int64_t k = 0; k < M; ++k) gmr[k] += g_m[k];
    }
}

// ------------------------------------------------------------------ LSTM (state [h | c])
// w: Wh_t = W_hh^T (H, 4H), Wi_t = W_ih^T (M, 4H), b (4H) = b_ih + b_hh, Wm_t, bm, W_hh (4H, H), W_ih (4H, M), W_m.
// act = [i | f | g | o]; after backward the gate pre-activation gradients.
template <typename T, typename I> void lstm_forward(const Args& a) {
    const int64_t H = a.H, M = a.M, S = a.S, H4 = 4 * H;
    const T *Wh_t = (const T*)a.w[0], *Wi_t = (const T*)a.w[1], *b = (const T*)a.w[2];
    const T *Wm_t = (const T*)a.w[3], *bm = (const T*)a.w[4];
    T* states = (T*)a.states;
    T* msgs = (T*)a.msgs;
    std::vector<T> buf(H4);
    for (int64_t i = 0; i < a.P; ++i) {
        const T* h = states + at<I>(a.ssrc, i) * S;
        const T* m = msgs + at<I>(a.msrc, i) * M;
        T* g_ = a.act ? (T*)a.act + i * H4 : buf.data();
        std::copy(b, b + H4, g_);
        gemv_t(g_, Wh_t, H4, h, H, H4);
        gemv_t(g_, Wi_t, H4, m, M, H4);
        for (int64_t k = 0; k < 2 * H; ++k) g_[k] = sigm(g_[k]);
        for (int64_t k = 2 * H; k < 3 * H; ++k) g_[k] = tanh_(g_[k]);
        for (int64_t k = 3 * H; k < H4; ++k) g_[k] = sigm(g_[k]);
        T* hn = states + (a.c + i) * S;
        for (int64_t k = 0; k < H; ++k) {
            const T c2 = g_[H + k] * h[H + k] + g_[k] * g_[2 * H + k];
            hn[H + k] = c2;
            hn[k] = tanh_(c2) * g_[3 * H + k];
        }
        message(msgs + (a.cm + i) * M, hn, m, Wm_t, bm, H, M);
    }
}

template <typename T, typename I> void lstm_backward(const Args& a) {
    const int64_t H = a.H, M = a.M, S = a.S, H4 = 4 * H;
    const T *W_hh = (const T*)a.w[5], *W_ih = (const T*)a.w[6], *Wm = (const T*)a.w[7];
    const T* states = (const T*)a.states;
    T* gs = (T*)a.g_states;
    T* gm = (T*)a.g_msgs;
    std::vector<T> buf(2 * H + H + M);
    T *g = buf.data(), *gst = g + H, *g_m = gst + 2 * H;
    for (int64_t i = a.P - 1; i >= 0; --i) {
        const int64_t rs = at<I>(a.ssrc, i), rm = at<I>(a.msrc, i);
        const T* h = states + rs * S;
        const T* hn = states + (a.c + i) * S;
        const T* gn = gs + (a.c + i) * S;
        T* act = (T*)a.act + i * H4;
        std::copy(gn, gn + H, g);
        message_back(g, g_m, gm + (a.cm + i) * M, Wm, H, M);
        for (int64_t k = 0; k < H; ++k) {
            const T ik = act[k], fk = act[H + k], gk = act[2 * H + k], ok = act[3 * H + k];
            const T tc = tanh_(hn[H + k]);
            const T gc = gn[H + k] + g[k] * ok * (T(1) - tc * tc);
            gst[H + k] = gc * fk;
            act[3 * H + k] = ok * (T(1) - ok) * g[k] * tc;
            act[H + k] = fk * (T(1) - fk) * gc * h[H + k];
            act[2 * H + k] = (T(1) - gk * gk) * gc * ik;
            act[k] = ik * (T(1) - ik) * (gc * gk);
        }
        std::fill(gst, gst + H, T(0));
        gemv_t(gst, W_hh, H, act, H4, H);
        gemv_t(g_m, W_ih, M, act, H4, M);
        T* gsr = gs + rs * S;
        T* gmr = gm + rm * M;
        for (int64_t k = 0; k < 2 * H; ++k) gsr[k] += gst[k];
        for (int64_t k = 0; k < M; ++k) gmr[k] += g_m[k];
    }
}

}  // namespace

#define AMPSIM_ENTRY(kind, dir)                                                                      \
    extern "C" int ampsim_##kind##_##dir(const Args* a, int dtype) {                                 \
        FlushDenormals ftz;                                                                          \
        if (dtype == 32) {                                                                           \
            if (a->idx64) kind##_##dir<float, int64_t>(*a); else kind##_##dir<float, int32_t>(*a);    \
        } else if (dtype == 64) {                                                                    \
            if (a->idx64) kind##_##dir<double, int64_t>(*a); else kind##_##dir<double, int32_t>(*a);  \
        } else {                                                                                     \
            return 1;                                                                                \
        }                                                                                            \
        return 0;                                                                                    \
    }

AMPSIM_ENTRY(gru, forward)
AMPSIM_ENTRY(gru, backward)
AMPSIM_ENTRY(rnn, forward)
AMPSIM_ENTRY(rnn, backward)
AMPSIM_ENTRY(lstm, forward)
AMPSIM_ENTRY(lstm, backward)

extern "C" int ampsim_levels_abi() { return 3; }
