#include "fashion_mnist.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <type_traits>
#include <zlib.h>

namespace study {
namespace {

struct gz_closer {
  void operator()(gzFile file) const noexcept { gzclose(file); }
};
using gz_file = std::unique_ptr<std::remove_pointer_t<gzFile>, gz_closer>;

[[noreturn]] void fail(const std::string& path, const std::string& why)
{
  throw std::runtime_error(path + ": " + why);
}

gz_file open(const std::string& path)
{
  if (!std::filesystem::exists(path)) {
    fail(path,
         "not found. Fashion-MNIST comes with the Debian package dataset-fashion-mnist "
         "(apt-get install dataset-fashion-mnist), or point --data at a directory holding "
         "{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz");
  }
  gz_file file(gzopen(path.c_str(), "rb"));
  if (!file) {
    fail(path, "cannot be opened");
  }
  return file;
}

void read_exact(gzFile file, const std::string& path, void* out, std::size_t bytes)
{
  auto* dst = static_cast<unsigned char*>(out);
  while (bytes > 0) {
    const unsigned chunk = bytes > (1u << 30) ? (1u << 30) : static_cast<unsigned>(bytes);
    const int got = gzread(file, dst, chunk);
    if (got <= 0) {
      fail(path, "truncated or not a gzip'd IDX file");
    }
    dst += got;
    bytes -= static_cast<std::size_t>(got);
  }
}

std::uint32_t read_be32(gzFile file, const std::string& path)
{
  std::array<unsigned char, 4> b{};
  read_exact(file, path, b.data(), b.size());
  return std::uint32_t{b[0]} << 24 | std::uint32_t{b[1]} << 16 | std::uint32_t{b[2]} << 8 | std::uint32_t{b[3]};
}

/// An IDX file of unsigned bytes: magic 0x0000080D (D dimensions), the
/// dimensions, then the data.
std::vector<std::uint8_t> read_idx(const std::string& path, std::uint32_t dims, std::vector<std::size_t>& shape,
                                   std::size_t limit)
{
  const gz_file file = open(path);
  const std::uint32_t magic = read_be32(file.get(), path);
  if (magic != (0x0800u | dims)) {
    fail(path, "bad IDX magic number " + std::to_string(magic));
  }
  shape.clear();
  std::size_t inner = 1;
  for (std::uint32_t d = 0; d < dims; ++d) {
    shape.push_back(read_be32(file.get(), path));
    if (d > 0) {
      inner *= shape.back();
    }
  }
  if (shape[0] == 0 || inner == 0 || shape[0] > (1u << 24) || inner > (1u << 16)) {
    fail(path, "implausible IDX dimensions");
  }
  if (limit != 0 && limit < shape[0]) {
    shape[0] = limit;
  }
  std::vector<std::uint8_t> data(shape[0] * inner);
  read_exact(file.get(), path, data.data(), data.size());
  return data;
}

dataset read_split(const std::string& dir, const std::string& prefix, std::size_t limit)
{
  std::vector<std::size_t> image_shape;
  std::vector<std::size_t> label_shape;
  const std::string images_path = dir + "/" + prefix + "-images-idx3-ubyte.gz";
  const std::string labels_path = dir + "/" + prefix + "-labels-idx1-ubyte.gz";
  const std::vector<std::uint8_t> pixels = read_idx(images_path, 3, image_shape, limit);
  dataset split;
  split.labels = read_idx(labels_path, 1, label_shape, limit);
  if (label_shape[0] != image_shape[0]) {
    fail(labels_path,
         "holds " + std::to_string(label_shape[0]) + " labels for " + std::to_string(image_shape[0]) + " images");
  }
  for (const std::uint8_t label : split.labels) {
    if (label >= classes) {
      fail(labels_path, "label " + std::to_string(label) + " out of range");
    }
  }
  split.count = image_shape[0];
  split.features = image_shape[1] * image_shape[2];
  split.images.resize(pixels.size());
  for (std::size_t i = 0; i < pixels.size(); ++i) {
    split.images[i] = static_cast<float>(pixels[i]) / 255.0f;
  }
  return split;
}

void standardise(dataset& split, float mean, float stddev)
{
  for (float& v : split.images) {
    v = (v - mean) / stddev;
  }
}

/// Moves the last `count` examples of `from` into a new dataset.
dataset hold_out(dataset& from, std::size_t count)
{
  dataset held;
  held.count = count;
  held.features = from.features;
  const std::size_t keep = from.count - count;
  held.images.assign(from.images.begin() + static_cast<std::ptrdiff_t>(keep * from.features), from.images.end());
  held.labels.assign(from.labels.begin() + static_cast<std::ptrdiff_t>(keep), from.labels.end());
  from.images.resize(keep * from.features);
  from.labels.resize(keep);
  from.count = keep;
  return held;
}

}  // namespace

fashion_mnist load_fashion_mnist(const std::string& dir, std::size_t train_limit, std::size_t test_limit,
                                 std::size_t validation)
{
  fashion_mnist data;
  data.train = read_split(dir, "train", train_limit);
  if (validation > 0) {
    if (validation >= data.train.count) {
      throw std::invalid_argument("--validation " + std::to_string(validation) + ": the training set has only " +
                                  std::to_string(data.train.count) + " examples");
    }
    data.test = hold_out(data.train, validation);  // the test set stays unread
    data.validation = true;
  } else {
    data.test = read_split(dir, "t10k", test_limit);
  }
  if (data.train.features != data.test.features) {
    throw std::runtime_error(dir + ": training and test images differ in size");
  }
  double sum = 0;
  double squares = 0;
  for (const float v : data.train.images) {
    sum += v;
    squares += static_cast<double>(v) * v;
  }
  const double n = static_cast<double>(data.train.images.size());
  const double mean = sum / n;
  const double stddev = std::sqrt(std::max(squares / n - mean * mean, 1e-12));
  standardise(data.train, static_cast<float>(mean), static_cast<float>(stddev));
  standardise(data.test, static_cast<float>(mean), static_cast<float>(stddev));
  return data;
}

}  // namespace study
