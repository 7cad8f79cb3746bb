#pragma once
/// @file
/// The mixers of terse::gossip: what a rank does with what its neighbours
/// send in one topology round. The mixer is a type (a structural choice);
/// its numbers are fields.
///
/// | mixer | weights it needs | a rank sends | state per rank |
/// |---|---|---|---|
/// | `average` (D-PSGD) | doubly stochastic (row: a weighted mean) | its model | none |
/// | `push_sum` (SGP) | column stochastic, any directed graph | its share of (z, w): n + 1 values | the weight w |
/// | `choco<Codec>` | doubly stochastic, static graph | C(x − x̂), the codec's payload | x̂ and s: two vectors |

#include <terse/compress/identity.hpp>
#include <terse/core/concepts.hpp>

#include <cstdint>
#include <ostream>
#include <string_view>
#include <type_traits>

namespace terse::mixer {

/// Neighbour averaging, the gossip step of D-PSGD (Lian, Zhang, Zhang, Hsieh,
/// Zhang, Liu: "Can Decentralized Algorithms Outperform Centralized
/// Algorithms?", NeurIPS 2017): x_i ← Σ_j M_ij x_j.
struct average {
  static constexpr std::string_view name = "average";
  friend std::ostream& operator<<(std::ostream& os, const average&) { return os << "average"; }
};

/// Push-sum (Kempe, Dobra, Gehrke: "Gossip-Based Computation of Aggregate
/// Information", FOCS 2003), the mixer of Stochastic Gradient Push (Assran,
/// Loizou, Ballas, Rabbat: "Stochastic Gradient Push for Distributed Deep
/// Learning", ICML 2019). Each rank keeps z = w·x and a weight w (1 at
/// start); a sender splits both by its column of M, receivers add what
/// arrives, and the model is z / w. Σ z and Σ w = W never change, so any
/// column-stochastic (directed, time-varying) graph reaches the exact mean.
struct push_sum {
  static constexpr std::string_view name = "push-sum";
  friend std::ostream& operator<<(std::ostream& os, const push_sum&) { return os << "push-sum"; }
};

/// CHOCO-gossip (Koloskova, Stich, Jaggi: "Decentralized Stochastic
/// Optimization and Gossip Algorithms with Compressed Communication",
/// ICML 2019) in its memory-efficient form, with any terse codec. Each rank
/// keeps its public copy x̂_i (which its neighbours hold too) and
/// s_i = Σ_j M_ij x̂_j; per round q_i = C(x_i − x̂_i) travels, then
/// x̂_i += q_i, s_i += Σ_j M_ij q_j, x_i += γ (s_i − x̂_i). The mean of x is
/// kept for any codec and γ; for a small enough γ the ranks reach consensus
/// at a linear rate, where compressing x itself stalls.
///
/// CHOCO needs a contractive codec, E‖C(v) − v‖² ≤ (1 − δ)‖v‖². Biased
/// codecs (top-k, threshold, sign, casts, random-k with `unbiased =
/// false`) are contractive as they are. An unbiased codec with variance
/// ω‖v‖² (QSGD, TernGrad, uniform b-bit, unbiased random-k) is used as
/// C/(1 + ω): every rank scales every decoded message by `scale`, by
/// default 1/(1 + ω) from the codec's variance bound (docs/gossip.md lists
/// them). PowerSGD is refused: its factors need every rank's matrix.
template <class Codec = compress::identity>
struct choco {
  static_assert(concepts::compressor<Codec>, "mixer::choco<Codec>: Codec must be a terse compressor");
  static constexpr std::string_view name = "choco";
  using codec_type = Codec;

  Codec codec{};
  /// The consensus step γ, 0 < γ <= 1.
  double gamma = 1.0;
  /// What every decoded message is multiplied by; 0 picks 1/(1 + ω) from
  /// the codec's variance bound (1 for biased codecs).
  double scale = 0.0;

  friend std::ostream& operator<<(std::ostream& os, const choco& c)
  {
    return os << "choco{gamma=" << c.gamma << ", scale=" << c.scale << '}';
  }
};

template <class Codec>
choco(Codec) -> choco<Codec>;
template <class Codec>
choco(Codec, double) -> choco<Codec>;
template <class Codec>
choco(Codec, double, double) -> choco<Codec>;

}  // namespace terse::mixer

namespace terse::detail {
template <class M>
struct is_choco : std::false_type {
};
template <class Codec>
struct is_choco<mixer::choco<Codec>> : std::true_type {
};

/// The mixers terse::gossip knows.
template <class M>
concept gossip_mixer = std::is_same_v<M, mixer::average> || std::is_same_v<M, mixer::push_sum> || is_choco<M>::value;

/// A stable number per mixer, written into frames and saved state.
template <class M>
constexpr std::uint8_t mixer_tag() noexcept
{
  if constexpr (std::is_same_v<M, mixer::average>) {
    return 1;
  } else if constexpr (std::is_same_v<M, mixer::push_sum>) {
    return 2;
  } else {
    return 3;
  }
}
}  // namespace terse::detail
