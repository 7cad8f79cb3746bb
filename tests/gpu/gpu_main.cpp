// Main of the GPU tests. Without a CUDA device every test exits 77, which
// ctest (SKIP_RETURN_CODE 77) reports as skipped rather than passed. Listing
// the tests needs no device, so doctest_discover_tests works on any machine.
#define DOCTEST_CONFIG_IMPLEMENT
#include <terse/core/cuda_memory.hpp>

#include <doctest/doctest.h>

#include <cstdio>
#include <string_view>

namespace {

// doctest options that only print (list tests, help, version) and run nothing.
bool only_prints(int argc, char** argv)
{
  constexpr std::string_view printing[] = {
      "list-test-cases", "ltc", "list-test-suites", "lts", "list-reporters", "lr", "help", "h", "?", "version", "v",
      "count",           "c"};
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (!arg.starts_with('-')) {
      continue;
    }
    arg.remove_prefix(arg.find_first_not_of('-'));
    if (arg.starts_with("dt-")) {
      arg.remove_prefix(3);
    }
    arg = arg.substr(0, arg.find('='));
    for (std::string_view option : printing) {
      if (arg == option) {
        return true;
      }
    }
  }
  return false;
}

}  // namespace

int main(int argc, char** argv)
{
  if (!only_prints(argc, argv) && terse::cuda_device_count() == 0) {
    std::puts("SKIP: no CUDA device");
    return 77;
  }
  doctest::Context context(argc, argv);
  return context.run();
}
