// terse's training study: trains an MLP on Fashion-MNIST with W workers
// under each configuration (compressor x feedback x schedule) and compares
// accuracy against bytes sent. scripts/demo runs a short version; see
// docs/results.md for the full matrix and `terse_study --help` for flags.
#include <cblas.h>
#if defined(TERSE_STUDY_WITH_MPI)
#include <terse/transport/mpi.hpp>
#endif

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <unistd.h>
#include <vector>

#include "configuration.hpp"
#include "fashion_mnist.hpp"
#include "mlp.hpp"
#include "options.hpp"
#include "partition.hpp"
#include "plot.hpp"
#include "progress.hpp"
#include "report.hpp"
#include "simulated_time.hpp"

namespace {

std::string command_line(int argc, char** argv)
{
  std::string text = "terse_study";
  for (int i = 1; i < argc; ++i) {
    text += ' ';
    text += argv[i];
  }
  return text;
}

void list_configurations(const std::vector<study::configuration>& configs)
{
  for (const study::configuration& c : configs) {
    std::printf("%-17s %s\n%17s [%s]\n", c.name.c_str(), c.description.c_str(), "", c.knobs_text().c_str());
  }
}

void describe_shards(const study::dataset& train, const study::shards& parts)
{
  const auto counts = study::class_counts(train, parts);
  for (std::size_t r = 0; r < parts.size(); ++r) {
    std::size_t present = 0;
    std::size_t largest = 0;
    for (const std::size_t c : counts[r]) {
      present += c > 0 ? 1 : 0;
      largest = std::max(largest, c);
    }
    std::printf("  worker %zu: %5zu examples, %zu classes, largest class %.0f%%\n", r, parts[r].size(), present,
                100.0 * static_cast<double>(largest) / static_cast<double>(std::max<std::size_t>(parts[r].size(), 1)));
  }
}

int run(int argc, char** argv)
{
  study::study_options opt = study::parse_options(argc, argv);
  if (opt.help) {
    std::fputs(study::usage().c_str(), stdout);
    return 0;
  }
  std::vector<study::configuration> all = study::all_configurations();
  study::apply_overrides(all, opt.knob_overrides);
  if (opt.list) {
    list_configurations(all);
    return 0;
  }
  const std::vector<study::configuration> configs = study::select(all, opt.configs);

  // With --transport mpi every process is one worker; only rank 0 prints
  // and writes the results (the others compute the same partition and
  // run the same configurations in step with it).
#if defined(TERSE_STUDY_WITH_MPI)
  std::optional<terse::mpi_session> session;
  std::optional<terse::mpi_transport> world;
  if (opt.transport == study::worker_transport::mpi) {
    session.emplace();
    world.emplace(MPI_COMM_WORLD);
    opt.workers = world->size();
  }
  const bool leader = !world || world->rank() == 0;
#else
  if (opt.transport == study::worker_transport::mpi) {
    throw std::invalid_argument(
        "--transport mpi: this terse_study was built without MPI (apt-get install libopenmpi-dev, then rebuild)");
  }
  const bool leader = true;
#endif
  if (opt.declared_flops_per_s > 0 &&
      (!study::simulated::available() || opt.transport != study::worker_transport::mpi)) {
    throw std::invalid_argument(
        "--declared-compute: needs a terse_study built with smpicxx, run under smpirun with --transport mpi "
        "(docs/results.md, \"Time to accuracy on a simulated cluster\")");
  }
  // Under SMPI every rank is a thread of this one process and shares its C
  // library: reopening stdout would silence rank 0 too, so the other ranks
  // skip printing instead (the guards on `leader` below).
  if (!leader && !study::simulated::available() && std::freopen("/dev/null", "w", stdout) == nullptr) {
    throw std::runtime_error("cannot silence the standard output of MPI rank > 0");
  }
  const std::vector<std::size_t> widths = study::mlp::parse_widths(opt.model);
  if (widths.back() != study::classes) {
    throw std::invalid_argument("--model " + opt.model + ": the last width must be " + std::to_string(study::classes) +
                                " (the classes)");
  }
  for (const study::configuration& c : configs) {
    if (c.knob("lr") <= 0 || c.knob("momentum") < 0 || c.knob("momentum") >= 1) {
      throw std::invalid_argument(c.name + ": lr must be positive and momentum in [0, 1)");
    }
  }

#if defined(OPENBLAS_VERSION)
  openblas_set_num_threads(1);  // the workers are the threads; BLAS calls stay on theirs
#endif
  const auto study_start = std::chrono::steady_clock::now();
  std::optional<study::fashion_mnist> own_data;
  const study::fashion_mnist& data =
      study::simulated::available()
          ? study::simulated::shared_fashion_mnist(opt.data_dir, opt.train_limit, opt.test_limit, opt.validation)
          : own_data.emplace(study::load_fashion_mnist(opt.data_dir, opt.train_limit, opt.test_limit, opt.validation));
  const std::string evaluated_on = data.validation ? "validation" : "test";
  if (widths.front() != data.train.features) {
    throw std::invalid_argument("--model " + opt.model + ": the first width must be " +
                                std::to_string(data.train.features) + " (the pixels of an image)");
  }
  const std::size_t per_step = static_cast<std::size_t>(opt.workers) * opt.batch;
  if (data.train.count < per_step) {
    throw std::invalid_argument("the training set (" + std::to_string(data.train.count) +
                                " examples) is smaller than one step of all workers (" + std::to_string(per_step) +
                                ")");
  }
  const std::uint64_t steps_per_epoch = std::max<std::uint64_t>(1, data.train.count / per_step);
  const std::uint64_t steps =
      opt.steps != 0 ? opt.steps
                     : std::max<std::uint64_t>(
                           1, static_cast<std::uint64_t>(std::llround(
                                  opt.epochs * static_cast<double>(data.train.count) / static_cast<double>(per_step))));
  const std::uint64_t eval_every = opt.eval_every != 0 ? opt.eval_every : std::max<std::uint64_t>(1, steps / 24);
  std::filesystem::create_directories(opt.out_dir);

  const study::mlp model(widths);
  if (leader) {
    std::printf("terse study: %s (%zu parameters) on Fashion-MNIST (%zu train, %zu %s), %d %s x batch %zu,\n",
                model.name().c_str(), model.parameter_count(), data.train.count, data.test.count,
                data.validation ? "validation, held out of train" : "test", opt.workers,
                opt.transport == study::worker_transport::mpi ? "MPI processes" : "workers", opt.batch);
    std::printf("  %llu steps (%.2f epochs), test every %llu steps, network model %.3g Gb/s + %.3g us per message\n",
                static_cast<unsigned long long>(steps),
                static_cast<double>(steps) / static_cast<double>(steps_per_epoch),
                static_cast<unsigned long long>(eval_every), opt.gbps, opt.latency_us);
    if (opt.declared_flops_per_s > 0) {
      std::printf(
          "  simulated cluster (SMPI): forward+backward declared at %.3g flop/s, codec work at terse's measured "
          "host codec speeds\n",
          opt.declared_flops_per_s);
    }
    std::fflush(stdout);
  }

  const bool bar_on = leader && (opt.progress == study::progress_mode::on ||
                                 (opt.progress == study::progress_mode::automatic && isatty(STDERR_FILENO) != 0));
  study::progress bar(steps * configs.size() * opt.partitions.size(), bar_on);
  std::vector<study::run_result> runs;
  for (const study::partition_kind kind : opt.partitions) {
    const study::shards parts =
        kind == study::partition_kind::iid
            ? study::partition_iid(data.train, opt.workers, opt.seed)
            : study::partition_dirichlet(data.train, opt.workers, opt.alpha, opt.batch, opt.seed);
    const std::string partition(study::to_string(kind));
    if (kind == study::partition_kind::dirichlet && leader) {
      bar.finish();
      std::printf("non-iid partition: label skew, Dirichlet alpha = %g\n", opt.alpha);
      describe_shards(data.train, parts);
      std::fflush(stdout);
    }
    const study::run_context ctx
    {
      .data = &data, .parts = &parts, .partition = partition, .widths = widths, .workers = opt.workers, .steps = steps,
      .steps_per_epoch = steps_per_epoch, .batch = opt.batch, .eval_every = eval_every, .seed = opt.seed,
      .gbps = opt.gbps, .latency_s = opt.latency_us * 1e-6, .cosine_lr = opt.cosine_lr,
      .declared_flops_per_s = opt.declared_flops_per_s, .bar = &bar,
#if defined(TERSE_STUDY_WITH_MPI)
      .mpi = world ? &*world : nullptr
#endif
    };
    for (const study::configuration& c : configs) {
      runs.push_back(c.run(ctx, c));
    }
  }
  bar.finish();
  if (!leader) {
    return 0;  // rank 0 holds the curves and writes the results
  }

  study::study_settings settings{.command = command_line(argc, argv),
                                 .model = model.name(),
                                 .parameters = model.parameter_count(),
                                 .workers = opt.workers,
                                 .batch = opt.batch,
                                 .steps = steps,
                                 .epochs = static_cast<double>(steps) / static_cast<double>(steps_per_epoch),
                                 .eval_every = eval_every,
                                 .seed = opt.seed,
                                 .gbps = opt.gbps,
                                 .latency_us = opt.latency_us,
                                 .alpha = opt.alpha,
                                 .train_examples = data.train.count,
                                 .test_examples = data.test.count,
                                 .evaluated_on = evaluated_on,
                                 .study_wall_s = 0};
  for (const study::partition_kind kind : opt.partitions) {
    const std::string partition(study::to_string(kind));
    const std::vector<study::comparison> rows = study::compare(runs, configs, partition);
    study::print_table(std::cout, rows, partition);
    const std::string title = "Fashion-MNIST, " + model.name() + ", " + std::to_string(opt.workers) + " workers, " +
                              partition + ": " + evaluated_on + " accuracy vs bytes sent";
    study::plot_accuracy_vs_bytes(opt.out_dir + "/accuracy_vs_bytes_" + partition + ".svg", title, runs, partition,
                                  rows.empty() ? std::nullopt : rows.front().target);
    if (study::has_simulated_time(runs)) {
      study::print_simulated_table(std::cout, rows, partition);
      study::plot_accuracy_vs_simulated_time(opt.out_dir + "/accuracy_vs_simulated_time_" + partition + ".svg",
                                             "Fashion-MNIST, " + model.name() + ", " + std::to_string(opt.workers) +
                                                 " workers, " + partition + ": " + evaluated_on +
                                                 " accuracy vs simulated time",
                                             runs, partition, rows.empty() ? std::nullopt : rows.front().target);
    }
    if (std::any_of(runs.begin(), runs.end(), [&](const study::run_result& r) { return r.decentralized; })) {
      study::plot_consensus_vs_step(opt.out_dir + "/consensus_distance_" + partition + ".svg",
                                    "Fashion-MNIST, " + model.name() + ", " + std::to_string(opt.workers) +
                                        " workers, " + partition + ": consensus distance of the gossip rows",
                                    runs, partition);
    }
  }
  settings.study_wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - study_start).count();
  study::write_results(opt.out_dir, settings, runs, configs);
  if (study::has_simulated_time(runs)) {
    study::write_simulated_results(opt.out_dir, runs, configs);
  }
  std::cout << "\ncolumns: final%/best% " << evaluated_on
            << " accuracy of the averaged model; sent/rank bytes each worker sent "
               "(monitoring included);\n  vs dense = dense bytes / these bytes; steps>T, sent>T when the target "
               "was first reached; saving>T = dense bytes to T / these;\n  compute, codec = CPU seconds per worker "
               "(forward+backward+optimizer; terse calls); comm@net = modelled time at "
            << opt.gbps
            << " Gb/s;\n  comm>T = modelled time at the first evaluation reaching the target; "
               "consensus = (1/W) sum ||x_i - xbar||^2 at the end\n  (a measurement: not in the bytes or the time)\n";
  std::printf("\nwrote %s/{results.csv,curves.csv,results.json,*.svg} in %.0f s\n", opt.out_dir.c_str(),
              settings.study_wall_s);
  return 0;
}

}  // namespace

int main(int argc, char** argv)
{
  try {
    return run(argc, argv);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "terse_study: %s\n(terse_study --help lists the options)\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "terse_study: %s\n", e.what());
    return 1;
  }
}
