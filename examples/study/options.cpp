#include "options.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <stdexcept>
#include <string_view>

namespace study {
namespace {

[[noreturn]] void bad(const std::string& flag, const std::string& why)
{
  throw std::invalid_argument(flag + ": " + why);
}

std::uint64_t to_unsigned(const std::string& flag, const std::string& text, std::uint64_t low, std::uint64_t high)
{
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos) {
    bad(flag, "expected a whole number, got '" + text + "'");
  }
  errno = 0;
  const unsigned long long value = std::strtoull(text.c_str(), nullptr, 10);
  if (errno == ERANGE || value < low || value > high) {
    bad(flag, "'" + text + "' is out of range [" + std::to_string(low) + ", " + std::to_string(high) + "]");
  }
  return value;
}

double to_double(const std::string& flag, const std::string& text, double low, double high)
{
  char* end = nullptr;
  errno = 0;
  const double value = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || errno == ERANGE || !std::isfinite(value)) {
    bad(flag, "expected a number, got '" + text + "'");
  }
  if (value < low || value > high) {
    bad(flag, "'" + text + "' is out of range [" + std::to_string(low) + ", " + std::to_string(high) + "]");
  }
  return value;
}

std::vector<std::string> split_commas(const std::string& flag, const std::string& text)
{
  std::vector<std::string> parts;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const std::size_t comma = std::min(text.find(',', pos), text.size());
    if (comma == pos) {
      bad(flag, "empty item in '" + text + "'");
    }
    parts.push_back(text.substr(pos, comma - pos));
    pos = comma + 1;
  }
  return parts;
}

}  // namespace

std::string usage()
{
  return R"(usage: terse_study [options]
Trains an MLP on Fashion-MNIST with W workers and compares how terse's
compressors, feedback rules and schedules trade bytes for accuracy.

  --data DIR          Fashion-MNIST *-ubyte.gz files (default /usr/share/datasets/fashion-mnist,
                      from the Debian package dataset-fashion-mnist)
  --out DIR           where results.csv, curves.csv, results.json and the SVG plots go
                      (default study-results)
  --configs A,B,...   configurations to run (default: all; --list shows them)
  --partition P       iid, non-iid or both (default iid)
  --alpha A           Dirichlet concentration of the non-IID split (default 0.1)
  --workers W         in-process workers (default 8)
  --transport T       local (default: W threads on terse's local transport) or mpi (one worker
                      per process on terse's mpi transport: mpirun -np W terse_study --transport mpi)
  --epochs E          passes over the training set, all workers together (default 4)
  --steps N           optimizer steps per worker (overrides --epochs)
  --batch B           examples per worker and step (default 32)
  --eval-every N      steps between test evaluations (default: about 24 per run)
  --model WIDTHS      MLP layer widths (default 784-256-128-10)
  --lr-decay D        cosine (default: each configuration's lr decays to 0 over the run) or none
  --seed S            seeds data order, partition and weights (default 1)
  --gbps G            modelled link bandwidth in Gb/s (default 10)
  --latency-us L      modelled per-message latency in microseconds (default 25)
  --train-limit N     use only the first N training examples (0: all)
  --test-limit N      use only the first N test examples (0: all)
  --validation N      hold out the last N training examples and report accuracy on them instead
                      of the test set (which is then not read): for choosing knobs (e.g. 6000)
  --declared-compute F  only in a terse_study built with smpicxx and run under smpirun with
                      --transport mpi and --cfg=smpi/simulate-computation:no: charge each worker's
                      forward+backward as 6 x parameters x batch flops at F flop/s ('gpu': 1e12)
                      and each exchange's codec work at terse's measured codec speeds, as
                      simulated time; the study then reports simulated seconds to the target
  --set C.KEY=VALUE   override a configuration's knob (C may be *), e.g. --set local32.lr=0.1
  --progress, --no-progress   force the progress bar on stderr on or off (default: when a terminal)
  --list              list the configurations and their knobs, then exit
  --help              this text
)";
}

study_options parse_options(int argc, char** argv)
{
  study_options o;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    std::string value;
    bool has_value = false;
    if (const std::size_t eq = flag.find('='); flag.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
      has_value = true;
    }
    const auto take = [&]() -> const std::string& {
      if (!has_value) {
        if (i + 1 >= argc) {
          bad(flag, "needs a value");
        }
        value = argv[++i];
        has_value = true;
      }
      return value;
    };
    const auto no_value = [&] {
      if (has_value) {
        bad(flag, "takes no value");
      }
    };
    if (flag == "--help" || flag == "-h") {
      no_value();
      o.help = true;
    } else if (flag == "--list") {
      no_value();
      o.list = true;
    } else if (flag == "--progress") {
      no_value();
      o.progress = progress_mode::on;
    } else if (flag == "--no-progress") {
      no_value();
      o.progress = progress_mode::off;
    } else if (flag == "--data") {
      o.data_dir = take();
    } else if (flag == "--out") {
      o.out_dir = take();
      if (o.out_dir.empty()) {
        bad(flag, "needs a directory");
      }
    } else if (flag == "--configs") {
      o.configs = split_commas(flag, take());
    } else if (flag == "--partition") {
      const std::string& p = take();
      if (p == "iid") {
        o.partitions = {partition_kind::iid};
      } else if (p == "non-iid" || p == "noniid") {
        o.partitions = {partition_kind::dirichlet};
      } else if (p == "both") {
        o.partitions = {partition_kind::iid, partition_kind::dirichlet};
      } else {
        bad(flag, "expected iid, non-iid or both, got '" + p + "'");
      }
    } else if (flag == "--alpha") {
      o.alpha = to_double(flag, take(), 1e-3, 1e3);
    } else if (flag == "--workers") {
      o.workers = static_cast<int>(to_unsigned(flag, take(), 1, 64));
    } else if (flag == "--transport") {
      const std::string t = take();
      if (t == "local") {
        o.transport = worker_transport::local;
      } else if (t == "mpi") {
        o.transport = worker_transport::mpi;
      } else {
        bad(flag, "expected local or mpi, got '" + t + "'");
      }
    } else if (flag == "--epochs") {
      o.epochs = to_double(flag, take(), 1e-3, 1e3);
    } else if (flag == "--steps") {
      o.steps = to_unsigned(flag, take(), 1, 10'000'000);
    } else if (flag == "--batch") {
      o.batch = to_unsigned(flag, take(), 1, 4096);
    } else if (flag == "--eval-every") {
      o.eval_every = to_unsigned(flag, take(), 1, 10'000'000);
    } else if (flag == "--model") {
      o.model = take();
    } else if (flag == "--seed") {
      o.seed = to_unsigned(flag, take(), 0, UINT64_MAX);
    } else if (flag == "--gbps") {
      o.gbps = to_double(flag, take(), 1e-3, 1e6);
    } else if (flag == "--latency-us") {
      o.latency_us = to_double(flag, take(), 0, 1e6);
    } else if (flag == "--lr-decay") {
      const std::string& d = take();
      if (d != "cosine" && d != "none") {
        bad(flag, "expected cosine or none, got '" + d + "'");
      }
      o.cosine_lr = d == "cosine";
    } else if (flag == "--train-limit") {
      o.train_limit = to_unsigned(flag, take(), 0, 10'000'000);
    } else if (flag == "--test-limit") {
      o.test_limit = to_unsigned(flag, take(), 0, 10'000'000);
    } else if (flag == "--validation") {
      o.validation = to_unsigned(flag, take(), 0, 10'000'000);
    } else if (flag == "--declared-compute") {
      const std::string& f = take();
      o.declared_flops_per_s = f == "gpu" ? gpu_declared_flops_per_s : to_double(flag, f, 1e3, 1e18);
    } else if (flag == "--set") {
      const std::string& s = take();
      if (s.find('.') == std::string::npos || s.find('=') == std::string::npos) {
        bad(flag, "expected CONFIG.KEY=VALUE, got '" + s + "'");
      }
      o.knob_overrides.push_back(s);
    } else {
      bad(flag, "unknown option (see --help)");
    }
  }
  return o;
}

}  // namespace study
