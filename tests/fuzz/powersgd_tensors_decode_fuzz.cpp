// Fuzzes compress::powersgd's per-tensor decoder: the harness's contexts
// get declared tensor shapes (a matrix, a vector, a second matrix and the
// rest as a vector, by n), so raw and mutated-valid payloads go through the
// table and per-tensor checks.
#include <terse/compress/powersgd.hpp>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "decode_fuzz.hpp"

namespace {

struct shaped_powersgd {
  terse::compress::powersgd codec{.rank = 2};
  std::vector<terse::tensor_shape> shapes;

  terse::codec_context with_shapes(terse::codec_context ctx, std::size_t n)
  {
    using terse::tensor_shape;
    shapes.clear();
    const std::size_t first = n / 2 / 8 * 8;  // a (first/8)×8 matrix
    const std::size_t bias = n - first != 0 ? 1 : 0;
    const std::size_t second = (n - first - bias) / 2 / 3 * 3;  // a 3×(second/3) matrix
    if (first != 0) {
      shapes.push_back(tensor_shape::matrix(first / 8, 8));
    }
    shapes.push_back(tensor_shape::vector(bias));
    if (second != 0) {
      shapes.push_back(tensor_shape::matrix(3, second / 3));
    }
    shapes.push_back(tensor_shape::vector(n - first - bias - second));
    ctx.tensors = shapes;
    return ctx;
  }
  std::size_t max_encoded_bytes(std::size_t n) { return codec.encoded_bytes(with_shapes({}, n), n); }
  std::size_t encode(const terse::codec_context& ctx, terse::host_span<const float> in, terse::host_span<std::byte> out)
  {
    return codec.encode(with_shapes(ctx, in.size()), in, out);
  }
  void decode_add(const terse::codec_context& ctx, terse::host_span<const std::byte> payload,
                  terse::host_span<float> acc)
  {
    codec.decode_add(with_shapes(ctx, acc.size()), payload, acc);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  return terse::fuzz::fuzz_decode(shaped_powersgd{}, data, size);
}
