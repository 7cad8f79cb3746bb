// Compiled with NDEBUG (see CMakeLists.txt); the other half of
// checked_default_test.cpp.
#include <terse/core/verbs.hpp>

#if !defined(NDEBUG)
#error "this translation unit must be compiled with NDEBUG"
#endif

bool checked_default_in_ndebug_unit()
{
  return terse::transport_options{}.checked;
}
