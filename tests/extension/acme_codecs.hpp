#pragma once
// A user's own codecs and feedback rule, written against terse's public
// headers only, in the user's namespace, with ids from the range terse
// reserves for users (docs/extending.md walks through them). Nothing here is
// part of terse: the tests prove that terse runs them unchanged.

#include <terse/compress/wire.hpp>
#include <terse/core/error.hpp>
#include <terse/core/policy_types.hpp>
#include <terse/core/span.hpp>
#include <terse/core/state_io.hpp>

#if defined(__CUDACC__)
#include <terse/core/cuda_error.hpp>
#include <terse/core/cuda_memory.hpp>

#include <cuda_runtime_api.h>
#endif

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <map>
#include <vector>

namespace acme {

inline void require_finite(terse::host_span<const float> in, const char* who)
{
  for (const float v : in) {
    TERSE_CHECK(std::isfinite(v), terse::errc::non_finite, std::string(who) + ": the input must be finite");
  }
}

/// Summable: every value rounded to a grid of `step`, sent as floats that
/// the transport adds up. Exact on grid values.
struct grid_floats {
  static constexpr terse::aggregation aggregation_kind = terse::aggregation::summable;
  static constexpr terse::wire::codec_id id = terse::wire::user_codec(1);
  using wire_type = float;
  float step = 1.0f / 64;

  std::size_t max_encoded_bytes(std::size_t n) const noexcept { return terse::wire::header_bytes + 4 * n; }
  std::size_t wire_count(std::size_t n) const noexcept { return n; }

  void encode_values(const terse::codec_context&, terse::host_span<const float> in, terse::host_span<float> wire) const
  {
    require_finite(in, "acme::grid_floats");
    for (std::size_t i = 0; i < in.size(); ++i) {
      wire[i] = std::nearbyint(in[i] / step) * step;
    }
  }
  void decode_values(const terse::codec_context&, terse::host_span<const float> wire, terse::host_span<float> out) const
  {
    for (std::size_t i = 0; i < wire.size(); ++i) {
      out[i] = wire[i];
    }
  }
  // The byte form (checkpoint tools and the gather path use it).
  std::size_t encode(const terse::codec_context& ctx, terse::host_span<const float> in,
                     terse::host_span<std::byte> out) const
  {
    terse::wire::write_header(out, {.codec = id, .param = 0, .count = in.size(), .aux = 0});
    std::vector<float> values(in.size());
    encode_values(ctx, in, terse::host_span<float>(values));
    for (std::size_t i = 0; i < values.size(); ++i) {
      terse::wire::store(out.data() + terse::wire::header_bytes + 4 * i, values[i]);
    }
    return max_encoded_bytes(in.size());
  }
  void decode_add(const terse::codec_context&, terse::host_span<const std::byte> payload,
                  terse::host_span<float> acc) const
  {
    terse::wire::read_header(payload, id, acc.size());
    terse::wire::expect_length(payload, max_encoded_bytes(acc.size()), id);
    for (std::size_t i = 0; i < acc.size(); ++i) {
      const float v = terse::wire::load<float>(payload.data() + terse::wire::header_bytes + 4 * i);
      TERSE_CHECK(std::isfinite(v), terse::errc::malformed_payload, "acme::grid_floats: a value is not finite");
      acc[i] += v;
    }
  }
};

/// Requantizable: one signed byte per value on a grid of `step` (clamped to
/// +-127 steps). Shard owners decode, average and re-encode.
struct int8_grid {
  static constexpr terse::aggregation aggregation_kind = terse::aggregation::requantizable;
  static constexpr terse::wire::codec_id id = terse::wire::user_codec(2);
  float step = 1.0f / 16;

  std::size_t max_encoded_bytes(std::size_t n) const noexcept { return terse::wire::header_bytes + n; }

  std::size_t encode(const terse::codec_context&, terse::host_span<const float> in,
                     terse::host_span<std::byte> out) const
  {
    require_finite(in, "acme::int8_grid");
    terse::wire::write_header(out, {.codec = id, .param = 0, .count = in.size(), .aux = 0});
    for (std::size_t i = 0; i < in.size(); ++i) {
      const float steps = std::fmax(-127.0f, std::fmin(127.0f, std::nearbyint(in[i] / step)));
      out[terse::wire::header_bytes + i] = static_cast<std::byte>(static_cast<std::int8_t>(steps));
    }
    return max_encoded_bytes(in.size());
  }
  void decode_add(const terse::codec_context&, terse::host_span<const std::byte> payload,
                  terse::host_span<float> acc) const
  {
    terse::wire::read_header(payload, id, acc.size());
    terse::wire::expect_length(payload, max_encoded_bytes(acc.size()), id);
    for (std::size_t i = 0; i < acc.size(); ++i) {
      const auto steps = static_cast<std::int8_t>(payload[terse::wire::header_bytes + i]);
      TERSE_CHECK(steps != -128, terse::errc::malformed_payload, "acme::int8_grid: -128 is never sent");
      acc[i] += static_cast<float>(steps) * step;
    }
  }
};

/// Gather-only: the single largest-magnitude value as an (index, value)
/// pair. Every rank decodes every rank's pair.
struct largest_one {
  static constexpr terse::aggregation aggregation_kind = terse::aggregation::gather_only;
  static constexpr terse::wire::codec_id id = terse::wire::user_codec(3);

  std::size_t max_encoded_bytes(std::size_t) const noexcept { return terse::wire::header_bytes + 8; }

  std::size_t encode(const terse::codec_context&, terse::host_span<const float> in,
                     terse::host_span<std::byte> out) const
  {
    require_finite(in, "acme::largest_one");
    std::size_t best = 0;
    for (std::size_t i = 1; i < in.size(); ++i) {
      if (std::fabs(in[i]) > std::fabs(in[best])) {
        best = i;
      }
    }
    const std::uint64_t pairs = in.empty() ? 0 : 1;
    terse::wire::write_header(out, {.codec = id, .param = 0, .count = in.size(), .aux = pairs});
    if (pairs != 0) {
      terse::wire::store(out.data() + terse::wire::header_bytes, static_cast<std::uint32_t>(best));
      terse::wire::store(out.data() + terse::wire::header_bytes + 4, in[best]);
    }
    return terse::wire::header_bytes + 8 * pairs;
  }
  void decode_add(const terse::codec_context&, terse::host_span<const std::byte> payload,
                  terse::host_span<float> acc) const
  {
    const terse::wire::header h = terse::wire::read_header(payload, id, acc.size());
    TERSE_CHECK(h.aux <= 1 && (h.aux == 1) == !acc.empty(), terse::errc::malformed_payload,
                "acme::largest_one: one pair per non-empty payload");
    terse::wire::expect_length(payload, terse::wire::header_bytes + 8 * h.aux, id);
    if (h.aux == 1) {
      const auto index = terse::wire::load<std::uint32_t>(payload.data() + terse::wire::header_bytes);
      const auto value = terse::wire::load<float>(payload.data() + terse::wire::header_bytes + 4);
      TERSE_CHECK(index < acc.size() && std::isfinite(value), terse::errc::malformed_payload,
                  "acme::largest_one: a bad pair");
      acc[index] += value;
    }
  }
};

/// A feedback rule: keep `keep` of what compression lost (keep = 1 is plain
/// error feedback; less damps it). Transactional as terse requires:
/// compensate() changes nothing, commit() runs once the step succeeded.
class damped_residual {
 public:
  static constexpr bool stateful = true;

  explicit damped_residual(float keep = 0.5f) : keep_(keep) {}

  float keep() const noexcept { return keep_; }

  terse::host_span<const float> compensate(terse::bucket_id id, terse::host_span<const float> gradient)
  {
    std::vector<float>& e = error_of(id, gradient.size());
    std::vector<float>& c = scratch_[id];
    c.resize(gradient.size());
    for (std::size_t i = 0; i < gradient.size(); ++i) {
      c[i] = gradient[i] + e[i];
    }
    return terse::host_span<const float>(c.data(), c.size());
  }

  void commit(terse::bucket_id id, terse::host_span<const float> compensated, terse::host_span<const float> decoded)
  {
    std::vector<float>& e = error_of(id, compensated.size());
    for (std::size_t i = 0; i < compensated.size(); ++i) {
      e[i] = keep_ * (compensated[i] - decoded[i]);
    }
  }

  /// What this rank holds back for segment `id` (empty before its first step).
  const std::vector<float>& error(terse::bucket_id id) const
  {
    static const std::vector<float> none;
    const auto found = errors_.find(id);
    return found == errors_.end() ? none : found->second;
  }

  void save(terse::state_writer& out) const
  {
    out.section("acme::damped_residual");
    out.value(static_cast<std::uint64_t>(errors_.size()));
    for (const auto& [id, e] : errors_) {
      out.value(id);
      out.array(terse::host_span<const float>(e.data(), e.size()));
    }
  }
  void load(terse::state_reader& in)
  {
    in.section("acme::damped_residual");
    const auto buckets = in.value<std::uint64_t>();
    std::map<terse::bucket_id, std::vector<float>> loaded;
    for (std::uint64_t b = 0; b < buckets; ++b) {
      const auto id = in.value<terse::bucket_id>();
      std::vector<float> e(in.peek_array_length());
      in.array(terse::host_span<float>(e.data(), e.size()));
      loaded.emplace(id, std::move(e));
    }
    errors_.swap(loaded);
  }

 private:
  std::vector<float>& error_of(terse::bucket_id id, std::size_t n)
  {
    std::vector<float>& e = errors_[id];
    if (e.size() != n) {
      e.assign(n, 0.0f);
    }
    return e;
  }

  float keep_;
  std::map<terse::bucket_id, std::vector<float>> errors_;
  std::map<terse::bucket_id, std::vector<float>> scratch_;
};

#if defined(__CUDACC__)
// The device half of damped_residual, for a translation unit compiled by
// nvcc: a twin class holding the residuals in device memory, named to terse
// by the customization point device_feedback_for (found by ADL in acme's
// namespace). It computes what the host rule computes, bit for bit, and
// saves in the host rule's format, so a checkpoint moves between the two.

// Templates so that every translation unit including this header may
// define them.
template <class = void>
__global__ void damped_compensate_kernel(const float* g, const float* e, float* out, std::uint64_t n)
{
  const std::uint64_t i = blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x;
  if (i < n) {
    out[i] = g[i] + e[i];
  }
}

template <class = void>
__global__ void damped_commit_kernel(const float* compensated, const float* decoded, float* e, float keep,
                                     std::uint64_t n)
{
  const std::uint64_t i = blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x;
  if (i < n) {
    e[i] = keep * (compensated[i] - decoded[i]);
  }
}

class damped_residual_device {
 public:
  static constexpr bool stateful = true;

  terse::device_span<const float> compensate(damped_residual& host, terse::bucket_id id,
                                             terse::device_span<const float> gradient, cudaStream_t stream)
  {
    keep_ = host.keep();
    const float* e = error_of(id, gradient.size(), stream);
    float* c = scratch_of(id, gradient.size());
    launch(damped_compensate_kernel<>, gradient.size(), stream, gradient.data(), e, c,
           static_cast<std::uint64_t>(gradient.size()));
    return terse::device_span<const float>(c, gradient.size());
  }

  void commit(terse::bucket_id id, terse::device_span<const float> compensated, terse::device_span<const float> decoded,
              cudaStream_t stream)
  {
    float* e = error_of(id, compensated.size(), stream);
    launch(damped_commit_kernel<>, compensated.size(), stream, compensated.data(), decoded.data(), e, keep_,
           static_cast<std::uint64_t>(compensated.size()));
  }

  // damped_residual's format: a count, then (id, residual) per segment.
  void save(terse::state_writer& out) const
  {
    TERSE_CUDA_TRY(cudaDeviceSynchronize());
    out.section("acme::damped_residual");
    out.value(static_cast<std::uint64_t>(errors_.size()));
    std::vector<float> host;
    for (const auto& [id, e] : errors_) {
      host.resize(e.size);
      if (e.size != 0) {
        TERSE_CUDA_TRY(cudaMemcpy(host.data(), e.values.data(), e.size * sizeof(float), cudaMemcpyDeviceToHost));
      }
      out.value(id);
      out.array(terse::host_span<const float>(host.data(), host.size()));
    }
  }
  void load(terse::state_reader& in)
  {
    in.section("acme::damped_residual");
    const auto buckets = in.value<std::uint64_t>();
    std::map<terse::bucket_id, segment> loaded;
    std::vector<float> host;
    for (std::uint64_t b = 0; b < buckets; ++b) {
      const auto id = in.value<terse::bucket_id>();
      host.assign(in.peek_array_length(), 0.0f);
      in.array(terse::host_span<float>(host.data(), host.size()));
      segment& e = loaded[id];
      e.size = host.size();
      e.values.reserve(host.empty() ? 1 : host.size());
      if (!host.empty()) {
        TERSE_CUDA_TRY(cudaMemcpy(e.values.data(), host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice));
      }
    }
    errors_.swap(loaded);
  }

 private:
  struct segment {
    terse::device_buffer<float> values;
    std::size_t size = 0;
  };

  template <class Kernel, class... Args>
  static void launch(Kernel kernel, std::size_t n, cudaStream_t stream, Args... args)
  {
    if (n != 0) {
      kernel<<<static_cast<unsigned>((n + 255) / 256), 256, 0, stream>>>(args...);
      TERSE_CUDA_TRY(cudaGetLastError());
    }
  }

  float* error_of(terse::bucket_id id, std::size_t n, cudaStream_t stream)
  {
    segment& e = errors_[id];
    if (e.size != n) {  // a new segment starts from zero, as on the host
      e.values.reserve(n == 0 ? 1 : n);
      e.size = n;
      if (n != 0) {
        TERSE_CUDA_TRY(cudaMemsetAsync(e.values.data(), 0, n * sizeof(float), stream));
      }
    }
    return e.values.data();
  }
  float* scratch_of(terse::bucket_id id, std::size_t n)
  {
    segment& c = scratch_[id];
    c.values.reserve(n == 0 ? 1 : n);
    c.size = n;
    return c.values.data();
  }

  float keep_ = 0.5f;
  std::map<terse::bucket_id, segment> errors_;
  std::map<terse::bucket_id, segment> scratch_;
};

/// terse's device feedback customization point: names damped_residual's
/// device twin (declared only; terse reads its type).
damped_residual_device device_feedback_for(const damped_residual&);
#endif

}  // namespace acme
