#include "simulated_time.hpp"

#if defined(TERSE_STUDY_WITH_MPI)
#include <mpi.h>
#endif
#if defined(SMPI_H)  // SMPI's mpi.h defines it (there is no version macro)
#include <smpi/smpi.h>
#endif

#include <mutex>
#include <string>

namespace study::simulated {

/// The dataset every rank shares, and what it was loaded with. (Not in an
/// unnamed namespace: that would give the variables below internal linkage.)
struct loaded_dataset {
  std::string key;
  const fashion_mnist* data = nullptr;
};

// Why inline variables: SMPI's default privatization (smpi/privatization:
// dlopen) loads a private copy of this program for every rank, so an
// ordinary global would be one per rank. An inline variable is an
// STB_GNU_UNIQUE symbol, which the dynamic loader binds once per process,
// across those copies, so every rank finds the first rank's dataset. (With
// smpi/privatization:no every global is shared anyway.) SMPI_SHARED_MALLOC
// was not used: under its default smpi/shared-malloc:global every such
// block maps onto the same few pages, so the contents are not kept. SMPI
// runs one rank at a time, and loading calls no MPI, so the mutex only
// matters with SimGrid's parallel contexts.
inline std::mutex shared_dataset_mutex;
inline loaded_dataset* shared_dataset = nullptr;

const fashion_mnist& shared_fashion_mnist(const std::string& dir, std::size_t train_limit, std::size_t test_limit,
                                          std::size_t validation)
{
  const std::string key =
      dir + '|' + std::to_string(train_limit) + '|' + std::to_string(test_limit) + '|' + std::to_string(validation);
  const std::lock_guard<std::mutex> lock(shared_dataset_mutex);
  if (shared_dataset == nullptr || shared_dataset->key != key) {
    // Deliberately leaked: other ranks read it until the process ends.
    shared_dataset =
        new loaded_dataset{key, new fashion_mnist(load_fashion_mnist(dir, train_limit, test_limit, validation))};
  }
  return *shared_dataset->data;
}

bool available() noexcept
{
#if defined(SMPI_H)
  return true;
#else
  return false;
#endif
}

double now()
{
#if defined(SMPI_H)
  return MPI_Wtime();
#else
  return 0.0;
#endif
}

void charge([[maybe_unused]] double seconds)
{
#if defined(SMPI_H)
  // The benched form, because it is called from application code (between
  // MPI calls), and because it converts seconds to flops at this host's own
  // speed, so the charge is `seconds` on any platform file.
  if (seconds > 0) {
    smpi_execute_benched(seconds);
  }
#endif
}

}  // namespace study::simulated
