#pragma once
/// @file
/// `terse::cost::codec_speed`: how fast a codec's local work runs, for the
/// compute term of the cost model (terse/cost/model.hpp), and the speeds of
/// terse's host codecs measured once.
///
/// Every speed is in bytes of float input per second: a payload of m values
/// takes 4m / decode_bytes_per_s to decode_add, whatever its encoded size
/// (the convention of the codec benchmarks, docs/benchmarks.md).
///
/// The measured constants below come from one sitting on the 2-core CI-class
/// VM ("Intel(R) Xeon(R) Processor", 2 vCPUs, Debian 12, g++ 12,
/// RelWithDebInfo), 2^24 floats (64 MiB) per call, single-threaded, shared
/// with other jobs (expect +-20 %):
///
///     cmake -S . -B build/cost -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTERSE_ENABLE_CUDA=OFF
///     cmake --build build/cost --target bench_codecs_quantizers bench_codecs_sparse -j2
///     build/cost/bench/bench_codecs_quantizers --benchmark_filter='.*/67108864' --benchmark_min_time=0.5
///     build/cost/bench/bench_codecs_sparse --benchmark_filter='(memcpy|topk).*/67108864' --benchmark_min_time=0.5
///
/// (bytes_per_second of `encode`, `encode_residual`, `decode` and
/// `memcpy_reference`). On another machine, measure again and pass your own
/// `codec_speed` in `step_options::speed`.

#include <terse/compress/cast.hpp>
#include <terse/compress/identity.hpp>
#include <terse/compress/topk.hpp>
#include <terse/compress/uniform.hpp>

#include <optional>
#include <ostream>

namespace terse::cost {

/// Throughputs of one codec's local work, bytes of float input per second
/// (file comment). Zero means "not known".
struct codec_speed {
  double encode_bytes_per_s = 0.0;
  /// Encoding fused with residual feedback (`encode_residual`); 0: the
  /// codec does not fuse it (compensation is then a separate pass).
  double encode_residual_bytes_per_s = 0.0;
  double decode_bytes_per_s = 0.0;
  /// Plain passes over memory: the dense fold of W blocks, the copy that
  /// commits a step, feedback's compensation when it is not fused.
  double memory_bytes_per_s = 0.0;
};

inline std::ostream& operator<<(std::ostream& out, const codec_speed& s)
{
  return out << "codec_speed{encode " << s.encode_bytes_per_s << ", encode_residual " << s.encode_residual_bytes_per_s
             << ", decode " << s.decode_bytes_per_s << ", memory " << s.memory_bytes_per_s << " B/s}";
}

namespace measured {
/// memcpy of 64 MiB on the calibration machine (file comment).
inline constexpr double memory_bytes_per_s = 6.35e9;
}  // namespace measured

/// The measured speeds of a codec on the calibration machine (file
/// comment), or nullopt for a codec that was not measured.
template <class Codec>
std::optional<codec_speed> measured_speed(const Codec&)
{
  return std::nullopt;
}

/// The dense path: no codec, only the fold and the commit copy.
inline std::optional<codec_speed> measured_speed(const compress::identity&)
{
  return codec_speed{.memory_bytes_per_s = measured::memory_bytes_per_s};
}

inline std::optional<codec_speed> measured_speed(const compress::cast_bf16&)
{
  return codec_speed{.encode_bytes_per_s = 5.39e9,
                     .encode_residual_bytes_per_s = 3.28e9,
                     .decode_bytes_per_s = 5.20e9,
                     .memory_bytes_per_s = measured::memory_bytes_per_s};
}

inline std::optional<codec_speed> measured_speed(const compress::cast_fp16&)
{
  return codec_speed{.encode_bytes_per_s = 7.50e9,
                     .encode_residual_bytes_per_s = 3.29e9,
                     .decode_bytes_per_s = 5.97e9,
                     .memory_bytes_per_s = measured::memory_bytes_per_s};
}

/// uniform<8>, <4>, <2> with the default 512-value buckets.
template <unsigned Bits>
std::optional<codec_speed> measured_speed(const compress::uniform<Bits>&)
{
  constexpr double encode = Bits == 8 ? 3.41e9 : Bits == 4 ? 3.29e9 : 3.35e9;
  constexpr double fused = Bits == 8 ? 2.23e9 : Bits == 4 ? 2.24e9 : 2.18e9;
  constexpr double decode = Bits == 8 ? 7.24e9 : Bits == 4 ? 6.77e9 : 7.49e9;
  return codec_speed{.encode_bytes_per_s = encode,
                     .encode_residual_bytes_per_s = fused,
                     .decode_bytes_per_s = decode,
                     .memory_bytes_per_s = measured::memory_bytes_per_s};
}

/// Measured at density 0.01. Decoding touches only the k pairs, so its
/// speed per input byte is scaled by 0.01 / density; encoding is one pass
/// over the input whatever the density.
inline std::optional<codec_speed> measured_speed(const compress::topk& codec)
{
  const double density = codec.density > 0.0f ? static_cast<double>(codec.density) : 0.01;
  return codec_speed{.encode_bytes_per_s = 5.77e9,
                     .encode_residual_bytes_per_s = 3.00e9,
                     .decode_bytes_per_s = 63.0e9 * 0.01 / density,
                     .memory_bytes_per_s = measured::memory_bytes_per_s};
}

}  // namespace terse::cost
