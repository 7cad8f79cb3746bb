// Stands in for the GPU tests where they cannot be built: prints why and
// exits 77, which ctest reports as skipped.
#include <cstdio>

int main(int argc, char** argv)
{
  std::printf("SKIP: %s\n", argc > 1 ? argv[1] : "GPU tests not built");
  return 77;
}
