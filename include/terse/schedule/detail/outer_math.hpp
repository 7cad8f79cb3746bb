#pragma once
/// @file
/// The per-element outer updates of slowmo and bmuf, written once for the
/// host loops and the device kernels: every operation is a correctly
/// rounded double operation (add_rn, mul_rn; division and float rounding are
/// so already), so both backends give the same bits.

#include <terse/core/config.hpp>
#include <terse/schedule/detail/blocked_sum.hpp>

namespace terse::schedule::detail {

TERSE_HOST_DEVICE TERSE_FORCEINLINE double sub_rn(double a, double b) noexcept
{
  return add_rn(a, -b);
}

/// slowmo, with x̄ = `average` (the parameter), x₀ = `outer`, u = `momentum`:
/// u ← βu + (x₀ − x̄)/γ and x ← x̄ + ((1 − α)(x₀ − x̄) − αγβu), the same
/// value as x₀ − αγu_new and exactly x̄ when α = 1 and β = 0.
TERSE_HOST_DEVICE TERSE_FORCEINLINE void slowmo_element(float& parameter, float& momentum, float outer, double alpha,
                                                        double beta, double gamma) noexcept
{
  const double average = parameter;
  const double d = sub_rn(static_cast<double>(outer), average);
  const double u = momentum;
  momentum = static_cast<float>(add_rn(mul_rn(beta, u), d / gamma));
  parameter = static_cast<float>(
      add_rn(average, sub_rn(mul_rn(sub_rn(1.0, alpha), d), mul_rn(mul_rn(mul_rn(alpha, gamma), beta), u))));
}

/// bmuf, with x̄ = `average` (the parameter), x_s = `start`, x₀ = `global`,
/// Δ = `update`: G = x̄ − x_s, Δ ← ηΔ + ζG, x₀ ← x̄ + ((x₀ − x_s) + (ηΔ + (ζ − 1)G))
/// and x ← x₀ + ηΔ (nesterov) or x₀.
TERSE_HOST_DEVICE TERSE_FORCEINLINE void bmuf_element(float& parameter, float& global, float& update, float start,
                                                      double eta, double zeta, bool nesterov) noexcept
{
  const double average = parameter;
  const double g = sub_rn(average, static_cast<double>(start));
  const double momentum = mul_rn(eta, static_cast<double>(update));
  const double next_update = add_rn(momentum, mul_rn(zeta, g));
  const double next_global = add_rn(average, add_rn(sub_rn(static_cast<double>(global), static_cast<double>(start)),
                                                    add_rn(momentum, mul_rn(sub_rn(zeta, 1.0), g))));
  update = static_cast<float>(next_update);
  global = static_cast<float>(next_global);
  parameter = nesterov
                  ? static_cast<float>(add_rn(static_cast<double>(global), mul_rn(eta, static_cast<double>(update))))
                  : global;
}

}  // namespace terse::schedule::detail
