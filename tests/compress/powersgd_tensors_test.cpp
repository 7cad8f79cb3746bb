// compress::powersgd with declared tensor shapes: each matrix compressed
// with its own shape, vectors sent dense; exact payload sizes, the
// malformed-payload battery, save/load, the initial-Q setter, no allocation
// once warm. (Through terse::allreduce: powersgd_layout_test.cpp.)
#include <terse/compress/decode.hpp>
#include <terse/compress/powersgd.hpp>
#include <terse/transport/local.hpp>

#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>
#include <sstream>
#include <type_traits>
#include <vector>

#include "codec_test_support.hpp"
#include "counting_new.hpp"
#include "powersgd_test_support.hpp"

using terse::tensor_shape;
using terse::compress::powersgd;
using namespace powersgd_test;

static_assert(std::is_same_v<decltype(powersgd{}.shape(1)), terse::compress::powersgd_shape>);
static_assert(terse::concepts::compressor_decodes_into<powersgd>);

namespace {

// The study's first layer and a classifier head, with their biases.
const std::vector<tensor_shape> mixed{tensor_shape::matrix(784, 256), tensor_shape::vector(256),
                                      tensor_shape::matrix(256, 10), tensor_shape::vector(10)};
constexpr std::size_t mixed_n = 784 * 256 + 256 + 256 * 10 + 10;

terse::codec_context context_for(const std::vector<tensor_shape>& shapes, std::uint64_t seed = 5,
                                 std::uint64_t step = 0)
{
  terse::codec_context ctx{.seed = seed, .step = step, .bucket = 3};
  ctx.tensors = shapes;
  return ctx;
}

/// Rank-2 matrices where the layout has matrices, noise in the vectors;
/// the vectors hold a −0 and a tiny subnormal, which must survive as bits.
std::vector<float> mixed_values(std::uint64_t seed)
{
  std::vector<float> v;
  const auto w1 = low_rank(784, 256, 2, seed);
  const auto b1 = noise(256, seed + 10);
  const auto w2 = low_rank(256, 10, 2, seed + 20);
  const auto b2 = noise(10, seed + 30);
  v.insert(v.end(), w1.begin(), w1.end());
  for (double x : b1) {
    v.push_back(static_cast<float>(x));
  }
  v.insert(v.end(), w2.begin(), w2.end());
  for (double x : b2) {
    v.push_back(static_cast<float>(x));
  }
  v[784 * 256] = -0.0f;
  v[784 * 256 + 1] = std::numeric_limits<float>::denorm_min();
  return v;
}

std::vector<float> part(const std::vector<float>& v, std::size_t offset, std::size_t count)
{
  return {v.begin() + static_cast<std::ptrdiff_t>(offset), v.begin() + static_cast<std::ptrdiff_t>(offset + count)};
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b)
{
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), 4 * a.size()) == 0;
}

std::vector<std::byte> encoded(powersgd& codec, const terse::codec_context& ctx, const std::vector<float>& v)
{
  std::vector<std::byte> out(codec.encoded_bytes(ctx, v.size()));
  CHECK(codec.encode(ctx, terse::host_span<const float>(v), terse::host_span<std::byte>(out)) == out.size());
  return out;
}

}  // namespace

TEST_CASE("powersgd per tensor: an exactly rank-1 784x256 gradient is recovered; the flat view is not")
{
  const auto g = low_rank(784, 256, 1, 42);
  const std::vector<tensor_shape> shapes{tensor_shape::matrix(784, 256)};
  double per_tensor = 1, flat = 1;
  std::mutex lock;
  terse::run_local(2, [&](terse::local_transport& t) {
    powersgd shaped{.rank = 2};
    powersgd square{.rank = 2};
    std::vector<float> a, b;
    for (std::uint64_t step = 0; step < 20; ++step) {
      a = g;
      b = g;
      auto ctx = context_for(shapes, 9, step);
      shaped.reduce(ctx, t, terse::host_span<float>(a));
      ctx.tensors = {};
      square.reduce(ctx, t, terse::host_span<float>(b));
    }
    const std::lock_guard guard(lock);
    per_tensor = relative_error(a, g);
    flat = relative_error(b, g);
  });
  CHECK(per_tensor < 1e-5);
  CHECK(flat > 0.1);  // reshaped to 448x448 the gradient is far from rank 2
}

TEST_CASE("powersgd per tensor: payload is 24 + 24T + 4(sum (rows+cols)k + vector values) and round-trips")
{
  powersgd codec{.rank = 2};
  const auto ctx = context_for(mixed);
  const auto v = mixed_values(1);
  // Matrices: (784+256)·2 + (256+10)·2 factor floats; vectors: 256 + 10
  // floats; header 24 bytes, one 24-byte table entry per tensor.
  const std::size_t expected = 24 + 24 * 4 + 4 * ((784 + 256) * 2 + (256 + 10) * 2 + 256 + 10);
  CHECK(codec.encoded_bytes(ctx, mixed_n) == expected);
  const auto payload = encoded(codec, ctx, v);
  REQUIRE(payload.size() == expected);

  std::vector<float> out(mixed_n, 7.0f);
  terse::compress::decode(codec, ctx, payload, terse::host_span<float>(out));
  CHECK(same_bits(part(out, 784 * 256, 256), part(v, 784 * 256, 256)));  // −0 and the subnormal included
  CHECK(std::signbit(out[784 * 256]));
  CHECK(same_bits(part(out, mixed_n - 10, 10), part(v, mixed_n - 10, 10)));
  CHECK(relative_error(part(out, 0, 784 * 256), part(v, 0, 784 * 256)) < 1e-5);  // rank 2 from one step
  CHECK(relative_error(part(out, 784 * 256 + 256, 2560), part(v, 784 * 256 + 256, 2560)) < 1e-5);

  // decode_add adds the same values.
  std::vector<float> acc(mixed_n, 1.0f);
  codec.decode_add(ctx, payload, terse::host_span<float>(acc));
  for (std::size_t i = 784 * 256; i < 784 * 256 + 256; ++i) {
    CHECK(acc[i] == 1.0f + v[i]);
  }

  const auto shapes = codec.shapes(ctx);
  REQUIRE(shapes.size() == 4);
  CHECK((shapes[0].m == 784 && shapes[0].p == 256 && shapes[0].k == 2));
  CHECK(shapes[1].k == 0);  // a vector travels dense
  CHECK((shapes[2].m == 256 && shapes[2].p == 10 && shapes[2].k == 2));
}

TEST_CASE("powersgd per tensor reduce: one allreduce of every P and vector, one of every Q; vectors exact")
{
  std::vector<std::vector<float>> inputs{mixed_values(1), mixed_values(2)};
  std::vector<std::vector<float>> results(2);
  std::vector<std::vector<std::size_t>> sizes(2);
  std::mutex lock;
  terse::run_local(2, [&](terse::local_transport& t) {
    powersgd codec{.rank = 2};
    recording_transport<terse::local_transport> rec{&t, {}};
    auto v = inputs[static_cast<std::size_t>(t.rank())];
    codec.reduce(context_for(mixed), rec, terse::host_span<float>(v));
    const std::lock_guard guard(lock);
    results[static_cast<std::size_t>(t.rank())] = v;
    for (const auto& r : rec.results) {
      sizes[static_cast<std::size_t>(t.rank())].push_back(r.size());
    }
  });
  CHECK(sizes[0] == std::vector<std::size_t>{784 * 2 + 256 + 256 * 2 + 10 + 1, 256 * 2 + 10 * 2});
  CHECK(same_bits(results[0], results[1]));
  for (std::size_t i = 784 * 256; i < 784 * 256 + 256; ++i) {
    CHECK(results[0][i] == (inputs[0][i] + inputs[1][i]) / 2);
  }
  // The average of two rank-2 matrices has rank 4: rank 2 keeps most of it.
  std::vector<float> average(784 * 256);
  for (std::size_t i = 0; i < average.size(); ++i) {
    average[i] = (inputs[0][i] + inputs[1][i]) / 2;
  }
  CHECK(relative_error(part(results[0], 0, 784 * 256), average) < 0.9);
}

TEST_CASE("powersgd per tensor: malformed payloads raise malformed_payload and leave the output alone")
{
  powersgd codec{.rank = 2};
  const auto ctx = context_for(mixed);
  const auto good = encoded(codec, ctx, mixed_values(1));
  const auto rejected = [&](const std::vector<std::byte>& payload, const terse::codec_context& c) {
    std::vector<float> acc(mixed_n, 3.0f);
    bool malformed = false;
    try {
      codec.decode_add(c, payload, terse::host_span<float>(acc));
    } catch (const terse::error& e) {
      malformed = e.code() == terse::errc::malformed_payload;
    }
    std::vector<float> out(mixed_n, 3.0f);
    try {
      codec.decode(c, payload, terse::host_span<float>(out));
      malformed = false;
    } catch (const terse::error& e) {
      malformed = malformed && e.code() == terse::errc::malformed_payload;
    }
    return malformed && acc == std::vector<float>(mixed_n, 3.0f) && out == acc;
  };
  const auto with = [&](std::size_t at, auto value) {
    auto p = good;
    std::memcpy(p.data() + at, &value, sizeof(value));
    return p;
  };
  CHECK(rejected(std::vector<std::byte>(good.begin(), good.end() - 4), ctx));  // truncated
  auto longer = good;
  longer.push_back(std::byte{0});
  CHECK(rejected(longer, ctx));
  CHECK(rejected(with(4, std::uint32_t{3}), ctx));                         // another rank
  CHECK(rejected(with(16, terse::detail::powersgd_shaped_tag | 3), ctx));  // 3 tensors
  CHECK(rejected(with(24, std::uint64_t{785}), ctx));                      // rows of tensor 0
  CHECK(rejected(with(24 + 8, std::uint64_t{255}), ctx));                  // cols of tensor 0
  CHECK(rejected(with(24 + 16, std::uint64_t{1}), ctx));                   // k of tensor 0
  CHECK(rejected(with(24 + 24 + 8, std::uint64_t{1}), ctx));               // the vector as a matrix
  const std::size_t body = 24 + 4 * 24;
  CHECK(rejected(with(body, std::numeric_limits<float>::quiet_NaN()), ctx));  // a factor of P
  const std::size_t vector_at = body + 4 * (784 + 256) * 2;
  CHECK(rejected(with(vector_at + 8, std::numeric_limits<float>::infinity()), ctx));  // a dense value
  CHECK(rejected(with(body, 3e38f), ctx));                                            // P·Qᵀ could overflow
  // A flat payload for the same n, read as per tensor, and the reverse.
  powersgd flat_codec{.rank = 2};
  const auto flat = encoded(flat_codec, terse::codec_context{.seed = 5, .bucket = 3}, mixed_values(1));
  CHECK(rejected(flat, ctx));
  std::vector<float> acc(mixed_n, 3.0f);
  CHECK_THROWS_AS(flat_codec.decode_add(terse::codec_context{.bucket = 3}, good, terse::host_span<float>(acc)),
                  terse::error);
  // Shapes that do not hold the call's values are a caller error.
  std::vector<float> shorter(mixed_n - 1);
  CHECK_THROWS_WITH_AS(codec.decode_add(ctx, good, terse::host_span<float>(shorter)), doctest::Contains("shape"),
                       terse::error);
}

TEST_CASE("powersgd per tensor save/load: k steps, save, load, k steps equals 2k steps bit for bit")
{
  const auto ctx0 = context_for(mixed, 11);
  powersgd straight{.rank = 2};
  powersgd first{.rank = 2};
  std::vector<std::vector<std::byte>> a, b;
  for (std::uint64_t step = 0; step < 6; ++step) {
    auto ctx = ctx0;
    ctx.step = step;
    const auto v = mixed_values(100 + step);
    a.push_back(encoded(straight, ctx, v));
    if (step < 3) {
      b.push_back(encoded(first, ctx, v));
    } else {
      if (step == 3) {
        powersgd second{.rank = 2};
        restore(second, saved(first));
        CHECK(saved(second) == saved(first));
        first = std::move(second);
      }
      b.push_back(encoded(first, ctx, v));
    }
  }
  CHECK(a == b);

  // A blob for another rank, or a corrupt one, is refused and the state kept.
  const std::string blob = saved(straight);
  powersgd other{.rank = 3};
  CHECK_THROWS_AS(restore(other, blob), terse::error);
  std::string broken = blob;
  broken.resize(broken.size() - 5);
  powersgd victim{.rank = 2};
  (void)encoded(victim, ctx0, mixed_values(7));
  const std::string before = saved(victim);
  CHECK_THROWS_AS(restore(victim, broken), terse::error);
  CHECK(saved(victim) == before);
}

TEST_CASE("powersgd set_initial_q: the same Q gives the same payload whatever the seed; bad Q is refused")
{
  const std::vector<tensor_shape> shapes{tensor_shape::matrix(30, 20), tensor_shape::vector(5)};
  const auto v = [] {
    auto m = noise(605, 77);
    return std::vector<float>(m.begin(), m.end());
  }();
  std::vector<float> q(20 * 2);
  for (std::size_t j = 0; j < 20; ++j) {
    q[j * 2] = static_cast<float>(j + 1);
    q[j * 2 + 1] = j % 2 == 0 ? 1.0f : -1.0f;
  }
  const auto payload = [&](std::uint64_t seed, bool set) {
    powersgd codec{.rank = 2};
    const auto ctx = context_for(shapes, seed);
    if (set) {
      codec.set_initial_q(ctx, 0, terse::host_span<const float>(q));
    }
    return encoded(codec, ctx, v);
  };
  CHECK(payload(1, true) == payload(2, true));
  CHECK(payload(1, false) != payload(2, false));
  CHECK(payload(1, true) != payload(1, false));

  powersgd codec{.rank = 2};
  const auto ctx = context_for(shapes);
  const auto invalid = [&](std::size_t tensor, std::vector<float> values) {
    try {
      codec.set_initial_q(ctx, tensor, terse::host_span<const float>(values));
    } catch (const terse::error& e) {
      return e.code() == terse::errc::invalid_argument;
    }
    return false;
  };
  CHECK(invalid(0, std::vector<float>(39)));  // 20x2 expected
  CHECK(invalid(1, std::vector<float>(10)));  // the vector has no Q
  CHECK(invalid(2, q));
  auto nan = q;
  nan[3] = std::numeric_limits<float>::quiet_NaN();
  CHECK(invalid(0, nan));
  CHECK(codec.state.groups.empty());  // nothing was created by the failed calls
}

TEST_CASE("powersgd per tensor: warm encode, decode and reduce do not allocate")
{
  REQUIRE(counting_new::counter_works());
  powersgd codec{.rank = 2};
  powersgd receiver{.rank = 2};  // decodes only: keeps a plan, no state
  const auto ctx = context_for(mixed);
  const auto v = mixed_values(1);
  std::vector<std::byte> payload(codec.encoded_bytes(ctx, mixed_n));
  std::vector<float> out(mixed_n);
  std::vector<float> values(mixed_n);
  solo_transport alone;
  for (int step = 0; step < 3; ++step) {
    std::copy(v.begin(), v.end(), values.begin());
    counting_new::allocations = 0;
    counting_new::counting = step > 0;
    codec.encode(ctx, terse::host_span<const float>(v), terse::host_span<std::byte>(payload));
    receiver.decode(ctx, payload, terse::host_span<float>(out));
    receiver.decode_add(ctx, payload, terse::host_span<float>(out));
    codec.reduce(ctx, alone, terse::host_span<float>(values));
    counting_new::counting = false;
    if (step > 0) {
      CHECK(counting_new::allocations == 0);
    }
  }
}
