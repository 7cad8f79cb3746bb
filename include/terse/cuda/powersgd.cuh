#pragma once
/// @file
/// (Over 400 lines: the device twin of the codec's state and its two step
/// forms, flat buckets and per-tensor shapes, which share that state.)
/// PowerSGD on the device. `cuda::powersgd_state` is the device twin of
/// compress::powersgd's state: per bucket id, Qᵀ and the scratch of one
/// step in device memory (allocated when the bucket is first seen, reused
/// after), and a cuBLAS handle. `reduce` runs the step of compress::powersgd
/// on device values over a device transport (NCCL):
///
///     Q̂ = Q with unit columns (kernel; a zero column re-drawn from the shared stream)
///     flag = any NaN/Inf in M (kernel)          P = M·Q̂ (cublasSgemm)
///     allreduce(P, flag) average                 P̂ = Gram–Schmidt(P) (kernel, double)
///     Q = Mᵀ·P̂ (cublasSgemm)                     allreduce(Q) average
///     check Q (kernel), wait, throw or:          values = P̂·Qᵀ (cublasSgemm); keep Q
///
/// Every step is enqueued on `stream`, which must be the transport's stream;
/// the call waits once (through the transport's own deadline-honouring
/// `synchronize()` when it has one) to read the status word before writing
/// the values, so a refused step leaves values and Q untouched, exactly as
/// on the host: non-finite input on any rank, or averaged factors that
/// overflow float, throw errc::non_finite on every rank. Results equal the
/// host's to rounding (cuBLAS and OpenBLAS sum in other orders), not bit for
/// bit; every rank of one job gets the same bits.
///
/// With declared tensor shapes (ctx.tensors) each matrix is its own M and
/// vectors travel dense, as in compress::powersgd; still two allreduces.
///
/// (Over 400 lines: the flat and the per-tensor steps share this class's
/// buckets, cuBLAS handle and status words.)
///
/// Saved state has the host codec's layout: a blob saved here loads into
/// compress::powersgd and back. Link CUDA::cublas. One state per rank and
/// device; not thread-safe.

#include <terse/compress/detail/powersgd_math.hpp>
#include <terse/compress/detail/powersgd_state.hpp>
#include <terse/compress/detail/powersgd_tensors.hpp>
#include <terse/compress/powersgd.hpp>
#include <terse/core/cuda_error.hpp>
#include <terse/core/cuda_memory.hpp>
#include <terse/core/error.hpp>
#include <terse/core/policy_types.hpp>
#include <terse/core/span.hpp>
#include <terse/core/state_io.hpp>
#include <terse/core/verbs.hpp>
#include <terse/cuda/detail/cublas.cuh>
#include <terse/cuda/detail/powersgd_kernels.cuh>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace terse::cuda {

class powersgd_state {
 public:
  /// @param rank the rank r of the approximation (at least 1)
  explicit powersgd_state(std::uint32_t rank = 2) : rank_(rank) {}
  /// The device state for `codec`'s rank.
  template <class Blas>
  explicit powersgd_state(const compress::basic_powersgd<Blas>& codec) : powersgd_state(codec.rank)
  {
  }

  std::uint32_t rank() const noexcept { return rank_; }
  compress::powersgd_shape shape(std::size_t n) const noexcept { return detail::powersgd_shape_of(n, rank_); }

  /// One PowerSGD step across the ranks of `t` on device `values` (this
  /// rank's M, already error-compensated): replaces them with the rank-k
  /// approximation of the average of every rank's M. Calls
  /// `t.allreduce(device_span, reduce_op::average)` twice.
  template <class Transport>
  void reduce(const codec_context& ctx, Transport& t, device_span<float> values, cudaStream_t stream)
  {
    TERSE_EXPECTS(rank_ >= 1, "powersgd needs rank >= 1");
    if constexpr (requires { t.stream(); }) {
      TERSE_EXPECTS(t.stream() == stream, "powersgd reduce enqueues on `stream`: give the transport the same stream");
    }
    if (!ctx.tensors.empty()) {
      reduce_tensors(ctx, t, values, stream);
      return;
    }
    const detail::powersgd_shape s = shape(values.size());
    if (s.n == 0) {
      return;
    }
    constexpr auto int_limit = static_cast<std::uint64_t>(std::numeric_limits<int>::max());
    TERSE_EXPECTS(s.p <= int_limit && s.m <= int_limit, "bucket too large for 32-bit cuBLAS dimensions");
    new_bucket_guard created(buckets_, ctx.bucket);
    bucket& b = find_or_create(ctx.bucket, s, ctx.shared_stream(), stream);
    cublasHandle_t handle = cublas_.on(stream);
    std::uint32_t* status = device_status();
    TERSE_CUDA_TRY(cudaMemsetAsync(status, 0, sizeof(std::uint32_t), stream));

    constexpr int threads = detail::powersgd_threads;
    const std::uint64_t flag_at = s.m * s.k;
    float* p = b.p.data();
    detail::powersgd_normalise_kernel<threads>
        <<<static_cast<unsigned>(s.k), threads, 0, stream>>>(b.q.data(), b.q_hat.data(), s.p, ctx.shared_stream());
    TERSE_CUDA_TRY(cudaMemsetAsync(p + flag_at, 0, sizeof(float), stream));
    detail::powersgd_scan_kernel<threads><<<grid_for(s.n), threads, 0, stream>>>(values.data(), s.n, p + flag_at);
    TERSE_CUDA_TRY(cudaGetLastError());
    if (s.tail != 0) {  // the partial last row, zero-padded
      TERSE_CUDA_TRY(cudaMemsetAsync(b.tail.data(), 0, sizeof(float) * s.p, stream));
      TERSE_CUDA_TRY(cudaMemcpyAsync(b.tail.data(), values.data() + s.full_rows * s.p, sizeof(float) * s.tail,
                                     cudaMemcpyDeviceToDevice, stream));
    }

    // cuBLAS is column-major: a row-major r×c matrix is, to it, the c×r
    // transpose with leading dimension c. Row-major M (m×p) is col-major Mᵀ
    // (ld p); row-major P (m×k) is col-major Pᵀ (ld k); Qᵀ stored row-major
    // (k×p) is col-major Q (ld p).
    // Pᵀ = Q̂ᵀ · Mᵀ
    gemm(handle, CUBLAS_OP_T, CUBLAS_OP_N, s.k, s.full_rows, s.p, b.q_hat.data(), s.p, values.data(), s.p, 0.0f, p,
         s.k);
    if (s.tail != 0) {
      gemm(handle, CUBLAS_OP_T, CUBLAS_OP_N, s.k, 1, s.p, b.q_hat.data(), s.p, b.tail.data(), s.p, 0.0f,
           p + s.full_rows * s.k, s.k);
    }
    t.allreduce(device_span<float>(p, flag_at + 1), reduce_op::average);

    detail::powersgd_orthonormalise_kernel<threads>
        <<<1, threads, 0, stream>>>(p, s.m, s.k, b.work.data(), status, p + flag_at);
    TERSE_CUDA_TRY(cudaGetLastError());
    // Q = Mᵀ · P̂ = (col-major Mᵀ) · (col-major Pᵀ)ᵀ
    gemm(handle, CUBLAS_OP_N, CUBLAS_OP_T, s.p, s.k, s.full_rows, values.data(), s.p, p, s.k, 0.0f, b.q_next.data(),
         s.p);
    if (s.tail != 0) {
      gemm(handle, CUBLAS_OP_N, CUBLAS_OP_T, s.p, s.k, 1, b.tail.data(), s.p, p + s.full_rows * s.k, s.k, 1.0f,
           b.q_next.data(), s.p);
    }
    t.allreduce(device_span<float>(b.q_next.data(), s.k * s.p), reduce_op::average);

    detail::powersgd_check_kernel<threads><<<1, threads, 0, stream>>>(p, s.m, b.q_next.data(), s.p, s.k, status);
    TERSE_CUDA_TRY(cudaGetLastError());
    raise_on_status(t, status, stream);  // the step's one host wait

    // values (col-major p×m) = Q · P̂ᵀ
    gemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, s.p, s.full_rows, s.k, b.q_next.data(), s.p, p, s.k, 0.0f, values.data(),
         s.p);
    if (s.tail != 0) {
      gemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, s.p, 1, s.k, b.q_next.data(), s.p, p + s.full_rows * s.k, s.k, 0.0f,
           b.tail.data(), s.p);
      TERSE_CUDA_TRY(cudaMemcpyAsync(values.data() + s.full_rows * s.p, b.tail.data(), sizeof(float) * s.tail,
                                     cudaMemcpyDeviceToDevice, stream));
    }
    std::swap(b.q, b.q_next);
    created.keep();
  }

  /// Saves every bucket's Q in compress::powersgd's layout. (reduce has
  /// finished writing Q when it returns; only reads of it may still run.)
  void save(state_writer& out) const
  {
    detail::write_powersgd_header(out, rank_, buckets_.size() | (groups_.empty() ? 0 : detail::powersgd_groups_follow));
    std::vector<float> host;
    for (const auto& [id, b] : buckets_) {
      detail::write_powersgd_bucket(out, id, b.shape);
      host.resize(b.shape.k * b.shape.p);
      TERSE_CUDA_TRY(cudaMemcpy(host.data(), b.q.data(), sizeof(float) * host.size(), cudaMemcpyDeviceToHost));
      out.array(host_span<const float>(host));
    }
    if (!groups_.empty()) {
      detail::write_powersgd_groups(out, groups_, [&host](const group& g, const detail::powersgd_piece& piece) {
        const bucket& b = g.matrices[piece.matrix];
        host.resize(b.shape.k * b.shape.p);
        TERSE_CUDA_TRY(cudaMemcpy(host.data(), b.q.data(), sizeof(float) * host.size(), cudaMemcpyDeviceToHost));
        return host_span<const float>(host);
      });
    }
  }

  /// Replaces the state with a saved one (from the device or the host
  /// codec); errc::io, state kept, when it was saved with another rank or
  /// holds a shape this rank does not give its n.
  void load(state_reader& in)
  {
    const std::uint64_t header = detail::read_powersgd_header(in, rank_);
    const std::uint64_t count = header & ~detail::powersgd_groups_follow;
    std::map<bucket_id, bucket> loaded;
    std::vector<float> host;
    for (std::uint64_t i = 0; i < count; ++i) {
      bucket_id id = 0;
      const detail::powersgd_shape s = detail::read_powersgd_bucket(in, rank_, id);
      TERSE_CHECK(loaded.empty() || id > loaded.rbegin()->first, errc::io,
                  "terse state: powersgd buckets are not in increasing id order");
      host.resize(s.k * s.p);
      in.array(host_span<float>(host));
      TERSE_CHECK(detail::max_magnitude_bits(host.data(), host.size()) < detail::first_non_finite_bits, errc::io,
                  "terse state: powersgd bucket " + std::to_string(id) + " holds a non-finite Q");
      bucket b = allocate(s);
      TERSE_CUDA_TRY(cudaMemcpy(b.q.data(), host.data(), sizeof(float) * host.size(), cudaMemcpyHostToDevice));
      loaded.emplace(id, std::move(b));
    }
    std::map<bucket_id, group> loaded_groups;
    if ((header & detail::powersgd_groups_follow) != 0) {
      detail::read_powersgd_groups(
          in, rank_,
          [&](bucket_id id, detail::powersgd_plan plan) -> group& {
            return loaded_groups.emplace(id, allocate_group(std::move(plan))).first->second;
          },
          [&](group& g, const detail::powersgd_piece& piece) {
            bucket& b = g.matrices[piece.matrix];
            host.resize(b.shape.k * b.shape.p);
            in.array(host_span<float>(host));
            TERSE_CHECK(detail::max_magnitude_bits(host.data(), host.size()) < detail::first_non_finite_bits, errc::io,
                        "terse state: a powersgd tensor holds a non-finite Q");
            TERSE_CUDA_TRY(cudaMemcpy(b.q.data(), host.data(), sizeof(float) * host.size(), cudaMemcpyHostToDevice));
          });
    }
    buckets_ = std::move(loaded);
    groups_ = std::move(loaded_groups);
  }

 private:
  struct bucket {
    detail::powersgd_shape shape;
    device_buffer<float> q;       // committed Qᵀ, k×p
    device_buffer<float> q_hat;   // this step's Qᵀ with unit rows
    device_buffer<float> q_next;  // (Mᵀ·P̂)ᵀ before it is committed
    device_buffer<float> p;       // P (m×k), then P̂, plus the flag slot
    device_buffer<float> tail;    // the zero-padded last row of M, then of the result
    device_buffer<double> work;   // Gram–Schmidt scratch, m×k
  };

  /// Forgets a bucket the current call created unless the call succeeds.
  class new_bucket_guard {
   public:
    new_bucket_guard(std::map<bucket_id, bucket>& buckets, bucket_id id)
        : buckets_(&buckets), id_(id), fresh_(!buckets.contains(id))
    {
    }
    new_bucket_guard(const new_bucket_guard&) = delete;
    new_bucket_guard& operator=(const new_bucket_guard&) = delete;
    ~new_bucket_guard()
    {
      if (fresh_) {
        buckets_->erase(id_);
      }
    }
    void keep() noexcept { fresh_ = false; }

   private:
    std::map<bucket_id, bucket>* buckets_;
    bucket_id id_;
    bool fresh_;
  };

  static bucket allocate(const detail::powersgd_shape& s)
  {
    bucket b;
    b.shape = s;
    b.q.reserve(s.k * s.p);
    b.q_hat.reserve(s.k * s.p);
    b.q_next.reserve(s.k * s.p);
    b.p.reserve(s.m * s.k + 1);
    b.tail.reserve(s.p);
    b.work.reserve(s.m * s.k);
    return b;
  }

  bucket& find_or_create(bucket_id id, const detail::powersgd_shape& s, const random_stream& shared,
                         cudaStream_t stream)
  {
    auto found = buckets_.find(id);
    if (found != buckets_.end()) {
      const detail::powersgd_shape& had = found->second.shape;
      TERSE_EXPECTS(had.n == s.n && had.k == s.k, "powersgd bucket " + std::to_string(id) + " holds " +
                                                      std::to_string(had.n) + " values at rank " +
                                                      std::to_string(had.k) + "; this call has " + std::to_string(s.n) +
                                                      " at rank " + std::to_string(s.k));
      return found->second;
    }
    bucket b = allocate(s);
    constexpr int threads = detail::powersgd_threads;
    detail::powersgd_seed_kernel<threads><<<grid_for(s.k * s.p), threads, 0, stream>>>(b.q.data(), s.k * s.p, shared);
    TERSE_CUDA_TRY(cudaGetLastError());
    return buckets_.emplace(id, std::move(b)).first->second;
  }

  /// A segment planned per tensor (see compress/detail/powersgd_tensors.hpp):
  /// one bucket per compressed matrix, and the two reduce buffers.
  struct group {
    detail::powersgd_plan plan;
    std::vector<bucket> matrices;
    device_buffer<float> p_all;  // every P and dense value, then the flag
    device_buffer<float> q_all;  // every Qᵀ
  };

  static group allocate_group(detail::powersgd_plan plan)
  {
    group g;
    g.plan = std::move(plan);
    g.matrices.resize(g.plan.matrices);
    for (const detail::powersgd_piece& piece : g.plan.pieces) {
      if (!piece.dense) {
        g.matrices[piece.matrix] = allocate(piece.shape);
      }
    }
    g.p_all.reserve(g.plan.p_floats + 1);
    g.q_all.reserve(std::max<std::uint64_t>(g.plan.q_floats, 1));
    return g;
  }

  group& find_or_create_group(const codec_context& ctx, std::uint64_t n, cudaStream_t stream)
  {
    auto found = groups_.find(ctx.bucket);
    if (found != groups_.end()) {
      const detail::powersgd_plan& had = found->second.plan;
      TERSE_EXPECTS(had.n == n && had.rank == rank_ && had.same_tensors(ctx.tensors),
                    "powersgd segment " + std::to_string(ctx.bucket) + " was planned for other tensor shapes");
      return found->second;
    }
    group g = allocate_group(detail::make_powersgd_plan(ctx.tensors, rank_, n));
    constexpr int threads = detail::powersgd_threads;
    for (const detail::powersgd_piece& piece : g.plan.pieces) {
      if (!piece.dense) {
        const std::uint64_t count = piece.shape.k * piece.shape.p;
        detail::powersgd_seed_kernel<threads><<<grid_for(count), threads, 0, stream>>>(
            g.matrices[piece.matrix].q.data(), count, ctx.shared_stream(), piece.q_at);
        TERSE_CUDA_TRY(cudaGetLastError());
      }
    }
    return groups_.emplace(ctx.bucket, std::move(g)).first->second;
  }

  /// reduce for a segment with declared tensor shapes: every matrix with its
  /// own shape, vectors dense; one allreduce of every P, dense value and the
  /// flag, one of every Q, as compress::powersgd does on the host.
  template <class Transport>
  void reduce_tensors(const codec_context& ctx, Transport& t, device_span<float> values, cudaStream_t stream)
  {
    for (const tensor_shape& shape : ctx.tensors) {
      constexpr auto int_limit = static_cast<std::uint64_t>(std::numeric_limits<int>::max());
      TERSE_EXPECTS(shape.rows <= int_limit && shape.cols <= int_limit,
                    "tensor too large for 32-bit cuBLAS dimensions");
    }
    const bool fresh = !groups_.contains(ctx.bucket);
    group& g = find_or_create_group(ctx, values.size(), stream);
    struct forget {
      std::map<bucket_id, group>* groups;
      bucket_id id;
      bool armed;
      ~forget()
      {
        if (armed) {
          groups->erase(id);
        }
      }
    } guard{&groups_, ctx.bucket, fresh};
    const detail::powersgd_plan& plan = g.plan;
    cublasHandle_t handle = cublas_.on(stream);
    std::uint32_t* status = device_status();
    TERSE_CUDA_TRY(cudaMemsetAsync(status, 0, sizeof(std::uint32_t), stream));
    constexpr int threads = detail::powersgd_threads;
    float* p_all = g.p_all.data();
    float* flag = p_all + plan.p_floats;
    TERSE_CUDA_TRY(cudaMemsetAsync(flag, 0, sizeof(float), stream));
    detail::powersgd_scan_kernel<threads><<<grid_for(plan.n), threads, 0, stream>>>(values.data(), plan.n, flag);
    TERSE_CUDA_TRY(cudaGetLastError());
    for (const detail::powersgd_piece& piece : plan.pieces) {
      const float* own = values.data() + piece.offset;
      const detail::powersgd_shape& s = piece.shape;
      if (piece.dense) {
        TERSE_CUDA_TRY(cudaMemcpyAsync(p_all + piece.p_at, own, sizeof(float) * s.n, cudaMemcpyDeviceToDevice, stream));
        continue;
      }
      bucket& b = g.matrices[piece.matrix];
      detail::powersgd_normalise_kernel<threads><<<static_cast<unsigned>(s.k), threads, 0, stream>>>(
          b.q.data(), b.q_hat.data(), s.p, ctx.shared_stream(), piece.q_at);
      TERSE_CUDA_TRY(cudaGetLastError());
      // Pᵀ = Q̂ᵀ · Mᵀ (column-major views as in reduce)
      gemm(handle, CUBLAS_OP_T, CUBLAS_OP_N, s.k, s.m, s.p, b.q_hat.data(), s.p, own, s.p, 0.0f, p_all + piece.p_at,
           s.k);
    }
    t.allreduce(device_span<float>(p_all, plan.p_floats + 1), reduce_op::average);

    detail::powersgd_status_kernel<threads>
        <<<grid_for(plan.p_floats), threads, 0, stream>>>(p_all, plan.p_floats, flag, status);
    TERSE_CUDA_TRY(cudaGetLastError());
    for (const detail::powersgd_piece& piece : plan.pieces) {
      if (piece.dense) {
        continue;
      }
      const detail::powersgd_shape& s = piece.shape;
      bucket& b = g.matrices[piece.matrix];
      float* p = p_all + piece.p_at;
      detail::powersgd_orthonormalise_kernel<threads>
          <<<1, threads, 0, stream>>>(p, s.m, s.k, b.work.data(), status, flag);
      TERSE_CUDA_TRY(cudaGetLastError());
      // Q = Mᵀ · P̂
      gemm(handle, CUBLAS_OP_N, CUBLAS_OP_T, s.p, s.k, s.m, values.data() + piece.offset, s.p, p, s.k, 0.0f,
           g.q_all.data() + piece.q_at, s.p);
    }
    if (plan.q_floats != 0) {  // every rank has the same plan, so all skip alike
      t.allreduce(device_span<float>(g.q_all.data(), plan.q_floats), reduce_op::average);
    }
    for (const detail::powersgd_piece& piece : plan.pieces) {
      if (!piece.dense) {
        const detail::powersgd_shape& s = piece.shape;
        detail::powersgd_check_kernel<threads>
            <<<1, threads, 0, stream>>>(p_all + piece.p_at, s.m, g.q_all.data() + piece.q_at, s.p, s.k, status);
        TERSE_CUDA_TRY(cudaGetLastError());
      }
    }
    raise_on_status(t, status, stream);  // the step's one host wait
    for (const detail::powersgd_piece& piece : plan.pieces) {
      const detail::powersgd_shape& s = piece.shape;
      float* to = values.data() + piece.offset;
      if (piece.dense) {  // the exact average
        TERSE_CUDA_TRY(cudaMemcpyAsync(to, p_all + piece.p_at, sizeof(float) * s.n, cudaMemcpyDeviceToDevice, stream));
        continue;
      }
      const float* qt = g.q_all.data() + piece.q_at;
      // values (col-major p×m) = Q · P̂ᵀ
      gemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, s.p, s.m, s.k, qt, s.p, p_all + piece.p_at, s.k, 0.0f, to, s.p);
      TERSE_CUDA_TRY(cudaMemcpyAsync(g.matrices[piece.matrix].q.data(), qt, sizeof(float) * s.k * s.p,
                                     cudaMemcpyDeviceToDevice, stream));
    }
    guard.armed = false;
  }

  static unsigned grid_for(std::uint64_t n)
  {
    const std::uint64_t blocks = (n + detail::powersgd_threads - 1) / detail::powersgd_threads;
    return static_cast<unsigned>(std::clamp<std::uint64_t>(blocks, 1, 4096));  // grid-stride loops cover the rest
  }

  /// C = op(A)·op(B) + beta·C, column-major, as cuBLAS sees it.
  static void gemm(cublasHandle_t handle, cublasOperation_t op_a, cublasOperation_t op_b, std::uint64_t rows,
                   std::uint64_t cols, std::uint64_t depth, const float* a, std::uint64_t lda, const float* b,
                   std::uint64_t ldb, float beta, float* c, std::uint64_t ldc)
  {
    const float one = 1.0f;
    TERSE_CUBLAS_TRY(cublasSgemm(handle, op_a, op_b, static_cast<int>(rows), static_cast<int>(cols),
                                 static_cast<int>(depth), &one, a, static_cast<int>(lda), b, static_cast<int>(ldb),
                                 &beta, c, static_cast<int>(ldc)));
  }

  std::uint32_t* device_status()
  {
    status_.reserve(1);
    return status_.data();
  }

  // Copies the step's status word to the host, waits for it (through the
  // transport's deadline where it has one) and raises what it flags.
  template <class Transport>
  void raise_on_status(Transport& t, const std::uint32_t* status, cudaStream_t stream)
  {
    std::uint32_t* seen = host_status();
    TERSE_CUDA_TRY(cudaMemcpyAsync(seen, status, sizeof(std::uint32_t), cudaMemcpyDeviceToHost, stream));
    if constexpr (requires { t.synchronize(); }) {
      t.synchronize();  // honours the transport's deadline
    } else {
      TERSE_CUDA_TRY(cudaStreamSynchronize(stream));
    }
    TERSE_CHECK((*seen & detail::powersgd_status_flagged) == 0, errc::non_finite,
                "powersgd reduce: a rank's values hold NaN or Inf");
    TERSE_CHECK(*seen == 0, errc::non_finite,
                "powersgd reduce: the averaged factors overflow float (values too large)");
  }

  std::uint32_t* host_status()
  {
    status_host_.reserve(1);
    return status_host_.data();
  }

  std::uint32_t rank_;
  std::map<bucket_id, bucket> buckets_;
  std::map<bucket_id, group> groups_;
  detail::cublas_handle cublas_;
  device_buffer<std::uint32_t> status_;
  pinned_buffer<std::uint32_t> status_host_;
};

}  // namespace terse::cuda
