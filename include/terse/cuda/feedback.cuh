#pragma once
/// @file
/// Error-feedback state in device memory, for the compressed allreduce on
/// device buffers: the same rules as feedback/*.hpp (residual, DGC momentum
/// correction, periodic flush, none), with elementwise kernels, keyed by
/// segment id, used transactionally (compensate stages, commit keeps). The
/// host feedback object supplies the configuration. save() writes exactly
/// what the host rule writes, so state moves between host and device.

#include <terse/core/cuda_error.hpp>
#include <terse/core/cuda_memory.hpp>
#include <terse/core/error.hpp>
#include <terse/core/policy_types.hpp>
#include <terse/core/span.hpp>
#include <terse/core/state_io.hpp>
#include <terse/cuda/detail/user_feedback.cuh>
#include <terse/feedback/dgc_momentum.hpp>
#include <terse/feedback/none.hpp>
#include <terse/feedback/periodic_flush.hpp>
#include <terse/feedback/residual.hpp>

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace terse::detail {

inline constexpr int feedback_threads = 256;

inline unsigned feedback_blocks(std::size_t n) noexcept
{
  const std::size_t blocks = (n + feedback_threads - 1) / feedback_threads;
  return static_cast<unsigned>(std::min<std::size_t>(std::max<std::size_t>(blocks, 1), 8192));
}

// Grid-stride loops: any n with a bounded grid.
// The kernels below are templates only so that every translation unit
// including this header may define them (a non-template __global__
// function defined in a header is a duplicate symbol at link time).
template <class = void>
__global__ void feedback_add_kernel(const float* a, const float* b, float* out, std::uint64_t n)
{
  for (std::uint64_t i = blockIdx.x * std::uint64_t{blockDim.x} + threadIdx.x; i < n;
       i += std::uint64_t{gridDim.x} * blockDim.x) {
    out[i] = a[i] + b[i];
  }
}

template <class = void>
__global__ void feedback_subtract_kernel(const float* a, const float* b, float* out, std::uint64_t n)
{
  for (std::uint64_t i = blockIdx.x * std::uint64_t{blockDim.x} + threadIdx.x; i < n;
       i += std::uint64_t{gridDim.x} * blockDim.x) {
    out[i] = a[i] - b[i];
  }
}

template <class = void>
__global__ void feedback_scale_kernel(float* x, float factor, std::uint64_t n)
{
  for (std::uint64_t i = blockIdx.x * std::uint64_t{blockDim.x} + threadIdx.x; i < n;
       i += std::uint64_t{gridDim.x} * blockDim.x) {
    x[i] *= factor;
  }
}

template <class = void>
__global__ void feedback_dgc_compensate_kernel(const float* g, const float* m, const float* v, float* m_next,
                                               float* v_next, float momentum, float clip, std::uint64_t n)
{
  for (std::uint64_t i = blockIdx.x * std::uint64_t{blockDim.x} + threadIdx.x; i < n;
       i += std::uint64_t{gridDim.x} * blockDim.x) {
    const float mi = momentum * m[i] + clip * g[i];
    m_next[i] = mi;
    v_next[i] = v[i] + mi;
  }
}

template <class = void>
__global__ void feedback_dgc_commit_kernel(const float* v_next, const float* decoded, const float* m_next, float* v,
                                           float* m, std::uint64_t n)
{
  for (std::uint64_t i = blockIdx.x * std::uint64_t{blockDim.x} + threadIdx.x; i < n;
       i += std::uint64_t{gridDim.x} * blockDim.x) {
    const float d = decoded[i];
    v[i] = v_next[i] - d;
    m[i] = d != 0.0f ? 0.0f : m_next[i];
  }
}

// Sum of squares in double, in a fixed order (per-block trees, then one
// block over the partials): deterministic run to run.
inline constexpr int feedback_norm_blocks = 256;

template <class = void>
__global__ void feedback_sum_squares_partials_kernel(const float* x, std::uint64_t n, double* partials)
{
  __shared__ double lanes[feedback_threads];
  double sum = 0;
  for (std::uint64_t i = blockIdx.x * std::uint64_t{blockDim.x} + threadIdx.x; i < n;
       i += std::uint64_t{gridDim.x} * blockDim.x) {
    sum += static_cast<double>(x[i]) * x[i];
  }
  lanes[threadIdx.x] = sum;
  __syncthreads();
  for (int half = feedback_threads / 2; half > 0; half /= 2) {
    if (static_cast<int>(threadIdx.x) < half) {
      lanes[threadIdx.x] += lanes[threadIdx.x + half];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    partials[blockIdx.x] = lanes[0];
  }
}

template <class = void>
__global__ void feedback_sum_partials_kernel(const double* partials, int count, double* out)
{
  if (threadIdx.x == 0 && blockIdx.x == 0) {
    double sum = 0;
    for (int i = 0; i < count; ++i) {
      sum += partials[i];
    }
    *out = sum;
  }
}

template <class Kernel, class... Args>
void launch_feedback_kernel(Kernel kernel, std::size_t n, cudaStream_t stream, Args... args)
{
  if (n == 0) {
    return;
  }
  kernel<<<feedback_blocks(n), feedback_threads, 0, stream>>>(args...);
  TERSE_CUDA_TRY(cudaGetLastError());
}

/// Device float buffers keyed by segment id: sized and zeroed on first use.
class device_keyed_buffers {
 public:
  float* get(bucket_id id, std::size_t count, cudaStream_t stream)
  {
    if (id >= buffers_.size()) {
      buffers_.resize(id + 1);
      sizes_.resize(id + 1, unsized);
    }
    if (sizes_[id] != count) {
      TERSE_EXPECTS(sizes_[id] == unsized, "device feedback state for segment " + std::to_string(id) + " holds " +
                                               std::to_string(sizes_[id]) + " values, not " + std::to_string(count));
      buffers_[id].reserve(count);
      if (count != 0) {
        TERSE_CUDA_TRY(cudaMemsetAsync(buffers_[id].data(), 0, count * sizeof(float), stream));
      }
      sizes_[id] = count;
    }
    return buffers_[id].data();
  }

  void swap(bucket_id id, device_keyed_buffers& other) noexcept
  {
    std::swap(buffers_[id], other.buffers_[id]);
    std::swap(sizes_[id], other.sizes_[id]);
  }

  /// Same layout as terse::detail::keyed_buffers::save (a count, then one
  /// array per segment). Waits for the device.
  void save(state_writer& out) const
  {
    TERSE_CUDA_TRY(cudaDeviceSynchronize());
    out.value(static_cast<std::uint64_t>(buffers_.size()));
    std::vector<float> host;
    for (std::size_t i = 0; i < buffers_.size(); ++i) {
      const std::size_t count = sizes_[i] == unsized ? 0 : sizes_[i];
      host.resize(count);
      if (count != 0) {
        TERSE_CUDA_TRY(cudaMemcpy(host.data(), buffers_[i].data(), count * sizeof(float), cudaMemcpyDeviceToHost));
      }
      out.array(host_span<const float>(host));
    }
  }

  void load(state_reader& in)
  {
    const auto count = in.value<std::uint64_t>();
    std::vector<float> host;
    buffers_.clear();
    sizes_.clear();
    buffers_.resize(count);
    sizes_.resize(count, unsized);
    for (std::size_t i = 0; i < count; ++i) {
      host.assign(in.peek_array_length(), 0.0f);
      in.array(host_span<float>(host));
      buffers_[i].reserve(host.size());
      if (!host.empty()) {
        TERSE_CUDA_TRY(
            cudaMemcpy(buffers_[i].data(), host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice));
      }
      sizes_[i] = host.size();
    }
  }

 private:
  static constexpr std::size_t unsized = ~std::size_t{0};
  std::vector<device_buffer<float>> buffers_;
  std::vector<std::size_t> sizes_;
};

/// The device twin of a host feedback rule F.
template <class F>
struct device_feedback;

template <>
struct device_feedback<feedback::none> {
  static constexpr bool stateful = false;
  device_span<const float> compensate(feedback::none&, bucket_id, device_span<const float> g, cudaStream_t)
  {
    return g;
  }
  void commit(bucket_id, device_span<const float>, device_span<const float>, cudaStream_t) {}
  void save(state_writer&) const {}
  void load(state_reader&) {}
};

template <>
struct device_feedback<feedback::residual> {
  static constexpr bool stateful = true;

  device_span<const float> compensate(feedback::residual&, bucket_id id, device_span<const float> g,
                                      cudaStream_t stream)
  {
    const float* e = error_.get(id, g.size(), stream);
    float* p = staged_.get(id, g.size(), stream);
    launch_feedback_kernel(feedback_add_kernel<>, g.size(), stream, g.data(), e, p, std::uint64_t{g.size()});
    return device_span<const float>(p, g.size());
  }
  void commit(bucket_id id, device_span<const float> compensated, device_span<const float> decoded, cudaStream_t stream)
  {
    float* e = error_.get(id, compensated.size(), stream);
    launch_feedback_kernel(feedback_subtract_kernel<>, compensated.size(), stream, compensated.data(), decoded.data(),
                           e, std::uint64_t{compensated.size()});
  }
  // Fused codecs write the next residual into staging().
  device_span<const float> error(bucket_id id, std::size_t n, cudaStream_t stream)
  {
    return device_span<const float>(error_.get(id, n, stream), n);
  }
  device_span<float> staging(bucket_id id, std::size_t n, cudaStream_t stream)
  {
    return device_span<float>(staged_.get(id, n, stream), n);
  }
  void commit_staged(bucket_id id) noexcept { error_.swap(id, staged_); }

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
  device_keyed_buffers error_;
  device_keyed_buffers staged_;
};

template <>
struct device_feedback<feedback::dgc_momentum> {
  static constexpr bool stateful = true;

  /// Clipping factor from the global norm of this rank's whole gradient.
  void begin_step(feedback::dgc_momentum& host, device_span<const float> gradient, int world, cudaStream_t stream)
  {
    clip_ = 1.0f;
    if (host.config().max_norm <= 0.0f || gradient.empty()) {
      return;
    }
    partials_.reserve(feedback_norm_blocks + 1);
    pinned_.reserve(1);
    feedback_sum_squares_partials_kernel<>
        <<<feedback_norm_blocks, feedback_threads, 0, stream>>>(gradient.data(), gradient.size(), partials_.data());
    TERSE_CUDA_TRY(cudaGetLastError());
    feedback_sum_partials_kernel<>
        <<<1, 1, 0, stream>>>(partials_.data(), feedback_norm_blocks, partials_.data() + feedback_norm_blocks);
    TERSE_CUDA_TRY(cudaGetLastError());
    TERSE_CUDA_TRY(cudaMemcpyAsync(pinned_.data(), partials_.data() + feedback_norm_blocks, sizeof(double),
                                   cudaMemcpyDeviceToHost, stream));
    TERSE_CUDA_TRY(cudaStreamSynchronize(stream));
    const double limit = host.config().max_norm / std::sqrt(static_cast<double>(world));
    const double norm = std::sqrt(*pinned_.data());
    if (norm > limit) {
      clip_ = static_cast<float>(limit / norm);
    }
  }

  device_span<const float> compensate(feedback::dgc_momentum& host, bucket_id id, device_span<const float> g,
                                      cudaStream_t stream)
  {
    const std::size_t n = g.size();
    const float* m = momentum_.get(id, n, stream);
    const float* v = accumulated_.get(id, n, stream);
    float* m_next = staged_momentum_.get(id, n, stream);
    float* v_next = staged_accumulated_.get(id, n, stream);
    launch_feedback_kernel(feedback_dgc_compensate_kernel<>, n, stream, g.data(), m, v, m_next, v_next,
                           host.config().momentum, clip_, std::uint64_t{n});
    return device_span<const float>(v_next, n);
  }

  void commit(bucket_id id, device_span<const float> compensated, device_span<const float> decoded, cudaStream_t stream)
  {
    const std::size_t n = compensated.size();
    float* m = momentum_.get(id, n, stream);
    float* v = accumulated_.get(id, n, stream);
    const float* m_next = staged_momentum_.get(id, n, stream);
    launch_feedback_kernel(feedback_dgc_commit_kernel<>, n, stream, compensated.data(), decoded.data(), m_next, v, m,
                           std::uint64_t{n});
  }

  void save(state_writer& out) const
  {
    out.section("feedback::dgc_momentum");
    momentum_.save(out);
    accumulated_.save(out);
  }
  void load(state_reader& in)
  {
    in.section("feedback::dgc_momentum");
    momentum_.load(in);
    accumulated_.load(in);
  }

 private:
  float clip_ = 1.0f;
  device_keyed_buffers momentum_;
  device_keyed_buffers accumulated_;
  device_keyed_buffers staged_momentum_;
  device_keyed_buffers staged_accumulated_;
  device_buffer<double> partials_;
  pinned_buffer<double> pinned_;
};

template <class Inner>
struct device_feedback<feedback::periodic_flush<Inner>> {
  static constexpr bool stateful = true;
  using host_type = feedback::periodic_flush<Inner>;

  void begin_step(host_type& host, device_span<const float> gradient, int world, cudaStream_t stream) requires
      requires(device_feedback<Inner>& i, Inner& h)
  {
    i.begin_step(h, gradient, world, stream);
  }
  {
    inner_.begin_step(host.inner(), gradient, world, stream);
  }
  device_span<const float> compensate(host_type& host, bucket_id id, device_span<const float> g, cudaStream_t stream)
  {
    return inner_.compensate(host.inner(), id, g, stream);
  }
  void commit(bucket_id id, device_span<const float> compensated, device_span<const float> decoded, cudaStream_t stream)
  {
    inner_.commit(id, compensated, decoded, stream);
  }

  void save(state_writer& out) const
  {
    out.section("feedback::periodic_flush");
    out.value(period_);
    inner_.save(out);
  }
  void load(state_reader& in)
  {
    in.section("feedback::periodic_flush");
    period_ = in.value<std::uint64_t>();
    inner_.load(in);
  }
  std::uint64_t period_ = 0;

 private:
  device_feedback<Inner> inner_;
};

}  // namespace terse::detail
