// terse's demo: average a ResNet-50-sized gradient (25.6 M floats in 161
// tensors) over W in-process ranks with the dense allreduce, and report the
// bytes each rank moved, the measured time, and the time the same traffic
// would take on a modelled 10 Gb/s network.
//
//   average_gradients [--ranks W] [--iterations N] [--gbps G]
#include <terse/terse.hpp>
#include <terse/transport/metered.hpp>
#include <terse/transport/simulated_network.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace {

// The parameter tensors of ResNet-50 (He et al. 2016), in order: a 7x7 stem,
// bottleneck stages of 3, 4, 6 and 3 blocks, batch norms, and the classifier.
std::vector<std::size_t> resnet50_tensors()
{
  std::vector<std::size_t> sizes{7 * 7 * 3 * 64, 64, 64};
  const auto conv_bn = [&sizes](std::size_t in, std::size_t out, std::size_t k) {
    sizes.insert(sizes.end(), {k * k * in * out, out, out});
  };
  std::size_t in = 64;
  const std::size_t blocks[] = {3, 4, 6, 3};
  for (std::size_t stage = 0; stage < 4; ++stage) {
    const std::size_t width = std::size_t{64} << stage;
    for (std::size_t b = 0; b < blocks[stage]; ++b) {
      conv_bn(in, width, 1);
      conv_bn(width, width, 3);
      conv_bn(width, 4 * width, 1);
      if (b == 0) {
        conv_bn(in, 4 * width, 1);  // projection shortcut
      }
      in = 4 * width;
    }
  }
  sizes.insert(sizes.end(), {2048 * 1000, 1000});
  return sizes;
}

struct options {
  int ranks = 8;
  int iterations = 5;
  double gbps = 10.0;
};

int usage(const char* why)
{
  std::fprintf(stderr, "average_gradients: %s\nusage: average_gradients [--ranks W] [--iterations N] [--gbps G]\n",
               why);
  return 2;
}

bool parse(int argc, char** argv, options& o)
{
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (i + 1 >= argc) {
      return false;
    }
    const char* value = argv[++i];
    char* end = nullptr;
    if (flag == "--ranks") {
      o.ranks = static_cast<int>(std::strtol(value, &end, 10));
    } else if (flag == "--iterations") {
      o.iterations = static_cast<int>(std::strtol(value, &end, 10));
    } else if (flag == "--gbps") {
      o.gbps = std::strtod(value, &end);
    } else {
      return false;
    }
    if (end == value || *end != '\0') {
      return false;
    }
  }
  return o.ranks >= 1 && o.ranks <= 256 && o.iterations >= 1 && o.gbps > 0;
}

}  // namespace

int main(int argc, char** argv)
{
  options opt;
  if (!parse(argc, argv, opt)) {
    return usage("bad arguments");
  }
  const std::vector<std::size_t> tensors = resnet50_tensors();
  const terse::layout shape(tensors, std::size_t{25} << 18);  // 25 MiB buckets, as in PyTorch DDP
  std::printf("terse demo: dense allreduce of a ResNet-50 gradient over %d in-process ranks\n", opt.ranks);
  std::printf("  %zu tensors, %zu floats (%.1f MiB), %zu buckets, %d iterations\n", shape.tensors().size(),
              shape.total(), static_cast<double>(shape.total() * 4) / (1 << 20), shape.buckets().size(),
              opt.iterations);

  std::vector<terse::meter> meters(static_cast<std::size_t>(opt.ranks));
  std::vector<double> modelled(static_cast<std::size_t>(opt.ranks));
  std::vector<double> max_error(static_cast<std::size_t>(opt.ranks));
  double seconds = 0;
  try {
    terse::run_local(opt.ranks, [&](terse::local_transport& local) {
      terse::metered metered(local);
      terse::simulated_network network(metered, terse::network_model::gbps(opt.gbps, 25e-6));
      terse::allreduce sync(network, shape);
      // Each rank's gradient: its rank plus a per-element pattern, so the
      // exact mean is known: pattern + (W-1)/2.
      std::vector<float> grads(shape.total());
      const auto fill = [&] {
        for (std::size_t i = 0; i < grads.size(); ++i) {
          grads[i] = static_cast<float>(i % 7) + static_cast<float>(local.rank());
        }
      };
      double elapsed = 0;
      for (int it = 0; it < opt.iterations; ++it) {
        fill();
        local.barrier();  // time the communication, not the filling
        const auto start = std::chrono::steady_clock::now();
        sync.on_gradients(terse::host_span<float>(grads));
        elapsed += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      }
      const float mean_rank = static_cast<float>(opt.ranks - 1) / 2.0f;
      double error = 0;
      for (std::size_t i = 0; i < grads.size(); ++i) {
        error = std::max(error, static_cast<double>(std::abs(grads[i] - (static_cast<float>(i % 7) + mean_rank))));
      }
      const auto r = static_cast<std::size_t>(local.rank());
      meters[r] = metered.counts();
      modelled[r] = network.modelled_seconds();
      max_error[r] = error;
      if (r == 0) {
        seconds = elapsed;
      }
    });
  } catch (const terse::error& e) {
    std::fprintf(stderr, "average_gradients: %s\n", e.what());
    return 1;
  }

  const terse::verb_meter all = meters[0].total();
  const double per_step = 1.0 / opt.iterations;
  const double dense_bytes = static_cast<double>(shape.total()) * 4;
  std::printf("\n  %-34s %14s\n", "per rank and step", "rank 0");
  std::printf("  %-34s %11.1f MiB\n", "gradient (fp32)", dense_bytes / (1 << 20));
  std::printf("  %-34s %11.1f MiB\n", "bytes sent", static_cast<double>(all.bytes_sent) * per_step / (1 << 20));
  std::printf("  %-34s %11.1f MiB\n", "bytes received", static_cast<double>(all.bytes_received) * per_step / (1 << 20));
  std::printf("  %-34s %11.2f ms\n", "measured time (threads, 1 machine)", seconds * per_step * 1e3);
  std::printf("  %-34s %11.2f ms\n", ("modelled at " + std::to_string(static_cast<int>(opt.gbps)) + " Gb/s").c_str(),
              modelled[0] * per_step * 1e3);
  const double worst = *std::max_element(max_error.begin(), max_error.end());
  std::printf("  %-34s %14.2g\n", "max error vs exact mean, all ranks", worst);
  std::printf(
      "\n  every rank sent 2(W-1)/W of the gradient, the bandwidth-optimal dense allreduce;\n"
      "  compressed collectives (docs/) send a fraction of it.\n");
  return worst == 0.0 ? 0 : 1;
}
