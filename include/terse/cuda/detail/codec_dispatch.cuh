#pragma once
/// @file
/// How the device path finds a codec's device functions: by unqualified
/// call, so terse's own overloads (namespace terse::cuda, declared in the
/// cuda/*.cuh headers included before this one) are found by ordinary
/// lookup, and a user codec's overloads, declared in the codec's own
/// namespace, by argument-dependent lookup when the collective is
/// instantiated: no terse header to edit, no include order to respect
/// (docs/extending.md).

#include <terse/cuda/adaptive.cuh>
#include <terse/cuda/cast.cuh>
#include <terse/cuda/dgc.cuh>
#include <terse/cuda/qsgd.cuh>
#include <terse/cuda/randomk.cuh>
#include <terse/cuda/sign.cuh>
#include <terse/cuda/terngrad.cuh>
#include <terse/cuda/threshold.cuh>
#include <terse/cuda/topk.cuh>
#include <terse/cuda/uniform.cuh>
#if defined(TERSE_WITH_BLAS)
#include <terse/cuda/powersgd.cuh>
#endif

#include <utility>

namespace terse::detail::device_codec {

using cuda::decode_add;
using cuda::decode_values;
using cuda::encode;
using cuda::encode_residual;
using cuda::encode_values;

template <class C, class... Args>
auto call_encode(C& codec, Args&&... args) -> decltype(encode(codec, std::forward<Args>(args)...))
{
  return encode(codec, std::forward<Args>(args)...);
}

template <class C, class... Args>
auto call_encode_residual(C& codec, Args&&... args) -> decltype(encode_residual(codec, std::forward<Args>(args)...))
{
  return encode_residual(codec, std::forward<Args>(args)...);
}

template <class C, class... Args>
auto call_decode_add(C& codec, Args&&... args) -> decltype(decode_add(codec, std::forward<Args>(args)...))
{
  return decode_add(codec, std::forward<Args>(args)...);
}

template <class C, class... Args>
auto call_encode_values(C& codec, Args&&... args) -> decltype(encode_values(codec, std::forward<Args>(args)...))
{
  return encode_values(codec, std::forward<Args>(args)...);
}

template <class C, class... Args>
auto call_decode_values(C& codec, Args&&... args) -> decltype(decode_values(codec, std::forward<Args>(args)...))
{
  return decode_values(codec, std::forward<Args>(args)...);
}

}  // namespace terse::detail::device_codec
