// compress::powersgd::reduce over real in-process ranks (terse::run_local):
// its two averaging allreduces, linearity, exact recovery of low-rank
// matrices, bit-identical results on every rank, the non-finite flag, and
// save/load continuation.
#include <terse/compress/powersgd.hpp>
#include <terse/transport/local.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>
#include <string>
#include <vector>

#include "codec_test_support.hpp"
#include "powersgd_test_support.hpp"

using terse::compress::powersgd;
using namespace powersgd_test;

namespace {

/// Rank r's matrix at `step`: a shared low-rank part plus rank-private noise.
std::vector<float> rank_values(std::size_t n, int rank, std::uint64_t step)
{
  auto v = codec_test::gradient_like(n, 1000 + 17 * step, 1.0f);
  const auto own = codec_test::gradient_like(n, 5000 + 31 * step + static_cast<std::uint64_t>(rank), 0.3f);
  for (std::size_t i = 0; i < n; ++i) {
    v[i] += own[i];
  }
  return v;
}

}  // namespace

TEST_CASE(
    "powersgd reduce: P is linear in M, so the averaged P is (average M)·Q and the result is serial PowerSGD "
    "on the average")
{
  const int world = 4;
  const std::size_t n = 3000;  // 55 x 55, a partial last row
  std::vector<std::vector<float>> inputs;
  std::vector<float> average(n, 0.0f);
  for (int r = 0; r < world; ++r) {
    inputs.push_back(rank_values(n, r, 0));
  }
  for (std::size_t i = 0; i < n; ++i) {
    double sum = 0;
    for (int r = 0; r < world; ++r) {
      sum += inputs[static_cast<std::size_t>(r)][i];
    }
    average[i] = static_cast<float>(sum / world);
  }
  const terse::codec_context ctx{.seed = 3, .step = 0, .bucket = 4};

  // Serial: the same algorithm on the average, one rank.
  powersgd serial{.rank = 3};
  solo_transport alone;
  recording_transport<solo_transport> serial_t{&alone, {}};
  auto expected = average;
  serial.reduce(ctx, serial_t, terse::host_span<float>(expected));

  std::mutex lock;
  std::vector<std::vector<std::vector<float>>> recorded(world);
  std::vector<std::vector<float>> results(world);
  terse::run_local(world, [&](terse::local_transport& t) {
    powersgd codec{.rank = 3};
    recording_transport<terse::local_transport> rec{&t, {}};
    auto v = inputs[static_cast<std::size_t>(t.rank())];
    codec.reduce(ctx, rec, terse::host_span<float>(v));
    const std::lock_guard guard(lock);
    recorded[static_cast<std::size_t>(t.rank())] = rec.results;
    results[static_cast<std::size_t>(t.rank())] = v;
  });

  const auto s = serial.shape(n);
  REQUIRE(recorded[0].size() == 2);  // two allreduces: P plus a flag, then Q
  CHECK(recorded[0][0].size() == s.m * s.k + 1);
  CHECK(recorded[0][1].size() == s.p * s.k);
  // allreduce(P) = (ΣM)Q̂/W: compare with the serial P before orthonormalisation.
  const std::vector<float> averaged_p(recorded[0][0].begin(), recorded[0][0].end() - 1);
  const std::vector<float> serial_p(serial_t.results[0].begin(), serial_t.results[0].end() - 1);
  CHECK(relative_error(averaged_p, serial_p) < 1e-6);
  CHECK(recorded[0][0].back() == 0.0f);  // nobody flagged
  CHECK(relative_error(recorded[0][1], serial_t.results[1]) < 1e-5);
  CHECK(relative_error(results[0], expected) < 1e-5);
}

TEST_CASE("powersgd reduce: every rank ends with bit-identical results, P orthonormal")
{
  for (const int world : {2, 3, 5}) {
    CAPTURE(world);
    const std::size_t n = 10007;
    std::vector<std::vector<float>> results(static_cast<std::size_t>(world));
    std::vector<std::string> states(static_cast<std::size_t>(world));
    std::vector<double> orthonormality(static_cast<std::size_t>(world));
    terse::run_local(world, [&](terse::local_transport& t) {
      powersgd codec{.rank = 4};
      for (std::uint64_t step = 0; step < 3; ++step) {
        auto v = rank_values(n, t.rank(), step);
        codec.reduce({.seed = 1, .step = step, .bucket = 0}, t, terse::host_span<float>(v));
        results[static_cast<std::size_t>(t.rank())] = v;
      }
      const auto& b = codec.state.buckets.at(0);
      orthonormality[static_cast<std::size_t>(t.rank())] = orthonormality_error(b.p.data(), b.shape.m, b.shape.k);
      states[static_cast<std::size_t>(t.rank())] = saved(codec);
    });
    for (int r = 1; r < world; ++r) {
      const auto& a = results[0];
      const auto& b = results[static_cast<std::size_t>(r)];
      CHECK(std::memcmp(a.data(), b.data(), 4 * n) == 0);
      CHECK(states[static_cast<std::size_t>(r)] == states[0]);
    }
    CHECK(orthonormality[0] < 1e-5);
  }
}

TEST_CASE("powersgd reduce recovers a rank-r matrix that every rank holds")
{
  for (const std::uint32_t rank : {1u, 2u, 4u}) {
    CAPTURE(rank);
    const auto m = low_rank(70, 70, rank, 40 + rank);  // n = 4900 = 70 x 70
    double worst = 0;
    std::mutex lock;
    terse::run_local(3, [&](terse::local_transport& t) {
      powersgd codec{.rank = rank};
      for (std::uint64_t step = 0; step < 3; ++step) {
        auto v = m;
        codec.reduce({.step = step}, t, terse::host_span<float>(v));
        const std::lock_guard guard(lock);
        worst = std::max(worst, relative_error(v, m));
      }
    });
    CHECK(worst < 1e-4);
  }
}

TEST_CASE("powersgd reduce: the error falls step by step on a fixed matrix (power iteration)")
{
  // Ranks hold different matrices whose average has singular values
  // 8, 5, 2, 1, 0.3: rank 2 converges to the error |(2, 1, 0.3)|.
  const std::vector<double> sigma{8, 5, 2, 1, 0.3};
  const auto average = with_spectrum(50, 50, sigma, 77);
  const double best = std::sqrt(4 + 1 + 0.09) / std::sqrt(64 + 25 + 4 + 1 + 0.09);
  std::vector<double> errors;
  terse::run_local(2, [&](terse::local_transport& t) {
    powersgd codec;
    const auto noise_part = codec_test::gradient_like(average.size(), 9, 1.0f);
    for (std::uint64_t step = 0; step < 25; ++step) {
      auto v = average;  // rank 0 gets average + x, rank 1 average - x
      for (std::size_t i = 0; i < v.size(); ++i) {
        v[i] += t.rank() == 0 ? noise_part[i] : -noise_part[i];
      }
      codec.reduce({.step = step}, t, terse::host_span<float>(v));
      if (t.rank() == 0) {
        errors.push_back(relative_error(v, average));
      }
    }
  });
  for (std::size_t i = 1; i < errors.size(); ++i) {
    CAPTURE(i);
    CHECK(errors[i] <= errors[i - 1] + 1e-5);
  }
  CHECK(errors.front() > best * 1.01);
  CHECK(errors.back() < best * (1 + 1e-3));
}

TEST_CASE("powersgd reduce: one rank's NaN makes every rank throw non_finite after both allreduces, Q unchanged")
{
  const int world = 3;
  const std::size_t n = 2000;
  for (const float special : {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::infinity()}) {
    std::vector<int> codes(world, -1);
    std::vector<int> calls(world, 0);
    terse::run_local(world, [&](terse::local_transport& t) {
      powersgd codec;
      recording_transport<terse::local_transport> rec{&t, {}};
      auto v = rank_values(n, t.rank(), 0);
      codec.reduce({.step = 0}, rec, terse::host_span<float>(v));  // warm up
      const std::string before = saved(codec);
      auto bad = rank_values(n, t.rank(), 1);
      if (t.rank() == 1) {
        bad[1234] = special;
      }
      const auto kept = bad;
      const auto code =
          codec_test::error_code_of([&] { codec.reduce({.step = 1}, rec, terse::host_span<float>(bad)); });
      codes[static_cast<std::size_t>(t.rank())] = static_cast<int>(code);
      calls[static_cast<std::size_t>(t.rank())] = static_cast<int>(rec.results.size());
      CHECK(saved(codec) == before);
      CHECK(std::memcmp(bad.data(), kept.data(), 4 * n) == 0);
      // The world is still healthy and the next clean step works everywhere.
      auto again = rank_values(n, t.rank(), 2);
      codec.reduce({.step = 2}, rec, terse::host_span<float>(again));
      for (float x : again) {
        REQUIRE(std::isfinite(x));
      }
    });
    for (int r = 0; r < world; ++r) {
      CHECK(codes[static_cast<std::size_t>(r)] == static_cast<int>(terse::errc::non_finite));
      CHECK(calls[static_cast<std::size_t>(r)] == 4);  // warm-up 2 + the failed step's 2
    }
  }
}

TEST_CASE("powersgd reduce: values too large for float products throw non_finite on every rank")
{
  std::vector<int> codes(2, -1);
  terse::run_local(2, [&](terse::local_transport& t) {
    powersgd codec;
    std::vector<float> v(33, std::numeric_limits<float>::max());
    const auto kept = v;
    codes[static_cast<std::size_t>(t.rank())] =
        static_cast<int>(codec_test::error_code_of([&] { codec.reduce({}, t, terse::host_span<float>(v)); }));
    CHECK(v == kept);
  });
  CHECK(codes[0] == static_cast<int>(terse::errc::non_finite));
  CHECK(codes[1] == static_cast<int>(terse::errc::non_finite));
}

TEST_CASE("powersgd reduce: n = 0 communicates nothing, n = 1 is the exact average, small n use rank min(r, m)")
{
  terse::run_local(2, [&](terse::local_transport& t) {
    powersgd codec{.rank = 8};
    recording_transport<terse::local_transport> rec{&t, {}};
    std::vector<float> empty;
    codec.reduce({.bucket = 0}, rec, terse::host_span<float>(empty));
    CHECK(rec.results.empty());
    std::vector<float> one{t.rank() == 0 ? 1.0f : 2.0f};
    codec.reduce({.bucket = 1}, rec, terse::host_span<float>(one));
    CHECK(one[0] == doctest::Approx(1.5f).epsilon(1e-6));
    // n = 10: 3 x 4 and k = min(8, 3) = 3 = m, so the approximation is exact.
    std::vector<float> ten(10);
    for (std::size_t i = 0; i < ten.size(); ++i) {
      ten[i] = static_cast<float>(i) * (t.rank() == 0 ? 1.0f : 3.0f);
    }
    codec.reduce({.bucket = 2}, rec, terse::host_span<float>(ten));
    for (std::size_t i = 0; i < ten.size(); ++i) {
      CHECK(ten[i] == doctest::Approx(2.0 * static_cast<double>(i)).epsilon(1e-5).scale(1));
    }
    // Edge inputs (the same on both ranks) average to themselves or refuse.
    for (const auto& input : codec_test::edge_inputs()) {
      CAPTURE(input.name);
      powersgd fresh;
      auto v = input.values;
      float largest = 0;
      for (float x : v) {
        largest = std::max(largest, std::abs(x));
      }
      if (largest > 1e37f) {
        CHECK(codec_test::error_code_of([&] { fresh.reduce({}, t, terse::host_span<float>(v)); }) ==
              terse::errc::non_finite);
        CHECK(v == input.values);
        continue;
      }
      fresh.reduce({}, t, terse::host_span<float>(v));
      for (float x : v) {
        REQUIRE(std::isfinite(x));
      }
      CHECK(norm(v) <= norm(input.values) * (1 + 1e-5) + 1e-30);
    }
  });
}

TEST_CASE("powersgd save/load: k steps, save, load into a fresh codec, k steps equals 2k steps bit for bit")
{
  const int world = 2;
  const int k = 3;
  const std::size_t sizes[] = {1000, 4099, 1};
  // Straight through, 2k steps on three buckets.
  std::vector<std::vector<float>> straight(world), resumed(world);
  std::vector<std::string> blobs(world);
  const auto step_all = [&](powersgd& codec, terse::local_transport& t, std::uint64_t step) {
    std::vector<float> last;
    for (std::uint32_t b = 0; b < 3; ++b) {
      auto v = rank_values(sizes[b], t.rank(), step * 3 + b);
      codec.reduce({.seed = 2, .step = step, .bucket = b}, t, terse::host_span<float>(v));
      last.insert(last.end(), v.begin(), v.end());
    }
    return last;
  };
  terse::run_local(world, [&](terse::local_transport& t) {
    powersgd codec;
    for (std::uint64_t step = 0; step < 2 * k; ++step) {
      straight[static_cast<std::size_t>(t.rank())] = step_all(codec, t, step);
    }
  });
  terse::run_local(world, [&](terse::local_transport& t) {
    powersgd codec;
    for (std::uint64_t step = 0; step < k; ++step) {
      step_all(codec, t, step);
    }
    blobs[static_cast<std::size_t>(t.rank())] = saved(codec);
  });
  terse::run_local(world, [&](terse::local_transport& t) {
    powersgd codec;
    restore(codec, blobs[static_cast<std::size_t>(t.rank())]);
    for (std::uint64_t step = k; step < 2 * k; ++step) {
      resumed[static_cast<std::size_t>(t.rank())] = step_all(codec, t, step);
    }
  });
  for (int r = 0; r < world; ++r) {
    const auto& a = straight[static_cast<std::size_t>(r)];
    const auto& b = resumed[static_cast<std::size_t>(r)];
    REQUIRE(a.size() == b.size());
    CHECK(std::memcmp(a.data(), b.data(), 4 * a.size()) == 0);
  }
}

TEST_CASE("powersgd load refuses another rank, a shape n does not give, a broken blob, and keeps its state")
{
  powersgd codec;
  codec_test::encode(codec, {.bucket = 3}, codec_test::gradient_like(500));
  codec_test::encode(codec, {.bucket = 9}, codec_test::gradient_like(70));
  const std::string blob = saved(codec);
  const auto io_error = [](powersgd& target, const std::string& bytes) {
    return codec_test::error_code_of([&] { restore(target, bytes); }) == terse::errc::io;
  };
  powersgd rank4{.rank = 4};
  CHECK(io_error(rank4, blob));
  CHECK(rank4.state.buckets.empty());
  powersgd fresh;
  CHECK(io_error(fresh, blob.substr(0, blob.size() - 5)));
  CHECK(fresh.state.buckets.empty());  // nothing half-loaded
  // Corrupt bucket 3's saved p (its n is 500: 22 x 23).
  std::string wrong_shape = blob;
  const std::uint64_t p = 23, other = 24;
  const auto at = wrong_shape.find(std::string(reinterpret_cast<const char*>(&p), 8));
  REQUIRE(at != std::string::npos);
  std::memcpy(wrong_shape.data() + at, &other, 8);
  CHECK(io_error(fresh, wrong_shape));
  // A NaN in Q.
  std::string nan_q = blob;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::memcpy(nan_q.data() + nan_q.size() - 4, &nan, 4);
  CHECK(io_error(fresh, nan_q));
  // The intact blob loads and reproduces the state.
  restore(fresh, blob);
  CHECK(saved(fresh) == blob);
  CHECK(fresh.state.buckets.size() == 2);
}
