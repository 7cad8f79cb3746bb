#include "partition.hpp"

#include <algorithm>
#include <numeric>
#include <stdexcept>
#include <string>

#include "random.hpp"

namespace study {

shards partition_iid(const dataset& train, int workers, std::uint64_t seed)
{
  std::vector<std::size_t> order(train.count);
  std::iota(order.begin(), order.end(), std::size_t{0});
  draws(seed, purpose::partition).shuffle(order);
  shards parts(static_cast<std::size_t>(workers));
  const std::size_t w = parts.size();
  for (std::size_t r = 0; r < w; ++r) {
    const std::size_t begin = train.count * r / w;
    const std::size_t end = train.count * (r + 1) / w;
    parts[r].assign(order.begin() + static_cast<std::ptrdiff_t>(begin),
                    order.begin() + static_cast<std::ptrdiff_t>(end));
  }
  return parts;
}

shards partition_dirichlet(const dataset& train, int workers, double alpha, std::size_t min_shard, std::uint64_t seed)
{
  const auto w = static_cast<std::size_t>(workers);
  std::vector<std::vector<std::size_t>> by_class(classes);
  for (std::size_t i = 0; i < train.count; ++i) {
    by_class[train.labels[i]].push_back(i);
  }
  constexpr std::uint32_t attempts = 1000;
  for (std::uint32_t attempt = 0; attempt < attempts; ++attempt) {
    draws random(seed, purpose::partition, attempt + 1);
    shards parts(w);
    for (auto members : by_class) {
      random.shuffle(members);
      std::vector<double> share(w);
      double total = 0;
      for (double& s : share) {
        s = random.gamma(alpha);
        total += s;
      }
      // Cut points at the cumulative proportions; the last worker takes the rest.
      double cumulative = 0;
      std::size_t begin = 0;
      for (std::size_t r = 0; r < w; ++r) {
        cumulative += share[r] / total;
        const std::size_t end =
            r + 1 == w
                ? members.size()
                : std::min(members.size(), static_cast<std::size_t>(cumulative * static_cast<double>(members.size())));
        for (std::size_t i = begin; i < std::max(begin, end); ++i) {
          parts[r].push_back(members[i]);
        }
        begin = std::max(begin, end);
      }
    }
    const bool enough = std::all_of(parts.begin(), parts.end(), [&](const auto& p) { return p.size() >= min_shard; });
    if (enough) {
      for (std::size_t r = 0; r < w; ++r) {
        draws(seed, purpose::partition, attempts + 1 + static_cast<std::uint32_t>(r)).shuffle(parts[r]);
      }
      return parts;
    }
  }
  throw std::runtime_error("no Dirichlet(" + std::to_string(alpha) + ") partition over " + std::to_string(workers) +
                           " workers gives every worker " + std::to_string(min_shard) +
                           " examples: use fewer workers, a larger alpha or more data");
}

std::vector<std::vector<std::size_t>> class_counts(const dataset& train, const shards& parts)
{
  std::vector<std::vector<std::size_t>> counts(parts.size(), std::vector<std::size_t>(classes, 0));
  for (std::size_t r = 0; r < parts.size(); ++r) {
    for (const std::size_t i : parts[r]) {
      ++counts[r][train.labels[i]];
    }
  }
  return counts;
}

}  // namespace study
