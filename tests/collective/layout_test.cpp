#include <terse/collective/layout.hpp>

#include <doctest/doctest.h>

#include <vector>

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
