#pragma once
// Replaces the global operator new of the one test binary that includes this
// header (include it in exactly one source file of that binary) with one
// that counts, on the calling thread, the allocations made while
// `counting_new::counting` is set there.

#include <cstdlib>
#include <new>

// g++ 12 sees these frees inlined into library code after a call to the
// replaced new and calls them mismatched; the pair below is consistent.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace counting_new {
inline thread_local bool counting = false;
inline thread_local long allocations = 0;

/// True when the counter sees an allocation made while it is armed.
inline bool counter_works()
{
  counting = true;
  allocations = 0;
  void* volatile probe = ::operator new(16);
  ::operator delete(probe);
  counting = false;
  return allocations == 1;
}
}  // namespace counting_new

void* operator new(std::size_t size)
{
  if (counting_new::counting) {
    ++counting_new::allocations;
  }
  if (void* p = std::malloc(size == 0 ? 1 : size)) {
    return p;
  }
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept
{
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept
{
  std::free(p);
}
