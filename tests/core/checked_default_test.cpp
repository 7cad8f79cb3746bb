// One checked-mode default for the whole build: a translation unit compiled
// with NDEBUG and one compiled without it see the same transport default
// (the build's TERSE_CHECKED option), so one program never disagrees with
// itself about whether calls are checked.
#include <terse/core/verbs.hpp>

#include <doctest/doctest.h>

bool checked_default_in_ndebug_unit();  // checked_default_ndebug.cpp

TEST_CASE("the checked-mode default does not follow NDEBUG")
{
#if defined(NDEBUG)
  const bool this_unit_has_ndebug = true;
#else
  const bool this_unit_has_ndebug = false;
#endif
  CHECK_FALSE(this_unit_has_ndebug);  // the CMake rule below undefines it here
  CHECK(terse::transport_options{}.checked == checked_default_in_ndebug_unit());
  CHECK(terse::transport_options{}.checked == TERSE_CHECKED_DEFAULT);
}
