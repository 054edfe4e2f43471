// Shared by the compiled loops: a branch-free float exponential the compiler can vectorise.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace ampsim_fast {

// exp for float: Cody-Waite reduction, degree-6 polynomial (Cephes expf), 2^n by exponent bits;
// about 1 ulp, branch-free so that the compiler vectorises the loops that call it.
inline float fexp(float x) {
    x = std::min(std::max(x, -87.0f), 88.0f);
    float n = std::floor(x * 1.44269504088896341f + 0.5f);
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
    float scale;
    std::memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

// ex<T>: fexp for float, std::exp for double
template <typename T> inline T ex(T x) { return std::exp(x); }
template <> inline float ex<float>(float x) { return fexp(x); }

}  // namespace ampsim_fast
