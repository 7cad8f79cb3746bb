#pragma once
/// @file
/// `feedback::residual`: error feedback (EF; Stich et al. 2018, Karimireddy
/// et al. 2019). What compression loses this step is added to the next
/// step's gradient, so every coordinate is eventually sent:
///
///     p = g + e;  c = C(p);  e <- p - decode(c);  send c
///
/// Used transactionally by the collectives: compensate() stages p without
/// touching e, commit() sets e once every rank's payload was exchanged. With
/// a codec that fuses it (concepts::residual_fusing_compressor) the
/// collective instead has the codec write e_new into staging() in its
/// encoding pass and calls commit_staged().

#include <terse/core/error.hpp>
#include <terse/core/policy_types.hpp>
#include <terse/core/span.hpp>
#include <terse/core/state_io.hpp>
#include <terse/feedback/detail/buffers.hpp>

#include <cstddef>

namespace terse::feedback {

class residual {
 public:
  static constexpr bool stateful = true;

  /// p = g + e, staged; the state is unchanged.
  host_span<const float> compensate(bucket_id id, host_span<const float> gradient)
  {
    const host_span<const float> e = error_.get(id, gradient.size());
    const host_span<float> p = staged_.get(id, gradient.size());
    for (std::size_t i = 0; i < gradient.size(); ++i) {
      p[i] = gradient[i] + e[i];
    }
    return p;
  }

  /// e = compensated - decoded.
  void commit(bucket_id id, host_span<const float> compensated, host_span<const float> decoded)
  {
    const host_span<float> e = error_.get(id, compensated.size());
    for (std::size_t i = 0; i < compensated.size(); ++i) {
      e[i] = compensated[i] - decoded[i];
    }
  }

  /// For fused codecs: the error held back so far, and where the codec
  /// writes the next one.
  host_span<const float> error(bucket_id id, std::size_t count) { return error_.get(id, count); }
  host_span<float> staging(bucket_id id, std::size_t count) { return staged_.get(id, count); }
  /// Makes the staged error current (after the exchange succeeded).
  void commit_staged(bucket_id id) { error_.swap(id, staged_); }

  /// Adds `lost` to the error held back at [offset, offset + lost.size())
  /// of segment `id`, after its commit: what a sparse reduce-scatter owner's
  /// re-selection dropped, so it is sent in a later step.
  void hold_back(bucket_id id, std::size_t offset, host_span<const float> lost)
  {
    const host_span<float> e = error_.existing(id);
    TERSE_EXPECTS(offset + lost.size() <= e.size(), "hold_back past the end of the segment");
    for (std::size_t i = 0; i < lost.size(); ++i) {
      e[offset + i] += lost[i];
    }
  }

  /// Squared norm of everything held back (bounded under EF: a test checks).
  double held_back_squared_norm() const { return error_.squared_norm(); }

  void save(state_writer& out) const
  {
    out.section("feedback::residual");
    error_.save(out);
  }
  void load(state_reader& in)
  {
    in.section("feedback::residual");
    error_.load(in);
  }

 private:
  detail::keyed_buffers error_;
  detail::keyed_buffers staged_;
};

}  // namespace terse::feedback
