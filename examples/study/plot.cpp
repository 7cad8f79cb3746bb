#include "plot.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <utility>
#include <vector>

namespace study {
namespace {

// Distinct colours (Tableau 20, reordered so neighbours differ).
constexpr const char* palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
                                   "#e377c2", "#17becf", "#bcbd22", "#7f7f7f", "#aec7e8", "#ff9896",
                                   "#98df8a", "#ffbb78", "#c5b0d5", "#c49c94", "#f7b6d2", "#9edae5"};
constexpr std::size_t palette_size = sizeof palette / sizeof palette[0];

std::string escape(const std::string& text)
{
  std::string out;
  for (const char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string number(double v)
{
  char text[32];
  std::snprintf(text, sizeof text, "%.1f", v);
  return text;
}

/// "1 kB", "10 MB": the label of a power of ten.
std::string decade_label(int exponent)
{
  const char* units[] = {"B", "kB", "MB", "GB", "TB", "PB"};
  const int unit = std::clamp(exponent / 3, 0, 5);
  const int rest = exponent - 3 * unit;
  return std::to_string(rest == 0 ? 1 : rest == 1 ? 10 : 100) + " " + units[unit];
}

/// "1e-3": the label of a power of ten.
std::string power_label(int exponent)
{
  return exponent == 0 ? std::string("1") : "1e" + std::to_string(exponent);
}

void write_file(const std::string& path, const std::string& text)
{
  std::ofstream file(path);
  file << text;
  file.flush();
  if (!file) {
    throw std::runtime_error(path + ": cannot be written");
  }
}

// The geometry both plots share: the plot area, and the legend to its right.
constexpr double width = 980;
constexpr double height = 600;
constexpr double left = 70;
constexpr double right = 700;
constexpr double top = 50;
constexpr double bottom = 530;

/// The document, its white background, the plot area's clip path and the title.
void open_svg(std::ostringstream& svg, const std::string& title)
{
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
      << "\" viewBox=\"0 0 " << width << ' ' << height << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<defs><clipPath id=\"plot\"><rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << right - left
      << "\" height=\"" << bottom - top << "\"/></clipPath></defs>\n"
      << "<text x=\"" << (left + right) / 2 << "\" y=\"28\" text-anchor=\"middle\" font-size=\"15\">" << escape(title)
      << "</text>\n";
}

/// The plot area's frame and the two axis labels.
void frame_and_labels(std::ostringstream& svg, const std::string& x_label, const std::string& y_label)
{
  svg << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << right - left << "\" height=\"" << bottom - top
      << "\" fill=\"none\" stroke=\"#333\"/>\n"
      << "<text x=\"" << (left + right) / 2 << "\" y=\"" << bottom + 42 << "\" text-anchor=\"middle\">" << x_label
      << "</text>\n"
      << "<text transform=\"translate(20 " << (top + bottom) / 2 << ") rotate(-90)\" text-anchor=\"middle\">" << y_label
      << "</text>\n";
}

/// Series `index`: a polyline with a dot per point (in pixels), clipped to
/// the plot area, and its legend entry. Past the palette, lines are dashed.
void draw_series(std::ostringstream& svg, std::size_t index, const std::vector<std::pair<double, double>>& points,
                 const std::string& legend)
{
  const char* colour = palette[index % palette_size];
  const bool dashed = index >= palette_size;
  svg << "<g clip-path=\"url(#plot)\" fill=\"none\" stroke=\"" << colour << "\" stroke-width=\"2\""
      << (dashed ? " stroke-dasharray=\"5 3\"" : "") << "><polyline points=\"";
  for (const auto& [x, y] : points) {
    svg << number(x) << ',' << number(y) << ' ';
  }
  svg << "\"/>";
  for (const auto& [x, y] : points) {
    svg << "<circle cx=\"" << number(x) << "\" cy=\"" << number(y) << "\" r=\"2.2\" fill=\"" << colour << "\"/>";
  }
  svg << "</g>\n";
  const double ly = top + 8 + 20.0 * static_cast<double>(index);
  svg << "<line x1=\"" << right + 20 << "\" y1=\"" << ly << "\" x2=\"" << right + 48 << "\" y2=\"" << ly
      << "\" stroke=\"" << colour << "\" stroke-width=\"3\"" << (dashed ? " stroke-dasharray=\"5 3\"" : "")
      << "/>\n<text x=\"" << right + 56 << "\" y=\"" << ly + 4 << "\">" << escape(legend) << "</text>\n";
}

/// "0.1 s", "10 s": the label of a power of ten of seconds.
std::string seconds_label(int exponent)
{
  char text[32];
  std::snprintf(text, sizeof text, "%g s", std::pow(10.0, exponent));
  return text;
}

/// Accuracy against a positive, growing quantity of each evaluation (bytes
/// sent, simulated seconds) on a log x axis; `x_of` gives it, `x_tick` labels
/// its decades.
template <class XOf, class XTick>
void plot_accuracy_against(const std::string& path, const std::string& title, const std::vector<run_result>& runs,
                           const std::string& partition, std::optional<double> target, XOf x_of, XTick x_tick,
                           const std::string& x_label)
{
  std::vector<const run_result*> lines;
  for (const run_result& r : runs) {
    if (r.partition == partition && !r.curve.empty()) {
      lines.push_back(&r);
    }
  }
  // Ranges: decades of bytes (points with no bytes yet cannot sit on a log
  // axis and are left out); accuracy from a little under the lowest
  // interesting value to a little over the best.
  double min_x = INFINITY;
  double max_x = 0;
  double best = 0;
  double lowest = 1;
  for (const run_result* r : lines) {
    for (const curve_point& p : r->curve) {
      if (x_of(p) > 0) {
        min_x = std::min(min_x, x_of(p));
        max_x = std::max(max_x, x_of(p));
      }
      best = std::max(best, p.accuracy);
      lowest = std::min(lowest, p.accuracy);
    }
  }
  if (!(max_x > 0)) {
    min_x = 1;
    max_x = 10;
  }
  const int x_lo = static_cast<int>(std::floor(std::log10(min_x)));
  const int x_hi = std::max(x_lo + 1, static_cast<int>(std::ceil(std::log10(max_x))));
  const double y_hi = std::min(100.0, std::ceil(best * 100 + 1));
  const double y_lo = std::max({0.0, std::floor(lowest * 100 - 1), y_hi - 30.0});

  const auto sx = [&](double bytes) {
    return left + (std::log10(bytes) - x_lo) / static_cast<double>(x_hi - x_lo) * (right - left);
  };
  const auto sy = [&](double accuracy) { return bottom - (accuracy * 100 - y_lo) / (y_hi - y_lo) * (bottom - top); };

  std::ostringstream svg;
  open_svg(svg, title);
  // Grid and ticks.
  for (int e = x_lo; e <= x_hi; ++e) {
    const double x = sx(std::pow(10.0, e));
    svg << "<line x1=\"" << number(x) << "\" y1=\"" << top << "\" x2=\"" << number(x) << "\" y2=\"" << bottom
        << "\" stroke=\"#ddd\"/>\n<text x=\"" << number(x) << "\" y=\"" << bottom + 18 << "\" text-anchor=\"middle\">"
        << x_tick(e) << "</text>\n";
    for (int m = 2; m < 10 && e < x_hi; ++m) {
      const double xm = sx(m * std::pow(10.0, e));
      svg << "<line x1=\"" << number(xm) << "\" y1=\"" << bottom << "\" x2=\"" << number(xm) << "\" y2=\"" << bottom - 5
          << "\" stroke=\"#999\"/>\n";
    }
  }
  const double y_step = y_hi - y_lo > 15 ? 5 : y_hi - y_lo > 6 ? 2 : 1;
  for (double a = std::ceil(y_lo / y_step) * y_step; a <= y_hi + 1e-9; a += y_step) {
    const double y = sy(a / 100);
    svg << "<line x1=\"" << left << "\" y1=\"" << number(y) << "\" x2=\"" << right << "\" y2=\"" << number(y)
        << "\" stroke=\"#ddd\"/>\n<text x=\"" << left - 8 << "\" y=\"" << number(y + 4) << "\" text-anchor=\"end\">"
        << a << "%</text>\n";
  }
  frame_and_labels(svg, x_label, "test accuracy of the averaged model");
  if (target) {
    const double y = sy(*target);
    svg << "<line x1=\"" << left << "\" y1=\"" << number(y) << "\" x2=\"" << right << "\" y2=\"" << number(y)
        << "\" stroke=\"#000\" stroke-dasharray=\"6 4\"/>\n<text x=\"" << left + 6 << "\" y=\"" << number(y - 5)
        << "\">target " << number(*target * 100) << "% (dense final - 0.5 points)</text>\n";
  }
  // One polyline (and a dot per evaluation) per configuration.
  for (std::size_t i = 0; i < lines.size(); ++i) {
    std::vector<std::pair<double, double>> points;
    for (const curve_point& p : lines[i]->curve) {
      if (x_of(p) > 0) {
        points.emplace_back(sx(x_of(p)), sy(p.accuracy));
      }
    }
    draw_series(svg, i, points, lines[i]->config + " (" + number(lines[i]->final_accuracy() * 100) + "%)");
  }
  svg << "</svg>\n";
  write_file(path, svg.str());
}

}  // namespace

void plot_accuracy_vs_bytes(const std::string& path, const std::string& title, const std::vector<run_result>& runs,
                            const std::string& partition, std::optional<double> target)
{
  plot_accuracy_against(
      path, title, runs, partition, target, [](const curve_point& p) { return p.bytes_sent; }, decade_label,
      "bytes sent per worker (log scale; monitoring included)");
}

void plot_accuracy_vs_simulated_time(const std::string& path, const std::string& title,
                                     const std::vector<run_result>& runs, const std::string& partition,
                                     std::optional<double> target)
{
  plot_accuracy_against(
      path, title, runs, partition, target, [](const curve_point& p) { return p.simulated_s; }, seconds_label,
      "simulated seconds of training (log scale; SMPI, declared compute)");
}

void plot_consensus_vs_step(const std::string& path, const std::string& title, const std::vector<run_result>& runs,
                            const std::string& partition)
{
  std::vector<const run_result*> lines;
  for (const run_result& r : runs) {
    if (r.partition == partition && r.decentralized && !r.curve.empty()) {
      lines.push_back(&r);
    }
  }
  // Decades of distance (a zero distance cannot sit on a log axis and is
  // left out); steps from 0 to the longest run.
  double min_distance = INFINITY;
  double max_distance = 0;
  double max_step = 1;
  for (const run_result* r : lines) {
    for (const curve_point& p : r->curve) {
      if (p.consensus_distance > 0 && std::isfinite(p.consensus_distance)) {
        min_distance = std::min(min_distance, p.consensus_distance);
        max_distance = std::max(max_distance, p.consensus_distance);
      }
      max_step = std::max(max_step, static_cast<double>(p.step));
    }
  }
  if (!(max_distance > 0)) {
    min_distance = 1;
    max_distance = 10;
  }
  const int y_lo = static_cast<int>(std::floor(std::log10(min_distance)));
  const int y_hi = std::max(y_lo + 1, static_cast<int>(std::ceil(std::log10(max_distance))));

  const auto sx = [&](double step) { return left + step / max_step * (right - left); };
  const auto sy = [&](double distance) {
    return bottom - (std::log10(distance) - y_lo) / static_cast<double>(y_hi - y_lo) * (bottom - top);
  };

  std::ostringstream svg;
  open_svg(svg, title);
  for (int e = y_lo; e <= y_hi; ++e) {
    const double y = sy(std::pow(10.0, e));
    svg << "<line x1=\"" << left << "\" y1=\"" << number(y) << "\" x2=\"" << right << "\" y2=\"" << number(y)
        << "\" stroke=\"#ddd\"/>\n<text x=\"" << left - 8 << "\" y=\"" << number(y + 4) << "\" text-anchor=\"end\">"
        << power_label(e) << "</text>\n";
  }
  // About 8 step ticks at a round spacing.
  const double raw = max_step / 8;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double spacing = raw / magnitude < 2 ? magnitude : raw / magnitude < 5 ? 2 * magnitude : 5 * magnitude;
  for (double t = 0; t <= max_step + 1e-9; t += spacing) {
    const double x = sx(t);
    svg << "<line x1=\"" << number(x) << "\" y1=\"" << top << "\" x2=\"" << number(x) << "\" y2=\"" << bottom
        << "\" stroke=\"#eee\"/>\n<text x=\"" << number(x) << "\" y=\"" << bottom + 18 << "\" text-anchor=\"middle\">"
        << t << "</text>\n";
  }
  frame_and_labels(svg, "optimizer step (each worker)", "consensus distance (1/W) sum ||x_i - xbar||^2 (log scale)");
  for (std::size_t i = 0; i < lines.size(); ++i) {
    std::vector<std::pair<double, double>> points;
    for (const curve_point& p : lines[i]->curve) {
      if (p.consensus_distance > 0 && std::isfinite(p.consensus_distance)) {
        points.emplace_back(sx(static_cast<double>(p.step)), sy(p.consensus_distance));
      }
    }
    char last[32];
    std::snprintf(last, sizeof last, "%.2g", lines[i]->final_consensus_distance());
    draw_series(svg, i, points, lines[i]->config + " (" + last + ")");
  }
  svg << "</svg>\n";
  write_file(path, svg.str());
}

}  // namespace study
