// Must not compile: the codec cannot decode, and terse says so in words.
#include <terse/collective/allreduce.hpp>

struct half_a_codec {
  static constexpr terse::aggregation aggregation_kind = terse::aggregation::summable;
  std::size_t max_encoded_bytes(std::size_t n) const { return n; }
  std::size_t encode(const terse::codec_context&, terse::host_span<const float>, terse::host_span<std::byte>)
  {
    return 0;
  }
};

void use(terse::local_transport& t)
{
  terse::allreduce<half_a_codec> sync(t, terse::layout::single(4));
}
