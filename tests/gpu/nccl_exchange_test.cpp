// nccl_transport's grouped exchange with one rank: messages to oneself (a
// send and a receive to this rank in one NCCL group), empty messages, two
// exchanges in flight, polling with test() and the errors of bad ids and
// arguments.
#include <terse/core/concepts.hpp>
#include <terse/core/cuda_memory.hpp>
#include <terse/transport/nccl.hpp>

#include <doctest/doctest.h>

#include <array>
#include <cstddef>
#include <vector>

#include "device_vector.hpp"
#include "nccl_test_support.hpp"

using terse_test::device_vector;
using terse_test::error_of;
using terse_test::sample;
using device_sends = terse::host_span<const terse::outgoing<terse::memory_space::device>>;
using device_recvs = terse::host_span<const terse::incoming<terse::memory_space::device>>;

static_assert(terse::concepts::exchanging_transport<terse::nccl_transport, terse::memory_space::device>);
static_assert(!terse::concepts::exchanging_transport<terse::nccl_transport, terse::memory_space::host>);

namespace {

terse::span<const std::byte, terse::memory_space::device> bytes_of(const device_vector<std::byte>& v)
{
  return v.span();
}

}  // namespace

TEST_CASE("nccl exchange: messages to oneself arrive, in posting order, by wait and by test")
{
  terse::cuda_stream stream;
  for (const bool checked : {false, true}) {
    CAPTURE(checked);
    auto t = terse_test::single_rank(stream.get(), checked);
    const std::vector<std::byte> first = sample<std::byte>(1000, 1);
    const std::vector<std::byte> second = sample<std::byte>(37, 2);
    device_vector<std::byte> a(first), b(second), got_a(first.size()), got_b(second.size());
    const std::array sends{terse::outgoing<terse::memory_space::device>{0, bytes_of(a)},
                           terse::outgoing<terse::memory_space::device>{0, {}},
                           terse::outgoing<terse::memory_space::device>{0, bytes_of(b)}};
    const std::array recvs{terse::incoming<terse::memory_space::device>{0, got_a.span()},
                           terse::incoming<terse::memory_space::device>{0, {}},
                           terse::incoming<terse::memory_space::device>{0, got_b.span()}};
    t.wait(t.start_exchange(device_sends(sends), device_recvs(recvs), 0));
    CHECK(got_a.download() == first);
    CHECK(got_b.download() == second);

    got_a.upload(std::vector<std::byte>(first.size()));
    const terse::exchange_id one = t.start_exchange(device_sends(sends).first(1), device_recvs(recvs).first(1), 1);
    const terse::exchange_id none = t.start_exchange({}, {}, 2);
    while (!t.test(one)) {
    }
    t.wait(none);
    CHECK(got_a.download() == first);
    CHECK(error_of([&] { (void)t.test(one); }) == terse::errc::invalid_argument);
    CHECK(t.healthy());
  }
}

TEST_CASE("nccl exchange rejects bad peers, tags and ids and stays healthy")
{
  terse::cuda_stream stream;
  auto t = terse_test::single_rank(stream.get(), true);
  device_vector<std::byte> a(8);
  const std::array to_nobody{terse::outgoing<terse::memory_space::device>{1, bytes_of(a)}};
  const std::array from_nobody{terse::incoming<terse::memory_space::device>{-1, a.span()}};
  const auto invalid = terse::errc::invalid_argument;
  CHECK(error_of([&] { (void)t.start_exchange(device_sends(to_nobody), {}, 0); }) == invalid);
  CHECK(error_of([&] { (void)t.start_exchange({}, device_recvs(from_nobody), 0); }) == invalid);
  CHECK(error_of([&] { (void)t.start_exchange({}, {}, -1); }) == invalid);
  CHECK(error_of([&] { (void)t.test(terse::exchange_id{99}); }) == invalid);
  CHECK(error_of([&] { t.wait(terse::exchange_id{}); }) == invalid);
  CHECK(t.healthy());
}
