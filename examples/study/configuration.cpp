#include "configuration.hpp"

#include <cmath>
#include <cstdlib>
#include <numbers>
#include <sstream>
#include <stdexcept>

namespace study {

double run_context::lr_at(double lr, std::uint64_t step) const
{
  if (!cosine_lr || steps == 0) {
    return lr;
  }
  return lr * 0.5 * (1.0 + std::cos(std::numbers::pi * static_cast<double>(step) / static_cast<double>(steps)));
}

double configuration::knob(std::string_view key) const
{
  for (const auto& [k, v] : knobs) {
    if (k == key) {
      return v;
    }
  }
  throw std::invalid_argument("configuration " + name + " has no knob '" + std::string(key) + "'");
}

bool configuration::has_knob(std::string_view key) const
{
  for (const auto& entry : knobs) {
    if (entry.first == key) {
      return true;
    }
  }
  return false;
}

void configuration::set_knob(std::string_view key, double value)
{
  for (auto& [k, v] : knobs) {
    if (k == key) {
      v = value;
      return;
    }
  }
  throw std::invalid_argument("configuration " + name + " has no knob '" + std::string(key) + "'");
}

std::string configuration::knobs_text() const
{
  std::ostringstream text;
  for (std::size_t i = 0; i < knobs.size(); ++i) {
    text << (i == 0 ? "" : " ") << knobs[i].first << '=' << knobs[i].second;
  }
  return text.str();
}

std::vector<configuration> all_configurations()
{
  std::vector<configuration> list;
  add_gradient_configurations(list);
  add_model_configurations(list);
  add_schedule_configurations(list);
  add_gossip_configurations(list);
  return list;
}

void apply_overrides(std::vector<configuration>& list, const std::vector<std::string>& overrides)
{
  for (const std::string& text : overrides) {
    const std::size_t dot = text.find('.');
    const std::size_t eq = text.find('=', dot);
    if (dot == std::string::npos || eq == std::string::npos || dot == 0 || eq == dot + 1) {
      throw std::invalid_argument("--set: expected CONFIG.KEY=VALUE, got '" + text + "'");
    }
    const std::string who = text.substr(0, dot);
    const std::string key = text.substr(dot + 1, eq - dot - 1);
    const std::string number = text.substr(eq + 1);
    char* end = nullptr;
    const double value = std::strtod(number.c_str(), &end);
    if (number.empty() || end != number.c_str() + number.size() || !std::isfinite(value)) {
      throw std::invalid_argument("--set " + text + ": '" + number + "' is not a number");
    }
    bool applied = false;
    for (configuration& c : list) {
      if (who == "*" ? c.has_knob(key) : c.name == who) {
        c.set_knob(key, value);  // throws for an unknown knob of a named configuration
        applied = true;
      }
    }
    if (!applied) {
      throw std::invalid_argument("--set " + text + ": no configuration " +
                                  (who == "*" ? "has a knob '" + key + "'" : "is named '" + who + "' (see --list)"));
    }
  }
}

std::vector<configuration> select(const std::vector<configuration>& list, const std::vector<std::string>& names)
{
  if (names.empty()) {
    return list;
  }
  std::vector<configuration> chosen;
  for (const std::string& name : names) {
    bool found = false;
    for (const configuration& c : list) {
      if (c.name == name) {
        chosen.push_back(c);
        found = true;
      }
    }
    if (!found) {
      throw std::invalid_argument("--configs: unknown configuration '" + name + "' (see --list)");
    }
  }
  return chosen;
}

}  // namespace study
