#pragma once
/// @file
/// One matrix through PowerSGD's byte interface, shared by the flat
/// (near-square) view of a bucket and the per-tensor view: encode's power
/// step into the payload's factors, and decode's validation and product.

#include <terse/compress/detail/powersgd_host.hpp>
#include <terse/compress/detail/powersgd_math.hpp>
#include <terse/compress/detail/powersgd_state.hpp>
#include <terse/compress/wire.hpp>
#include <terse/core/error.hpp>
#include <terse/core/numeric.hpp>
#include <terse/core/philox.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace terse::detail {

/// One warm-started power step on M (`values`, shaped `s`) with b's Q:
/// writes P̂ (m×k) then Qᵀ (k×p) at `body` and leaves Mᵀ·P̂ in b.q_next.
/// The caller commits (swaps b.q and b.q_next) once every tensor of the
/// call succeeded. Throws errc::non_finite (nothing committed) on NaN/Inf.
/// Beyond powersgd_unscaled_limit the products run on a copy in `scaled`
/// times 2^-e; Q rows are shrunk if P̂·Qᵀ could overflow (saturation).
template <class Blas>
void powersgd_encode_matrix(const float* in, const powersgd_shape& s, powersgd_bucket& b, std::vector<float>& scaled,
                            const random_stream& shared, std::uint64_t seed_at, std::byte* body)
{
  normalise_columns(b.q.data(), b.q_hat.data(), s.p, s.k, shared, seed_at);
  float* p = b.p.data();
  const std::uint32_t largest = powersgd_multiply_p<Blas>(in, s, b.q_hat.data(), p);
  TERSE_CHECK(largest < first_non_finite_bits, errc::non_finite, "powersgd encode: the values hold NaN or Inf");

  // Huge inputs: redo the product on M·2^-e (exact scaling) and scale Q
  // back by 2^e below.
  const float* values = in;
  double scale_back = 1;
  const float magnitude = bits_float(largest);
  if (magnitude >= powersgd_unscaled_limit) {
    int exponent = 0;
    (void)std::frexp(magnitude, &exponent);
    scaled.resize(s.n);
    for (std::size_t i = 0; i < s.n; ++i) {
      scaled[i] = std::ldexp(in[i], -exponent);
    }
    values = scaled.data();
    scale_back = std::ldexp(1.0, exponent);
    (void)powersgd_multiply_p<Blas>(values, s, b.q_hat.data(), p);
  }
  TERSE_CHECK(orthonormalise_columns(p, s.m, s.k, b.work.data()), errc::internal,
              "powersgd encode: P overflowed although the input was scaled");
  powersgd_multiply_q<Blas>(values, s, p, b.q_next.data());

  std::memcpy(body, p, sizeof(float) * s.m * s.k);
  body += sizeof(float) * s.m * s.k;
  // Q on the wire: scaled back, each row shrunk if P̂·Qᵀ could overflow
  // (only ever for inputs near FLT_MAX).
  const double p_norm = max_row_norm(p, s.m, s.k);
  const float* qt = b.q_next.data();
  for (std::size_t j = 0; j < s.p; ++j) {
    double sum = 0;
    for (std::size_t c = 0; c < s.k; ++c) {
      sum += static_cast<double>(qt[c * s.p + j]) * qt[c * s.p + j];
    }
    const double norm = std::sqrt(sum) * scale_back * p_norm;
    const double factor = scale_back * (norm > powersgd_encode_product ? powersgd_encode_product / norm : 1.0);
    for (std::size_t c = 0; c < s.k; ++c) {
      wire::store(body + sizeof(float) * (c * s.p + j), static_cast<float>(qt[c * s.p + j] * factor));
    }
  }
}

/// Checks factors read off the wire (P m×k, then Qᵀ k×p): finite, and small
/// enough that P·Qᵀ cannot overflow. errc::malformed_payload otherwise.
inline void powersgd_check_factors(const float* p, const float* qt, const powersgd_shape& s)
{
  TERSE_CHECK(max_magnitude_bits(p, s.factor_count()) < first_non_finite_bits, errc::malformed_payload,
              "powersgd payload holds a non-finite factor");
  TERSE_CHECK(max_row_norm(p, s.m, s.k) * max_q_row_norm(qt, s.k, s.p) <= powersgd_max_product, errc::malformed_payload,
              "powersgd payload's factors are so large that P·Qᵀ could overflow");
}

}  // namespace terse::detail
