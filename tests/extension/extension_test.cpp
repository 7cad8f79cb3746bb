// Codecs and a feedback rule written outside terse (acme_codecs.hpp, in the
// user's namespace, with ids from the user range) run through the allreduce
// unchanged: exact where the codec is exact, identical replicas, state that
// saves and loads, and payloads of another codec refused.
#include <terse/collective/allreduce.hpp>
#include <terse/transport/local.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <sstream>
#include <vector>

#include "extension_runs.hpp"

using extension_test::grid_value;
using extension_test::shape;
using extension_test::spiky_value;

namespace {

constexpr int world = 4;

template <class Codec, class Value>
std::vector<std::vector<float>> run(Codec codec, Value value)
{
  std::vector<std::vector<float>> out(world);
  terse::run_local(world, [&](terse::local_transport& t) {
    out[static_cast<std::size_t>(t.rank())] = extension_test::one_step(t, codec, terse::feedback::none{}, value);
  });
  for (const auto& r : out) {
    REQUIRE(r == out[0]);  // replicas identical
  }
  return out;
}

double mean_of(float (*value)(int, std::size_t), std::size_t i)
{
  double sum = 0;
  for (int r = 0; r < world; ++r) {
    sum += value(r, i);
  }
  return sum / world;
}

}  // namespace

static_assert(terse::wire::is_user_codec(acme::grid_floats::id) && terse::wire::is_user_codec(acme::largest_one::id));
static_assert(terse::concepts::summable_compressor<acme::grid_floats>);
static_assert(terse::concepts::feedback<acme::damped_residual>);

TEST_CASE("a user's summable codec averages grid values exactly")
{
  const auto out = run(acme::grid_floats{}, grid_value);
  for (std::size_t i = 0; i < shape().total(); ++i) {
    REQUIRE(out[0][i] == static_cast<float>(mean_of(grid_value, i)));
  }
}

TEST_CASE("a user's requantizable codec: within a step of the mean (each rank's rounding, then the owner's)")
{
  const auto out = run(acme::int8_grid{}, grid_value);
  for (std::size_t i = 0; i < shape().total(); ++i) {
    const double mean = mean_of(grid_value, i);
    const bool dense = i >= 1000 && i < 1020;
    REQUIRE(std::fabs(out[0][i] - mean) <= (dense ? 0.0 : 1.0 / 16 + 1e-6));
  }
}

TEST_CASE("a user's gather-only codec: every rank's largest value, averaged")
{
  const auto out = run(acme::largest_one{}, spiky_value);
  for (std::size_t i = 0; i < shape().total(); ++i) {
    REQUIRE(out[0][i] == static_cast<float>(mean_of(spiky_value, i)));
  }
}

TEST_CASE("a user's feedback rule keeps what it says it keeps, and saves and loads with a user codec")
{
  std::vector<std::string> blobs(world);
  terse::run_local(world, [&](terse::local_transport& t) {
    terse::allreduce sync(t, shape(), acme::int8_grid{.step = 0.25f}, acme::damped_residual{0.5f});
    std::vector<float> x(shape().total());
    for (std::size_t i = 0; i < x.size(); ++i) {
      x[i] = grid_value(t.rank(), i);
    }
    const std::vector<float> g = x;
    sync.average(terse::host_span<float>(x));
    // Segment 0 covers values [0, 1000): it keeps half of g - (g on the 1/4 grid).
    const std::vector<float>& e = sync.feedback().error(0);
    REQUIRE(e.size() == 1000);
    for (std::size_t i = 0; i < 1000; ++i) {
      const float own = std::nearbyint(g[i] / 0.25f) * 0.25f;
      REQUIRE(e[i] == 0.5f * (g[i] - own));
    }
    std::ostringstream out;
    sync.save(out);
    blobs[static_cast<std::size_t>(t.rank())] = out.str();
    terse::allreduce fresh(t, shape(), acme::int8_grid{.step = 0.25f}, acme::damped_residual{0.5f});
    std::istringstream in(blobs[static_cast<std::size_t>(t.rank())]);
    fresh.load(in);
    CHECK(fresh.feedback().error(0) == e);
    terse::allreduce other_codec(t, shape(), acme::grid_floats{}, acme::damped_residual{});
    std::istringstream again(blobs[static_cast<std::size_t>(t.rank())]);
    CHECK_THROWS_AS(other_codec.load(again), terse::error);
  });
}

TEST_CASE("a user codec's decoder refuses another user codec's payload")
{
  const std::vector<float> values{1.0f, -2.0f, 0.5f};
  std::vector<std::byte> payload(acme::int8_grid{}.max_encoded_bytes(values.size()));
  acme::int8_grid{}.encode({}, terse::host_span<const float>(values), terse::host_span<std::byte>(payload));
  std::vector<float> acc(values.size(), 0.0f);
  try {
    acme::largest_one{}.decode_add({}, terse::host_span<const std::byte>(payload), terse::host_span<float>(acc));
    FAIL("accepted another codec's payload");
  } catch (const terse::error& e) {
    CHECK(e.code() == terse::errc::malformed_payload);
    CHECK(std::string(e.what()).find("user codec 131") != std::string::npos);
  }
}

TEST_CASE("every user run gives the same bits again (the MPI test compares with these)")
{
  std::vector<std::vector<float>> first(world), second(world);
  terse::run_local(world, [&](terse::local_transport& t) {
    first[static_cast<std::size_t>(t.rank())] = extension_test::every_run(t);
  });
  terse::run_local(world, [&](terse::local_transport& t) {
    second[static_cast<std::size_t>(t.rank())] = extension_test::every_run(t);
  });
  CHECK(first == second);
}
