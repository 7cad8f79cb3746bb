#pragma once
/// @file
/// Compiler and backend configuration: the host/device function macro and
/// which optional backends the including translation unit can use.

#if __cplusplus < 202002L
#error "terse needs C++20: compile with -std=c++20 (nvcc too)"
#endif

#if defined(__CUDACC__) || defined(__HIPCC__)
#define TERSE_HOST_DEVICE __host__ __device__
#define TERSE_DEVICE_COMPILER 1
#else
#define TERSE_HOST_DEVICE
#define TERSE_DEVICE_COMPILER 0
#endif

#if defined(__CUDA_ARCH__)
#define TERSE_IN_DEVICE_CODE 1
#else
#define TERSE_IN_DEVICE_CODE 0
#endif

/// Forces inlining of tiny element-wise helpers that sit in hot loops.
#if defined(__CUDACC__)
#define TERSE_FORCEINLINE __forceinline__
#elif defined(__GNUC__)
#define TERSE_FORCEINLINE inline __attribute__((always_inline))
#else
#define TERSE_FORCEINLINE inline
#endif

/// Whether transports and gossip check collective calls across ranks unless
/// told otherwise (transport_options::checked). One value for a whole build:
/// it never follows NDEBUG, which may differ between translation units. The
/// CMake option TERSE_CHECKED defines it for every target that links terse.
#if !defined(TERSE_CHECKED_DEFAULT)
#define TERSE_CHECKED_DEFAULT false
#endif
