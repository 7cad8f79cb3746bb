#pragma once
/// @file
/// `detail::host_blas`: single-precision matrix products on the host through
/// CBLAS (OpenBLAS where found). The terse::blas target links the library
/// and defines TERSE_WITH_BLAS. Without it the type still exists with
/// `available == false`, so a header that names it compiles anywhere and
/// code that calls it can say what to link.

#include <terse/core/error.hpp>

#if defined(TERSE_WITH_BLAS)
#include <cblas.h>
#endif

#include <cstddef>
#include <limits>

namespace terse::detail {

struct host_blas {
#if defined(TERSE_WITH_BLAS)
  static constexpr bool available = true;
#else
  static constexpr bool available = false;
#endif

  /// C = alpha · op(A) · op(B) + beta · C on row-major matrices, where C is
  /// rows×cols, op(A) rows×depth and op(B) depth×cols; op transposes the
  /// stored matrix when asked. `lda`, `ldb`, `ldc` are row strides in
  /// elements. Every dimension must fit a 32-bit BLAS integer.
  static void gemm(bool transpose_a, bool transpose_b, std::size_t rows, std::size_t cols, std::size_t depth,
                   float alpha, const float* a, std::size_t lda, const float* b, std::size_t ldb, float beta, float* c,
                   std::size_t ldc)
#if defined(TERSE_WITH_BLAS)
  {
    constexpr auto limit = static_cast<std::size_t>(std::numeric_limits<int>::max());
    TERSE_EXPECTS(rows <= limit && cols <= limit && depth <= limit && lda <= limit && ldb <= limit && ldc <= limit,
                  "matrix dimensions exceed the 32-bit BLAS interface");
    cblas_sgemm(CblasRowMajor, transpose_a ? CblasTrans : CblasNoTrans, transpose_b ? CblasTrans : CblasNoTrans,
                static_cast<int>(rows), static_cast<int>(cols), static_cast<int>(depth), alpha, a,
                static_cast<int>(lda), b, static_cast<int>(ldb), beta, c, static_cast<int>(ldc));
  }
#else
      ;  // declared only: callers static_assert(available) first
#endif
};

}  // namespace terse::detail
