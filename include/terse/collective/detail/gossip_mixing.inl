#pragma once
// The three mixers of terse::gossip (collective/gossip.hpp): what each
// writes into its frames at start, and how it mixes what arrived at wait.
// wait() calls absorb_* only after every frame of the round checked out.

namespace terse {

// --- average (D-PSGD) --------------------------------------------------------

template <class V, class M, class T, class S>
void gossip<V, M, T, S>::post_average(host_span<const V> values)
{
  // One frame for every neighbour: the header and the values as they are.
  std::byte* frame = detail::at_least(send_frames_, frame_bytes_);
  auto* payload = reinterpret_cast<V*>(frame + detail::gossip_header_bytes);
  bool finite = true;
  for (std::size_t i = 0; i < count_; ++i) {
    payload[i] = values[i];
    finite = finite && std::isfinite(values[i]);
  }
  own_non_finite_ = !finite;
  detail::gossip_header h = expected_;
  h.flags = finite && !poisoned_ ? 0 : detail::gossip_flag_non_finite;
  h.payload_bytes = count_ * sizeof(V);
  detail::write_gossip_header(h, frame);
  sends_.clear();
  for (const topology::link& to : plan_.sends) {
    sends_.push_back(outgoing<>{to.peer, host_span<const std::byte>(frame, frame_bytes_)});
  }
}

template <class V, class M, class T, class S>
void gossip<V, M, T, S>::absorb_average(host_span<V> values)
{
  const auto* sent = reinterpret_cast<const V*>(send_frames_.data() + detail::gossip_header_bytes);
  // A dead neighbour's weight goes to self: with symmetric weights the
  // survivors' matrix stays doubly stochastic, so their mean is kept.
  double self_weight = plan_.self_weight;
  for (std::size_t k = 0; k < plan_.recvs.size(); ++k) {
    self_weight += recv_failed_[k] != 0 ? plan_.recvs[k].weight : 0.0;
  }
  const V self = static_cast<V>(self_weight);
  for (std::size_t i = 0; i < count_; ++i) {
    V mixed = self * sent[i];
    for (std::size_t k = 0; k < plan_.recvs.size(); ++k) {
      if (recv_failed_[k] != 0) {
        continue;
      }
      const auto* theirs =
          reinterpret_cast<const V*>(recv_frames_.data() + k * frame_bytes_ + detail::gossip_header_bytes);
      mixed += static_cast<V>(plan_.recvs[k].weight) * theirs[i];
    }
    values[i] = mixed + (values[i] - sent[i]);  // exactly `mixed` when nothing changed since start
  }
}

// --- push-sum (SGP) ------------------------------------------------------------

template <class V, class M, class T, class S>
void gossip<V, M, T, S>::post_push_sum(host_span<const V> values)
{
  sent_.assign(values.begin(), values.end());
  bool finite = true;
  for (std::size_t i = 0; i < count_; ++i) {
    finite = finite && std::isfinite(values[i]);
  }
  own_non_finite_ = !finite;
  detail::gossip_header h = expected_;
  h.flags = finite && !poisoned_ ? 0 : detail::gossip_flag_non_finite;
  h.payload_bytes = (count_ + 1) * sizeof(V);
  std::byte* frames = detail::at_least(send_frames_, plan_.sends.size() * frame_bytes_);
  sends_.clear();
  const V w = static_cast<V>(weight_);
  for (std::size_t k = 0; k < plan_.sends.size(); ++k) {
    std::byte* frame = frames + k * frame_bytes_;
    detail::write_gossip_header(h, frame);
    auto* payload = reinterpret_cast<V*>(frame + detail::gossip_header_bytes);
    // The sender alone picks the split: its share p of z = w x and of w.
    const V share = static_cast<V>(plan_.sends[k].weight);
    for (std::size_t i = 0; i < count_; ++i) {
      payload[i] = w * values[i] * share;
    }
    payload[count_] = w * share;
    sends_.push_back(outgoing<>{plan_.sends[k].peer, host_span<const std::byte>(frame, frame_bytes_)});
  }
}

template <class V, class M, class T, class S>
void gossip<V, M, T, S>::absorb_push_sum(host_span<V> values)
{
  // A share addressed to a dead peer stays here: dropping it would lose
  // mass (biasing the average and draining the weights).
  double kept = plan_.self_weight;
  for (std::size_t k = 0; k < plan_.sends.size(); ++k) {
    kept += send_failed_[k] != 0 ? plan_.sends[k].weight : 0.0;
  }
  const V keep = static_cast<V>(kept);
  const V w = static_cast<V>(weight_);
  V w_new = keep * w;
  for (std::size_t k = 0; k < plan_.recvs.size(); ++k) {
    if (recv_failed_[k] != 0) {
      continue;  // a share from a dead peer simply does not arrive
    }
    const auto* theirs =
        reinterpret_cast<const V*>(recv_frames_.data() + k * frame_bytes_ + detail::gossip_header_bytes);
    TERSE_CHECK(std::isfinite(theirs[count_]) && theirs[count_] >= V{0}, errc::malformed_payload,
                "push-sum weight from rank " + std::to_string(plan_.recvs[k].peer) + " is negative or not finite");
    w_new += theirs[count_];
  }
  TERSE_CHECK(w_new > V{0}, errc::diverged,
              "push-sum weight of rank " + std::to_string(transport_->rank()) + " fell to zero at round " +
                  std::to_string(rounds_));
  for (std::size_t i = 0; i < count_; ++i) {
    V z = w * sent_[i] * keep;
    for (std::size_t k = 0; k < plan_.recvs.size(); ++k) {
      if (recv_failed_[k] != 0) {
        continue;
      }
      const auto* theirs =
          reinterpret_cast<const V*>(recv_frames_.data() + k * frame_bytes_ + detail::gossip_header_bytes);
      z += theirs[i];
    }
    values[i] = z / w_new + (values[i] - sent_[i]);
  }
  weight_ = static_cast<double>(w_new);
}

// --- CHOCO ---------------------------------------------------------------------------

template <class V, class M, class T, class S>
void gossip<V, M, T, S>::post_choco(host_span<const V> values)
{
  detail::at_least(difference_, count_);
  bool finite = true;
  for (std::size_t i = 0; i < count_; ++i) {
    difference_[i] = static_cast<float>(values[i] - public_[i]);
    finite = finite && std::isfinite(difference_[i]);
  }
  own_non_finite_ = !finite;
  std::byte* frame = detail::at_least(send_frames_, frame_bytes_);
  detail::gossip_header h = expected_;
  h.flags = finite && !poisoned_ ? 0 : detail::gossip_flag_non_finite;
  h.payload_bytes = 0;
  const codec_context ctx = codec_ctx(transport_->rank());
  detail::at_least(own_q_, count_);
  std::fill_n(own_q_.data(), count_, 0.0f);
  if (finite && !poisoned_) {
    const auto payload =
        host_span<std::byte>(frame + detail::gossip_header_bytes, frame_bytes_ - detail::gossip_header_bytes);
    h.payload_bytes = mixer_.codec.encode(ctx, host_span<const float>(difference_.data(), count_), payload);
    // The sender decodes its own bytes: x^_i must be what the neighbours hold.
    mixer_.codec.decode_add(ctx, host_span<const std::byte>(payload.data(), h.payload_bytes),
                            host_span<float>(own_q_.data(), count_));
  }
  detail::write_gossip_header(h, frame);
  sends_.clear();
  for (const topology::link& to : plan_.sends) {
    sends_.push_back(outgoing<>{to.peer, host_span<const std::byte>(frame, frame_bytes_)});
  }
}

template <class V, class M, class T, class S>
void gossip<V, M, T, S>::absorb_choco(host_span<V> values)
{
  const V scale = static_cast<V>(detail::choco_scale(mixer_.codec, count_, mixer_.scale));
  detail::at_least(delta_sum_, count_);
  detail::at_least(q_, count_);
  const V self = static_cast<V>(plan_.self_weight) * scale;
  for (std::size_t i = 0; i < count_; ++i) {
    delta_sum_[i] = self * static_cast<V>(own_q_[i]);
  }
  // Decode every neighbour's message before touching x^ or s: a malformed
  // one leaves the state as it was.
  for (std::size_t k = 0; k < plan_.recvs.size(); ++k) {
    std::fill_n(q_.data(), count_, 0.0f);
    mixer_.codec.decode_add(codec_ctx(plan_.recvs[k].peer), frame_payload(k), host_span<float>(q_.data(), count_));
    const V weight = static_cast<V>(plan_.recvs[k].weight) * scale;
    for (std::size_t i = 0; i < count_; ++i) {
      delta_sum_[i] += weight * static_cast<V>(q_[i]);
    }
  }
  const V gamma = static_cast<V>(mixer_.gamma);
  for (std::size_t i = 0; i < count_; ++i) {
    public_[i] += scale * static_cast<V>(own_q_[i]);
    sum_[i] += delta_sum_[i];
    values[i] += gamma * (sum_[i] - public_[i]);
  }
}

}  // namespace terse
