#pragma once
// A multi-layer perceptron (ReLU hidden layers, softmax cross-entropy) whose
// forward and backward passes are BLAS matrix products (cblas_sgemm). It
// owns no parameters: they live in the trainer's flat buffer, laid out as
// W1, b1, W2, b2, ... (W_l row-major, inputs x outputs), the order of
// tensor_sizes(), so one terse::layout describes them and the gradients.

#include <terse/core/tensor_shape.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "fashion_mnist.hpp"

namespace study {

class mlp {
 public:
  /// @param widths layer widths, input first and classes last (e.g. 784, 256, 128, 10)
  explicit mlp(std::vector<std::size_t> widths);

  /// Parses "784-256-128-10"; throws std::invalid_argument when malformed.
  static std::vector<std::size_t> parse_widths(const std::string& text);

  const std::vector<std::size_t>& widths() const noexcept { return widths_; }
  std::string name() const;
  /// W1, b1, W2, b2, ...: the tensors of the flat buffer, in order.
  std::vector<std::size_t> tensor_sizes() const;
  /// The same tensors with their shapes: W_l an inputs×outputs matrix, b_l a vector.
  std::vector<terse::tensor_shape> tensor_shapes() const;
  std::size_t parameter_count() const noexcept { return parameters_; }

  /// He-normal weights from Philox (`seed`: the same on every worker, so all
  /// replicas start equal), zero biases.
  void initialise(std::span<float> parameters, std::uint64_t seed) const;

  /// Forward and backward on the examples `rows` of `data`: writes the mean
  /// gradient into `gradients` and returns the mean loss.
  double train_batch(std::span<const float> parameters, std::span<float> gradients, const dataset& data,
                     std::span<const std::size_t> rows);

  struct score {
    double correct = 0;
    double loss_sum = 0;
  };
  /// Correct predictions and summed loss on examples [begin, end) of `data`.
  score evaluate(std::span<const float> parameters, const dataset& data, std::size_t begin, std::size_t end);

 private:
  std::size_t layers() const noexcept { return widths_.size() - 1; }
  /// Runs the forward pass on the batch in activations_[0]; returns the logits.
  float* forward(std::span<const float> parameters, std::size_t batch);
  void reserve(std::size_t batch);

  std::vector<std::size_t> widths_;
  std::vector<std::size_t> weight_offset_;
  std::vector<std::size_t> bias_offset_;
  std::size_t parameters_ = 0;
  std::size_t capacity_ = 0;
  std::vector<std::vector<float>> activations_;  ///< per layer input, then the logits
  std::vector<float> delta_;                     ///< gradient w.r.t. the current layer's output
  std::vector<float> delta_below_;
};

}  // namespace study
