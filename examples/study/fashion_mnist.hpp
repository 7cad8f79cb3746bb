#pragma once
// Fashion-MNIST (Xiao, Rasul, Vollgraf 2017) from its IDX files, as Debian's
// dataset-fashion-mnist package installs them.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace study {

/// Images as normalised floats (row-major, `features` per image) and labels 0..9.
struct dataset {
  std::size_t count = 0;
  std::size_t features = 0;
  std::vector<float> images;
  std::vector<std::uint8_t> labels;

  const float* image(std::size_t i) const noexcept { return images.data() + i * features; }
};

struct fashion_mnist {
  dataset train;
  dataset test;             ///< what the study evaluates on: the test set, or the validation split
  bool validation = false;  ///< `test` holds examples held out of the training set
};

/// Where dataset-fashion-mnist puts the files.
inline constexpr const char* default_data_dir = "/usr/share/datasets/fashion-mnist";
inline constexpr int classes = 10;

/// Reads {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz from `dir`, keeping
/// the first `train_limit` / `test_limit` examples (0: all). Pixels are
/// scaled to [0, 1] and standardised with the training set's mean and
/// standard deviation. With `validation` > 0 the last `validation` of those
/// training examples are held out and returned in place of the test set
/// (which is then never read), for tuning knobs without looking at it; the
/// standardisation uses the remaining training examples only. Throws
/// std::runtime_error naming the file, and the Debian package, when a file
/// is missing or malformed, or std::invalid_argument when `validation`
/// leaves no training examples.
fashion_mnist load_fashion_mnist(const std::string& dir, std::size_t train_limit = 0, std::size_t test_limit = 0,
                                 std::size_t validation = 0);

}  // namespace study
