// Decentralized training on the CPU (D-PSGD): no allreduce, no global step.
// Each of 8 ranks fits y = 3x - 1 by SGD on its own slice of the x axis,
// and after every step averages its model with one peer of the one-peer
// exponential graph (rank r with r + 2^(t mod 3)). The round is started
// before the backward pass, so the exchange overlaps it, and the trainer's
// update is added to the mixed model when the round completes.
#include <terse/terse.hpp>

#include <cmath>
#include <cstdio>
#include <vector>

namespace {
constexpr std::size_t weights = 1000;  // w, b, and padding that stays zero

// Rank r only sees x in its own eighth of [-1, 1): alone it would fit its
// slice well and the line poorly; mixing shares what the others saw.
void backward(const std::vector<float>& params, int rank, int step, std::vector<float>& grads)
{
  std::fill(grads.begin(), grads.end(), 0.0f);
  for (int i = 0; i < 32; ++i) {
    const float x =
        -1.0f + 0.25f * static_cast<float>(rank) + 0.25f * static_cast<float>((step * 7 + i * 13) % 32) / 32.0f;
    const float error = params[0] * x + params[1] - (3.0f * x - 1.0f);
    grads[0] += error * x / 32.0f;
    grads[1] += error / 32.0f;
  }
}
}  // namespace

int main()
{
  std::vector<std::vector<float>> fitted(8);
  double distance = -1;
  terse::run_local(8, [&](terse::local_transport& transport) {
    std::vector<float> params(weights, 0.0f), grads(weights);
    // readme:begin gossip-trainer
    terse::gossip mix(transport, params.size(), terse::topology::one_peer_exponential(transport.size()));
    for (int step = 0; step < 600; ++step) {
      mix.start(terse::host_span<const float>(params));  // this rank's model goes to this round's peer
      backward(params, transport.rank(), step, grads);   // the trainer's own code, overlapping the round
      for (std::size_t i = 0; i < params.size(); ++i) {  // the trainer's optimizer, on its own gradient
        params[i] -= 0.2f * grads[i];
      }
      mix.wait(terse::host_span<float>(params));  // x_i <- (x_i + x_peer) / 2 + this step's update
    }
    // readme:end gossip-trainer
    const double d = mix.consensus_distance(terse::host_span<const float>(params));  // a collective probe
    fitted[static_cast<std::size_t>(transport.rank())] = {params[0], params[1]};
    if (transport.rank() == 0) {
      distance = d;
    }
  });
  bool good = true;
  for (const auto& p : fitted) {
    good = good && std::abs(p[0] - 3.0f) < 0.05f && std::abs(p[1] + 1.0f) < 0.05f;
  }
  std::printf("rank 0 fitted y = %.3f x %+.3f (true: 3x - 1); consensus distance %.2e\n", fitted[0][0], fitted[0][1],
              distance);
  return good ? 0 : 1;
}
