#include <terse/core/error.hpp>

#include <doctest/doctest.h>

#include <string>

namespace {
int checked_half(int value)
{
  TERSE_EXPECTS(value % 2 == 0, "value must be even");
  return value / 2;
}
}  // namespace

TEST_CASE("TERSE_EXPECTS throws invalid_argument naming the condition and the place")
{
  CHECK(checked_half(4) == 2);
  try {
    checked_half(3);
    FAIL("expected a terse::error");
  } catch (const terse::error& e) {
    CHECK(e.code() == terse::errc::invalid_argument);
    const std::string what = e.what();
    CHECK(what.find("value % 2 == 0") != std::string::npos);
    CHECK(what.find("value must be even") != std::string::npos);
    CHECK(what.find("error_test.cpp") != std::string::npos);
    CHECK(what.find("checked_half") != std::string::npos);
    CHECK(e.where().line > 0);
  }
}

TEST_CASE("TERSE_FAIL and TERSE_CHECK carry their code")
{
  CHECK_THROWS_AS(TERSE_FAIL(terse::errc::timeout, "peer 3 silent"), terse::error);
  try {
    TERSE_CHECK(1 + 1 == 3, terse::errc::malformed_payload, "bad header");
  } catch (const terse::error& e) {
    CHECK(e.code() == terse::errc::malformed_payload);
    CHECK(std::string(e.what()).find("malformed payload: bad header") != std::string::npos);
  }
  CHECK_NOTHROW(TERSE_CHECK(true, terse::errc::internal, "never"));
}
