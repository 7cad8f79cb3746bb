#include <terse/collective/layout.hpp>

#include <doctest/doctest.h>

#include <vector>

using terse::tensor_shape;

TEST_CASE("layout packs tensors end to end and groups whole tensors into buckets")
{
  const std::vector<std::size_t> sizes{100, 20, 30, 500, 1, 0, 49};
  const terse::layout shape(sizes, 150);
  CHECK(shape.total() == 700);
  REQUIRE(shape.tensors().size() == 7);
  CHECK(shape.tensors()[3].offset == 150);
  CHECK(shape.tensors()[6].offset == 651);

  // 100+20+30 fit in 150; 500 is larger than a bucket and stands alone;
  // 1+0+49 share the last one.
  REQUIRE(shape.buckets().size() == 3);
  CHECK(shape.buckets()[0].count == 150);
  CHECK(shape.buckets()[0].tensor_count == 3);
  CHECK(shape.buckets()[1].offset == 150);
  CHECK(shape.buckets()[1].count == 500);
  CHECK(shape.buckets()[2].offset == 650);
  CHECK(shape.buckets()[2].count == 50);
  CHECK(shape.buckets()[2].first_tensor == 4);
  for (std::size_t i = 0; i < shape.buckets().size(); ++i) {
    CHECK(shape.buckets()[i].id == i);
  }
}

TEST_CASE("the layout hash changes with the shape, not with nothing")
{
  const std::vector<std::size_t> a{10, 20}, b{20, 10}, c{10, 20};
  CHECK(terse::layout(a, 100).hash() == terse::layout(c, 100).hash());
  CHECK(terse::layout(a, 100).hash() != terse::layout(b, 100).hash());
  CHECK(terse::layout(a, 100).hash() != terse::layout(a, 15).hash());  // other buckets
  CHECK_THROWS_AS(terse::layout(a, 0), terse::error);
  CHECK(terse::layout::single(0).total() == 0);
}

TEST_CASE("small tensors form dense segments; runs of one kind merge; ids are stable")
{
  // weight, bias, weight, bias, bias, weight
  const std::vector<std::size_t> sizes{1000, 10, 2000, 20, 5, 3000};
  const terse::layout shape(sizes, 3100, /*dense_below=*/100);
  REQUIRE(shape.buckets().size() == 2);  // {1000,10,2000,20,5} and {3000}
  const auto first = shape.segments_of(shape.buckets()[0]);
  REQUIRE(first.size() == 4);
  CHECK(first[0].compressed);
  CHECK(first[0].count == 1000);
  CHECK_FALSE(first[1].compressed);
  CHECK(first[1].offset == 1000);
  CHECK(first[2].compressed);
  CHECK(first[2].count == 2000);
  CHECK_FALSE(first[3].compressed);
  CHECK(first[3].count == 25);  // two biases merged into one run
  const auto second = shape.segments_of(shape.buckets()[1]);
  REQUIRE(second.size() == 1);
  CHECK(second[0].compressed);
  for (std::size_t i = 0; i < shape.segments().size(); ++i) {
    CHECK(shape.segments()[i].id == i);
  }
  // without dense_below everything is one compressed run per bucket
  const terse::layout plain(sizes, 3100);
  CHECK(plain.segments().size() == 2);
  CHECK(plain.hash() != shape.hash());
}

TEST_CASE("layout shapes: invalid shapes raise invalid_argument and leave the layout as it was")
{
  const std::vector<std::size_t> sizes{12, 4};
  terse::layout shape(sizes, 100);
  const auto raises = [&](std::vector<tensor_shape> s) {
    try {
      shape.set_shapes(s);
    } catch (const terse::error& e) {
      return e.code() == terse::errc::invalid_argument;
    }
    return false;
  };
  CHECK(raises({tensor_shape::matrix(3, 4)}));                                    // one shape for two tensors
  CHECK(raises({tensor_shape::matrix(3, 5), tensor_shape::vector(4)}));           // 15 != 12
  CHECK(raises({tensor_shape::matrix(0, 12), tensor_shape::vector(4)}));          // zero rows
  CHECK(raises({tensor_shape::matrix(12, 0), tensor_shape::vector(4)}));          // zero cols
  CHECK(raises({tensor_shape::matrix(3, 4), tensor_shape::vector(5)}));           // vector of 5 for 4
  CHECK(raises({tensor_shape::matrix(1ull << 62, 4), tensor_shape::vector(4)}));  // rows·cols overflows to 0
  CHECK(raises({tensor_shape{12, 1, 3}, tensor_shape::vector(4)}));               // three dimensions
  CHECK_FALSE(shape.has_shapes());
  const auto plain_hash = shape.hash();
  shape.set_shapes(std::vector<tensor_shape>{tensor_shape::matrix(3, 4), tensor_shape::vector(4)});
  CHECK(shape.has_shapes());
  CHECK(shape.hash() != plain_hash);
  CHECK(terse::layout(sizes, 100).hash() == plain_hash);  // no shapes: the fingerprint of before
  CHECK(shape.shapes_of(shape.segments()[0])[1] == tensor_shape::vector(4));
}

TEST_CASE("layout shapes: segments know their tensors; the shape constructor sizes the tensors")
{
  const std::vector<tensor_shape> shapes{tensor_shape::matrix(8, 4), tensor_shape::vector(4),
                                         tensor_shape::matrix(4, 2), tensor_shape::vector(2)};
  const terse::layout shape(shapes, 100, 5);  // the two vectors are below dense_below
  CHECK(shape.total() == 46);
  REQUIRE(shape.segments().size() == 4);
  for (const auto& seg : shape.segments()) {
    REQUIRE(seg.tensor_count == 1);
    CHECK(shape.shapes_of(seg)[0] == shapes[seg.first_tensor]);
    CHECK(seg.compressed == shapes[seg.first_tensor].is_matrix());
  }
  const std::vector<std::size_t> sizes{32, 4, 8, 2};
  const terse::layout plain(sizes, 100, 5);
  CHECK(plain.shapes_of(plain.segments()[0]).empty());
  CHECK(plain.segments()[0].first_tensor == 0);
  const terse::layout merged(shapes, 100);  // nothing dense: one segment of four tensors
  REQUIRE(merged.segments().size() == 1);
  CHECK(merged.shapes_of(merged.segments()[0]).size() == 4);
}
