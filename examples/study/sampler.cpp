#include "sampler.hpp"

#include <algorithm>
#include <stdexcept>

#include "random.hpp"

namespace study {

sampler::sampler(std::vector<std::size_t> shard, std::size_t batch, std::uint64_t seed, int rank)
    : order_(std::move(shard)), batch_(batch), seed_(seed), rank_(static_cast<std::uint32_t>(rank))
{
  if (order_.size() < batch_) {
    throw std::invalid_argument("worker " + std::to_string(rank) + " holds " + std::to_string(order_.size()) +
                                " examples, fewer than a batch of " + std::to_string(batch_));
  }
  reshuffle();
}

void sampler::reshuffle()
{
  // Streams (rank, epoch) of the shuffle purpose: 2^12 ranks, 2^20 epochs.
  draws(seed_, purpose::shuffle, rank_ << 20 | (epoch_ & 0xfffffu)).shuffle(order_);
  ++epoch_;
  position_ = 0;
}

std::span<const std::size_t> sampler::next()
{
  if (position_ + batch_ > order_.size()) {
    reshuffle();
  }
  const std::span<const std::size_t> rows(order_.data() + position_, batch_);
  position_ += batch_;
  return rows;
}

}  // namespace study
