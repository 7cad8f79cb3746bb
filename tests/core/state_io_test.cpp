#include <terse/core/state_io.hpp>

#include <doctest/doctest.h>

#include <cstring>
#include <sstream>
#include <string>
#include <utility>
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

namespace {
// A stream that can only be read forward, like a pipe: every seek fails.
class forward_only : public std::streambuf {
 public:
  explicit forward_only(std::string bytes) : bytes_(std::move(bytes))
  {
    setg(bytes_.data(), bytes_.data(), bytes_.data() + bytes_.size());
  }

 protected:
  pos_type seekoff(off_type, std::ios_base::seekdir, std::ios_base::openmode) override { return pos_type(-1); }
  pos_type seekpos(pos_type, std::ios_base::openmode) override { return pos_type(-1); }

 private:
  std::string bytes_;
};
}  // namespace

TEST_CASE("state reader: peeking an array's length works on a stream that cannot seek")
{
  std::stringstream blob;
  terse::state_writer out(blob);
  const std::vector<float> values{1.0f, 2.0f, 3.0f, 4.0f, 5.0f};
  out.array(terse::host_span<const float>(values));
  out.value(std::uint32_t{7});
  forward_only pipe(blob.str());
  std::istream in_stream(&pipe);
  terse::state_reader in(in_stream);
  CHECK(in.peek_array_length() == 5);
  CHECK(in.peek_array_length() == 5);  // peeking twice reads the header once
  std::vector<float> back(in.peek_array_length());
  in.array(terse::host_span<float>(back));
  CHECK(back == values);
  CHECK(in.value<std::uint32_t>() == 7);
}

TEST_CASE("state reader: an array longer than the limit is refused before anything is allocated")
{
  std::stringstream blob;
  terse::state_writer out(blob);
  const std::vector<float> values(64, 1.0f);
  out.array(terse::host_span<const float>(values));
  std::string bytes = blob.str();
  // Corrupt the count (after the 4-byte element size) to 2^50 elements.
  const std::uint64_t huge = std::uint64_t{1} << 50;
  std::memcpy(bytes.data() + 4, &huge, sizeof huge);
  std::stringstream corrupt(bytes);
  terse::state_reader in(corrupt);
  in.limit_arrays(1000);
  try {
    (void)in.peek_array_length();
    FAIL("a corrupt count was accepted");
  } catch (const terse::error& e) {
    CHECK(e.code() == terse::errc::io);
    CHECK(std::string(e.what()).find("more than the 1000") != std::string::npos);
  }
  std::stringstream fine(blob.str());
  terse::state_reader ok(fine);
  ok.limit_arrays(64);
  CHECK(ok.peek_array_length() == 64);
}
