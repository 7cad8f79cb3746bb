#include "mlp.hpp"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

#include "random.hpp"

namespace study {
namespace {

/// C (m x n) = op(A) op(B) + beta C, row-major.
void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, const float* a, std::size_t lda,
          const float* b, std::size_t ldb, float beta, float* c, std::size_t ldc)
{
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), 1.0f, a, static_cast<int>(lda), b,
              static_cast<int>(ldb), beta, c, static_cast<int>(ldc));
}

/// Softmax of one row of logits in place; returns the cross-entropy for `label`.
double softmax_loss(float* row, std::size_t n, std::size_t label)
{
  const float top = *std::max_element(row, row + n);
  double sum = 0;
  for (std::size_t j = 0; j < n; ++j) {
    row[j] = std::exp(row[j] - top);
    sum += row[j];
  }
  const auto inv = static_cast<float>(1.0 / sum);
  for (std::size_t j = 0; j < n; ++j) {
    row[j] *= inv;
  }
  return -std::log(std::max(static_cast<double>(row[label]), 1e-30));
}

}  // namespace

mlp::mlp(std::vector<std::size_t> widths) : widths_(std::move(widths))
{
  if (widths_.size() < 2 || std::any_of(widths_.begin(), widths_.end(), [](std::size_t w) { return w == 0; })) {
    throw std::invalid_argument("an MLP needs at least an input and an output width, all positive");
  }
  for (std::size_t l = 0; l < layers(); ++l) {
    weight_offset_.push_back(parameters_);
    parameters_ += widths_[l] * widths_[l + 1];
    bias_offset_.push_back(parameters_);
    parameters_ += widths_[l + 1];
  }
}

std::vector<std::size_t> mlp::parse_widths(const std::string& text)
{
  std::vector<std::size_t> widths;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const std::size_t dash = std::min(text.find('-', pos), text.size());
    const std::string part = text.substr(pos, dash - pos);
    if (part.empty() || part.size() > 6 || part.find_first_not_of("0123456789") != std::string::npos) {
      throw std::invalid_argument("bad layer widths '" + text + "' (expected e.g. 784-256-128-10)");
    }
    widths.push_back(std::stoul(part));
    pos = dash + 1;
  }
  if (widths.size() < 2 || std::find(widths.begin(), widths.end(), std::size_t{0}) != widths.end()) {
    throw std::invalid_argument("bad layer widths '" + text + "' (at least two positive widths)");
  }
  return widths;
}

std::string mlp::name() const
{
  std::string text = "mlp";
  for (std::size_t l = 0; l < widths_.size(); ++l) {
    text.push_back(l == 0 ? ' ' : '-');
    text.append(std::to_string(widths_[l]));
  }
  return text;
}

std::vector<std::size_t> mlp::tensor_sizes() const
{
  std::vector<std::size_t> sizes;
  for (std::size_t l = 0; l < layers(); ++l) {
    sizes.push_back(widths_[l] * widths_[l + 1]);
    sizes.push_back(widths_[l + 1]);
  }
  return sizes;
}

std::vector<terse::tensor_shape> mlp::tensor_shapes() const
{
  std::vector<terse::tensor_shape> shapes;
  for (std::size_t l = 0; l < layers(); ++l) {
    shapes.push_back(terse::tensor_shape::matrix(widths_[l], widths_[l + 1]));
    shapes.push_back(terse::tensor_shape::vector(widths_[l + 1]));
  }
  return shapes;
}

void mlp::initialise(std::span<float> parameters, std::uint64_t seed) const
{
  std::fill(parameters.begin(), parameters.end(), 0.0f);
  for (std::size_t l = 0; l < layers(); ++l) {
    draws random(seed, purpose::weights, static_cast<std::uint32_t>(l));
    const double scale = std::sqrt(2.0 / static_cast<double>(widths_[l]));
    float* w = parameters.data() + weight_offset_[l];
    for (std::size_t i = 0; i < widths_[l] * widths_[l + 1]; ++i) {
      w[i] = static_cast<float>(scale * random.normal());
    }
  }
}

void mlp::reserve(std::size_t batch)
{
  if (batch <= capacity_) {
    return;
  }
  capacity_ = batch;
  activations_.resize(widths_.size());
  for (std::size_t l = 0; l < widths_.size(); ++l) {
    activations_[l].resize(batch * widths_[l]);
  }
  const std::size_t widest = *std::max_element(widths_.begin(), widths_.end());
  delta_.resize(batch * widest);
  delta_below_.resize(batch * widest);
}

float* mlp::forward(std::span<const float> parameters, std::size_t batch)
{
  for (std::size_t l = 0; l < layers(); ++l) {
    const std::size_t in = widths_[l];
    const std::size_t out = widths_[l + 1];
    float* z = activations_[l + 1].data();
    const float* bias = parameters.data() + bias_offset_[l];
    for (std::size_t i = 0; i < batch; ++i) {
      std::memcpy(z + i * out, bias, out * sizeof(float));
    }
    gemm(false, false, batch, out, in, activations_[l].data(), in, parameters.data() + weight_offset_[l], out, 1.0f, z,
         out);
    if (l + 1 < layers()) {
      for (std::size_t i = 0; i < batch * out; ++i) {
        z[i] = std::max(z[i], 0.0f);
      }
    }
  }
  return activations_.back().data();
}

double mlp::train_batch(std::span<const float> parameters, std::span<float> gradients, const dataset& data,
                        std::span<const std::size_t> rows)
{
  const std::size_t batch = rows.size();
  reserve(batch);
  const std::size_t features = widths_.front();
  for (std::size_t i = 0; i < batch; ++i) {
    std::memcpy(activations_[0].data() + i * features, data.image(rows[i]), features * sizeof(float));
  }
  float* logits = forward(parameters, batch);
  const std::size_t classes_out = widths_.back();
  double loss = 0;
  const float inv_batch = 1.0f / static_cast<float>(batch);
  for (std::size_t i = 0; i < batch; ++i) {
    float* row = logits + i * classes_out;
    const std::size_t label = data.labels[rows[i]];
    loss += softmax_loss(row, classes_out, label);
    row[label] -= 1.0f;  // d loss / d logits = softmax - one-hot (then / batch)
    for (std::size_t j = 0; j < classes_out; ++j) {
      delta_[i * classes_out + j] = row[j] * inv_batch;
    }
  }
  for (std::size_t l = layers(); l-- > 0;) {
    const std::size_t in = widths_[l];
    const std::size_t out = widths_[l + 1];
    const float* below = activations_[l].data();
    // dW = below^T delta; db = column sums of delta.
    gemm(true, false, in, out, batch, below, in, delta_.data(), out, 0.0f, gradients.data() + weight_offset_[l], out);
    float* db = gradients.data() + bias_offset_[l];
    std::fill(db, db + out, 0.0f);
    for (std::size_t i = 0; i < batch; ++i) {
      for (std::size_t j = 0; j < out; ++j) {
        db[j] += delta_[i * out + j];
      }
    }
    if (l > 0) {
      // d below = delta W^T, masked by the ReLU (below > 0 where it passed).
      gemm(false, true, batch, in, out, delta_.data(), out, parameters.data() + weight_offset_[l], out, 0.0f,
           delta_below_.data(), in);
      for (std::size_t i = 0; i < batch * in; ++i) {
        delta_below_[i] = below[i] > 0.0f ? delta_below_[i] : 0.0f;
      }
      std::swap(delta_, delta_below_);
    }
  }
  return loss / static_cast<double>(batch);
}

mlp::score mlp::evaluate(std::span<const float> parameters, const dataset& data, std::size_t begin, std::size_t end)
{
  constexpr std::size_t chunk = 500;
  score result;
  const std::size_t features = widths_.front();
  const std::size_t classes_out = widths_.back();
  for (std::size_t first = begin; first < end; first += chunk) {
    const std::size_t batch = std::min(chunk, end - first);
    reserve(batch);
    std::memcpy(activations_[0].data(), data.image(first), batch * features * sizeof(float));
    float* logits = forward(parameters, batch);
    for (std::size_t i = 0; i < batch; ++i) {
      float* row = logits + i * classes_out;
      const std::size_t predicted = static_cast<std::size_t>(std::max_element(row, row + classes_out) - row);
      const std::size_t label = data.labels[first + i];
      result.correct += predicted == label ? 1.0 : 0.0;
      result.loss_sum += softmax_loss(row, classes_out, label);
    }
  }
  return result;
}

}  // namespace study
