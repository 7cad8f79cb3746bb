#pragma once
/// @file
/// One matrix's PowerSGD host state: its shape, the warm-start Q (stored
/// transposed, k×p row-major: column by column) and the scratch one step
/// needs, allocated when the matrix is first seen and reused after.

#include <terse/compress/detail/powersgd_math.hpp>

#include <vector>

namespace terse::detail {

struct powersgd_bucket {
  powersgd_shape shape;
  std::vector<float> q;       ///< committed warm start Qᵀ, k×p
  std::vector<float> q_hat;   ///< this step's Qᵀ with unit rows (Q's columns)
  std::vector<float> q_next;  ///< (Mᵀ·P̂)ᵀ before it is committed
  std::vector<float> p;       ///< P (m×k), then P̂, plus one flag slot for reduce
  std::vector<double> work;   ///< Gram–Schmidt scratch, m×k
  bool factors_ok = false;    ///< reduce: the averaged P was finite and P̂ independent

  void allocate(const powersgd_shape& s)
  {
    shape = s;
    q.assign(s.p * s.k, 0.0f);
    q_hat.assign(s.p * s.k, 0.0f);
    q_next.assign(s.p * s.k, 0.0f);
    p.assign(s.m * s.k + 1, 0.0f);
    work.assign(s.m * s.k, 0.0);
  }
};

}  // namespace terse::detail
