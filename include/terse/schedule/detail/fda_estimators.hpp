#pragma once
/// @file
/// FDA's three estimators of the model variance
///
///     Var = (1/W) Σ_i ‖Δ_i‖² − ‖(1/W) Σ_i Δ_i‖²,   Δ_i = x_i − x_last,
///
/// each split into the local state a rank computes from its own Δ_i and the
/// estimate every rank computes from the average of those states (the
/// states are linear in what they summarise, so averaging them averages
/// the Δ_i's summaries). State slot 0 is always ‖Δ_i‖².
///
/// - naive:  [‖Δ‖², Δ] (n + 1 values): exact; the average holds mean Δ.
/// - linear: [‖Δ‖², ξ·Δ] (2 values), ξ a unit vector: ‖mean Δ‖² ≥ (ξ·mean Δ)²
///           (Cauchy–Schwarz), so the estimate is never below Var.
/// - sketch: [‖Δ‖², AMS sketch of Δ] (1 + rows·columns values): ‖mean Δ‖²
///           from the averaged sketch (median of rows), divided by 1 + ε
///           so the estimate is below Var only with probability ≤ δ
///           (ams_sketch.hpp), and above it by at most 2ε/(1+ε)·‖mean Δ‖²
///           with probability ≥ 1 − δ.

#include <terse/core/span.hpp>
#include <terse/schedule/detail/ams_sketch.hpp>
#include <terse/schedule/detail/reference_model.hpp>

#include <cstddef>
#include <cstdint>

namespace terse::schedule::detail {

inline void fda_naive_state(host_span<const float> delta, host_span<double> state) noexcept
{
  for (std::size_t i = 0; i < delta.size(); ++i) {
    state[i + 1] = delta[i];
  }
  state[0] = squared_norm(delta);
}

inline double fda_naive_estimate(host_span<const double> averaged) noexcept
{
  double mean_squared = 0;
  for (std::size_t i = 1; i < averaged.size(); ++i) {
    mean_squared += averaged[i] * averaged[i];
  }
  return averaged[0] - mean_squared;
}

/// ‖Δ‖² and ξ·Δ, each in the fixed blocked order (blocked_sum.hpp).
inline void fda_linear_state(host_span<const float> delta, host_span<const float> xi, host_span<double> state) noexcept
{
  state[0] = squared_norm(delta);
  state[1] = blocked_sum(product_term{xi.data(), delta.data()}, delta.size());
}

inline double fda_linear_estimate(host_span<const double> averaged) noexcept
{
  return averaged[0] - averaged[1] * averaged[1];
}

/// [‖v‖², AMS sketch of v] of float or double values (FDA's Δ, or a gossip
/// rank's model for the sketched consensus distance).
template <class Value>
void fda_sketch_state(host_span<const Value> delta, std::uint64_t seed, std::uint32_t rows, std::uint32_t columns,
                      host_span<double> state) noexcept
{
  state[0] = squared_norm(delta);
  for (std::size_t i = 1; i < state.size(); ++i) {
    state[i] = 0.0;
  }
  ams_sketch_add(seed, rows, columns, delta, state.subspan(1, state.size() - 1));
}

/// FDA's [‖Δ‖², AMS sketch of Δ] in the fixed chunked order the device
/// path uses too (ams_sketch_add_chunked). `chunk_row` holds `columns`
/// zeros and is left so.
inline void fda_sketch_state_chunked(host_span<const float> delta, std::uint64_t seed, std::uint32_t rows,
                                     std::uint32_t columns, host_span<double> state,
                                     host_span<double> chunk_row) noexcept
{
  state[0] = squared_norm(delta);
  for (std::size_t i = 1; i < state.size(); ++i) {
    state[i] = 0.0;
  }
  ams_sketch_add_chunked(seed, rows, columns, delta, state.subspan(1, state.size() - 1), chunk_row);
}

/// `scratch` holds `rows` doubles.
inline double fda_sketch_estimate(host_span<const double> averaged, std::uint32_t rows, std::uint32_t columns,
                                  host_span<double> scratch) noexcept
{
  const double mean_squared = ams_sketch_squared_norm(averaged.subspan(1, averaged.size() - 1), rows, columns, scratch);
  return averaged[0] - mean_squared / (1.0 + ams_sketch_epsilon(columns));
}

}  // namespace terse::schedule::detail
