#pragma once
// The runs both extension tests make (over threads, and over MPI
// processes): each user codec and the user feedback rule through
// terse::allreduce, on any transport.

#include <terse/collective/allreduce.hpp>
#include <terse/feedback/none.hpp>

#include <cstddef>
#include <vector>

#include "acme_codecs.hpp"

namespace extension_test {

/// Tensors of 1000, 20 and 777 values: two compressed segments and a dense one.
inline const terse::layout& shape()
{
  static const std::vector<std::size_t> sizes{1000, 20, 777};
  static const terse::layout l(sizes, 2000, /*dense_below=*/64);
  return l;
}

/// On the 1/64 grid, within +-4.
inline float grid_value(int rank, std::size_t i)
{
  return static_cast<float>(static_cast<int>((i * 37 + static_cast<std::size_t>(rank) * 11) % 513) - 256) / 64.0f;
}

/// Zero but one spike per rank per compressed tensor, and grid values in the dense tensor.
inline float spiky_value(int rank, std::size_t i)
{
  if (i == static_cast<std::size_t>(10 * rank) || i == static_cast<std::size_t>(1020 + 7 * rank)) {
    return 5.0f * static_cast<float>(rank + 1);
  }
  return i >= 1000 && i < 1020 ? grid_value(rank, i) : 0.0f;
}

template <class Codec, class Feedback, class Transport, class Value>
std::vector<float> one_step(Transport& t, Codec codec, Feedback feedback, Value value)
{
  terse::allreduce sync(t, shape(), codec, feedback);
  std::vector<float> x(shape().total());
  for (std::size_t i = 0; i < x.size(); ++i) {
    x[i] = value(t.rank(), i);
  }
  sync.average(terse::host_span<float>(x));
  return x;
}

/// Every run one after another, concatenated (for bit comparisons across transports).
template <class Transport>
std::vector<float> every_run(Transport& t)
{
  std::vector<float> all;
  const auto append = [&](const std::vector<float>& v) { all.insert(all.end(), v.begin(), v.end()); };
  append(one_step(t, acme::grid_floats{}, terse::feedback::none{}, grid_value));
  append(one_step(t, acme::int8_grid{}, terse::feedback::none{}, grid_value));
  append(one_step(t, acme::largest_one{}, terse::feedback::none{}, spiky_value));
  // The user feedback rule over two steps of the user requantizable codec.
  terse::allreduce sync(t, shape(), acme::int8_grid{.step = 0.25f}, acme::damped_residual{0.5f});
  std::vector<float> x(shape().total());
  for (int step = 0; step < 2; ++step) {
    for (std::size_t i = 0; i < x.size(); ++i) {
      x[i] = grid_value(t.rank(), i) + 0.01f * static_cast<float>(step);
    }
    sync.average(terse::host_span<float>(x));
    append(x);
  }
  return all;
}

}  // namespace extension_test
