#pragma once
/// @file
/// How n elements split into W blocks: the first n % W blocks get one extra
/// element. Every transport and collective uses this one rule, so block r
/// means the same range everywhere.

#include <algorithm>
#include <cstddef>

namespace terse::detail {

struct block_range {
  std::size_t begin;
  std::size_t count;
};

constexpr block_range block_of(std::size_t n, int parts, int index) noexcept
{
  const auto w = static_cast<std::size_t>(parts);
  const auto r = static_cast<std::size_t>(index);
  const std::size_t base = n / w;
  const std::size_t extra = n % w;
  return block_range{r * base + std::min(r, extra), base + (r < extra ? 1 : 0)};
}

}  // namespace terse::detail
