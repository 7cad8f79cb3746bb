#include <terse/core/state_io.hpp>

#include <doctest/doctest.h>

#include <sstream>
#include <vector>

TEST_CASE("state round-trips sections, scalars and arrays")
{
  std::stringstream blob;
  terse::state_writer out(blob);
  out.section("residual");
  out.value(std::uint64_t{42});
  const std::vector<float> values{1.5f, -2.0f, 3.25f};
  out.array(terse::host_span<const float>(values));

  terse::state_reader in(blob);
  in.section("residual");
  CHECK(in.value<std::uint64_t>() == 42);
  CHECK(in.peek_array_length() == 3);
  std::vector<float> back(3);
  in.array(terse::host_span<float>(back));
  CHECK(back == values);
}

TEST_CASE("state reader names the first disagreement")
{
  std::stringstream blob;
  terse::state_writer out(blob);
  out.section("residual");
  const std::vector<float> values(4, 1.0f);
  out.array(terse::host_span<const float>(values));
  const std::string bytes = blob.str();

  const auto read_with = [&](auto&& action) {
    std::stringstream copy(bytes);
    terse::state_reader in(copy);
    try {
      action(in);
    } catch (const terse::error& e) {
      CHECK(e.code() == terse::errc::io);
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(read_with([](terse::state_reader& in) { in.section("momentum"); }).find("expected section 'momentum'") !=
        std::string::npos);
  CHECK(read_with([](terse::state_reader& in) {
          in.section("residual");
          std::vector<float> wrong(5);
          in.array(terse::host_span<float>(wrong));
        }).find("array of 4 elements where 5") != std::string::npos);
  CHECK(read_with([](terse::state_reader& in) {
          in.section("residual");
          std::vector<double> wrong(4);
          in.array(terse::host_span<double>(wrong));
        }).find("another size") != std::string::npos);
  std::stringstream truncated(bytes.substr(0, bytes.size() - 3));
  terse::state_reader short_in(truncated);
  short_in.section("residual");
  std::vector<float> four(4);
  CHECK_THROWS_AS(short_in.array(terse::host_span<float>(four)), terse::error);
}
