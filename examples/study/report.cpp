#include "report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <initializer_list>
#include <ostream>
#include <sstream>
#include <stdexcept>

namespace study {
namespace {

std::string format(const char* spec, double value)
{
  char text[64];
  std::snprintf(text, sizeof text, spec, value);
  return text;
}

std::string ratio_text(const std::optional<double>& r)
{
  if (!r) {
    return "-";
  }
  return *r >= 100 ? format("%.0fx", *r) : format("%.1fx", *r);
}

std::string json_string(const std::string& text)
{
  std::string out = "\"";
  for (const char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += format("\\u%04x", static_cast<double>(static_cast<unsigned char>(c)));
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

/// A double as JSON (null when not finite).
std::string json_number(double v)
{
  if (!std::isfinite(v)) {
    return "null";
  }
  return format("%.9g", v);
}

template <class T>
std::string json_optional(const std::optional<T>& v)
{
  return v ? json_number(static_cast<double>(*v)) : "null";
}

std::string csv_field(const std::string& text)
{
  if (text.find_first_of(",\"\n") == std::string::npos) {
    return text;
  }
  std::string out = "\"";
  for (const char c : text) {
    out += c == '"' ? std::string("\"\"") : std::string(1, c);
  }
  return out + "\"";
}

template <class T>
std::string csv_optional(const std::optional<T>& v)
{
  return v ? format("%.9g", static_cast<double>(*v)) : "";
}

std::ofstream open(const std::string& path)
{
  std::ofstream file(path);
  if (!file) {
    throw std::runtime_error(path + ": cannot be written");
  }
  return file;
}

/// Flushes `files`; throws when any failed to write.
void check_written(std::initializer_list<std::ofstream*> files, const std::string& what)
{
  for (std::ofstream* f : files) {
    f->flush();
    if (!*f) {
      throw std::runtime_error(what + " failed");
    }
  }
}

/// Every run compared within its partition, partitions in the order the runs have them.
std::vector<comparison> compare_by_partition(const std::vector<run_result>& runs,
                                             const std::vector<configuration>& configs)
{
  std::vector<std::string> partitions;
  for (const run_result& r : runs) {
    if (std::find(partitions.begin(), partitions.end(), r.partition) == partitions.end()) {
      partitions.push_back(r.partition);
    }
  }
  std::vector<comparison> rows;
  for (const std::string& p : partitions) {
    const std::vector<comparison> part = compare(runs, configs, p);
    rows.insert(rows.end(), part.begin(), part.end());
  }
  return rows;
}

}  // namespace

std::string human_bytes(double bytes)
{
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  int unit = 0;
  while (bytes >= 1000 && unit < 4) {
    bytes /= 1000;
    ++unit;
  }
  return format(bytes >= 100 || unit == 0 ? "%.0f" : "%.3g", bytes) + " " + units[unit];
}

std::vector<comparison> compare(const std::vector<run_result>& runs, const std::vector<configuration>& configs,
                                const std::string& partition)
{
  const run_result* dense = nullptr;
  for (const run_result& r : runs) {
    if (r.partition == partition && r.config == "dense" && r.failure.empty() && !r.curve.empty()) {
      dense = &r;
    }
  }
  std::optional<double> target;
  std::optional<target_hit> dense_hit;
  if (dense != nullptr) {
    target = dense->final_accuracy() - 0.005;
    dense_hit = first_reaching(*dense, *target);
  }
  std::vector<comparison> rows;
  for (const run_result& r : runs) {
    if (r.partition != partition) {
      continue;
    }
    comparison row;
    row.run = &r;
    row.target = target;
    for (const configuration& c : configs) {
      if (c.name == r.config) {
        row.knobs = c.knobs_text();
      }
    }
    if (dense != nullptr && r.bytes_sent > 0) {
      row.compression = dense->bytes_sent / r.bytes_sent;
    }
    if (target) {
      row.hit = first_reaching(r, *target);
    }
    if (row.hit && dense_hit && row.hit->bytes_sent > 0) {
      row.saving_to_target = dense_hit->bytes_sent / row.hit->bytes_sent;
    }
    rows.push_back(row);
  }
  return rows;
}

void print_table(std::ostream& out, const std::vector<comparison>& rows, const std::string& partition)
{
  out << "\n" << partition << " partition";
  if (!rows.empty() && rows.front().target) {
    out << format(" - target accuracy %.2f%% (dense final - 0.5 points)", *rows.front().target * 100);
  }
  out << "\n";
  char line[512];
  std::snprintf(line, sizeof line, "%-17s %7s %7s %10s %8s %7s %10s %8s %8s %8s %8s %8s %6s %9s\n", "config", "final%",
                "best%", "sent/rank", "vs dense", "steps>T", "sent>T", "saving>T", "comm>T", "compute", "codec",
                "comm@net", "syncs", "consensus");
  out << line;
  for (const comparison& row : rows) {
    const run_result& r = *row.run;
    std::snprintf(line, sizeof line, "%-17s %7.2f %7.2f %10s %8s %7s %10s %8s %8s %7.1fs %7.1fs %7.2fs %6llu %9.3g%s\n",
                  r.config.c_str(), r.final_accuracy() * 100, r.best_accuracy() * 100,
                  human_bytes(r.bytes_sent).c_str(), ratio_text(row.compression).c_str(),
                  row.hit ? std::to_string(row.hit->step).c_str() : "-",
                  row.hit ? human_bytes(row.hit->bytes_sent).c_str() : "-", ratio_text(row.saving_to_target).c_str(),
                  row.hit ? format("%.2fs", row.hit->comm_model_s).c_str() : "-", r.compute_s, r.sync_cpu_s,
                  r.comm_model_s, static_cast<unsigned long long>(r.exchanges), r.final_consensus_distance(),
                  r.failure.empty() ? "" : "  FAILED");
    out << line;
  }
  for (const comparison& row : rows) {
    if (!row.run->failure.empty()) {
      out << "  " << row.run->config << " stopped at step " << row.run->failed_at_step << ": " << row.run->failure
          << "\n";
    }
    if (row.run->left_rank >= 0) {
      out << "  " << row.run->config << ": worker " << row.run->left_rank << " left after step "
          << row.run->left_after_step << "; ";
      if (row.run->agreed_at_round != 0) {
        out << "the survivors mixed on their own graph from round " << row.run->agreed_at_round + 1;
      } else {
        out << "the survivors never agreed on it and mixed around it on the old graph";
      }
      out << " (figures after it are the survivors')\n";
    }
  }
}

bool has_simulated_time(const std::vector<run_result>& runs)
{
  return std::any_of(runs.begin(), runs.end(), [](const run_result& r) {
    return std::any_of(r.curve.begin(), r.curve.end(), [](const curve_point& p) { return p.simulated_s > 0; });
  });
}

void print_simulated_table(std::ostream& out, const std::vector<comparison>& rows, const std::string& partition)
{
  out << "\n" << partition << " partition, simulated cluster (SMPI, declared compute)";
  if (!rows.empty() && rows.front().target) {
    out << format(" - target accuracy %.2f%%", *rows.front().target * 100);
  }
  out << "\n";
  char line[256];
  std::snprintf(line, sizeof line, "%-17s %7s %10s %10s %7s %10s %10s\n", "config", "final%", "sent/rank", "sim total",
                "steps>T", "sent>T", "sim>T");
  out << line;
  for (const comparison& row : rows) {
    const run_result& r = *row.run;
    const double total = r.curve.empty() ? 0.0 : r.curve.back().simulated_s;
    std::snprintf(line, sizeof line, "%-17s %7.2f %10s %9.3fs %7s %10s %10s%s\n", r.config.c_str(),
                  r.final_accuracy() * 100, human_bytes(r.bytes_sent).c_str(), total,
                  row.hit ? std::to_string(row.hit->step).c_str() : "-",
                  row.hit ? human_bytes(row.hit->bytes_sent).c_str() : "-",
                  row.hit ? format("%.3fs", row.hit->simulated_s).c_str() : "-", r.failure.empty() ? "" : "  FAILED");
    out << line;
  }
}

void write_simulated_results(const std::string& dir, const std::vector<run_result>& runs,
                             const std::vector<configuration>& configs)
{
  std::ofstream summary = open(dir + "/time_to_accuracy.csv");
  summary << "partition,config,final_accuracy,bytes_sent_per_rank,simulated_s,target_accuracy,steps_to_target,"
             "bytes_to_target,simulated_s_to_target\n";
  for (const comparison& row : compare_by_partition(runs, configs)) {
    const run_result& r = *row.run;
    summary << r.partition << ',' << csv_field(r.config) << ',' << format("%.6f", r.final_accuracy()) << ','
            << format("%.0f", r.bytes_sent) << ',' << format("%.9g", r.curve.empty() ? 0.0 : r.curve.back().simulated_s)
            << ',' << csv_optional(row.target) << ',' << (row.hit ? std::to_string(row.hit->step) : "") << ','
            << (row.hit ? format("%.0f", row.hit->bytes_sent) : "") << ','
            << (row.hit ? format("%.9g", row.hit->simulated_s) : "") << '\n';
  }
  std::ofstream curves = open(dir + "/simulated_curves.csv");
  curves << "partition,config,step,epoch,bytes_sent_per_rank,accuracy,simulated_s\n";
  for (const run_result& r : runs) {
    for (const curve_point& p : r.curve) {
      curves << r.partition << ',' << csv_field(r.config) << ',' << p.step << ',' << format("%.4f", p.epoch) << ','
             << format("%.0f", p.bytes_sent) << ',' << format("%.6f", p.accuracy) << ','
             << format("%.9g", p.simulated_s) << '\n';
    }
  }
  check_written({&summary, &curves}, dir + ": writing the simulated results");
}

void write_results(const std::string& dir, const study_settings& s, const std::vector<run_result>& runs,
                   const std::vector<configuration>& configs)
{
  const std::vector<comparison> rows = compare_by_partition(runs, configs);

  std::ofstream csv = open(dir + "/results.csv");
  csv << "partition,config,knobs,steps,exchanges,final_accuracy,best_accuracy,bytes_sent_per_rank,"
         "bytes_received_per_rank,compression_vs_dense,target_accuracy,steps_to_target,bytes_to_target,"
         "saving_vs_dense_to_target,comm_model_s,comm_model_s_to_target,compute_s,sync_cpu_s,wall_s,failure,"
         "decentralized,final_consensus_distance\n";
  for (const comparison& row : rows) {
    const run_result& r = *row.run;
    csv << r.partition << ',' << csv_field(r.config) << ',' << csv_field(row.knobs) << ',' << r.steps << ','
        << r.exchanges << ',' << format("%.6f", r.final_accuracy()) << ',' << format("%.6f", r.best_accuracy()) << ','
        << format("%.0f", r.bytes_sent) << ',' << format("%.0f", r.bytes_received) << ','
        << csv_optional(row.compression) << ',' << csv_optional(row.target) << ','
        << (row.hit ? std::to_string(row.hit->step) : "") << ',' << (row.hit ? format("%.0f", row.hit->bytes_sent) : "")
        << ',' << csv_optional(row.saving_to_target) << ',' << format("%.6f", r.comm_model_s) << ','
        << (row.hit ? format("%.6f", row.hit->comm_model_s) : "") << ',' << format("%.3f", r.compute_s) << ','
        << format("%.3f", r.sync_cpu_s) << ',' << format("%.3f", r.wall_s) << ',' << csv_field(r.failure) << ','
        << (r.decentralized ? 1 : 0) << ',' << format("%.9e", r.final_consensus_distance()) << '\n';
  }

  std::ofstream curves = open(dir + "/curves.csv");
  // compute_s stays last: the one measured (not reproducible) column.
  curves << "partition,config,step,epoch,bytes_sent_per_rank,accuracy,test_loss,train_loss,comm_model_s,"
            "consensus_distance,compute_s\n";
  for (const run_result& r : runs) {
    for (const curve_point& p : r.curve) {
      curves << r.partition << ',' << csv_field(r.config) << ',' << p.step << ',' << format("%.4f", p.epoch) << ','
             << format("%.0f", p.bytes_sent) << ',' << format("%.6f", p.accuracy) << ',' << format("%.6f", p.test_loss)
             << ',' << format("%.6f", p.train_loss) << ',' << format("%.6f", p.comm_model_s) << ','
             << format("%.9g", p.consensus_distance) << ',' << format("%.4f", p.compute_s) << '\n';
    }
  }

  std::ofstream json = open(dir + "/results.json");
  json << "{\n  \"settings\": {\"command\": " << json_string(s.command) << ", \"model\": " << json_string(s.model)
       << ", \"parameters\": " << s.parameters << ", \"workers\": " << s.workers
       << ", \"batch_per_worker\": " << s.batch << ", \"steps\": " << s.steps
       << ", \"epochs\": " << json_number(s.epochs) << ", \"eval_every\": " << s.eval_every << ", \"seed\": " << s.seed
       << ", \"gbps\": " << json_number(s.gbps) << ", \"latency_us\": " << json_number(s.latency_us)
       << ", \"dirichlet_alpha\": " << json_number(s.alpha) << ", \"train_examples\": " << s.train_examples
       << ", \"test_examples\": " << s.test_examples << ", \"evaluated_on\": " << json_string(s.evaluated_on)
       << ", \"study_wall_s\": " << json_number(s.study_wall_s) << "},\n  \"runs\": [";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const comparison& row = rows[i];
    const run_result& r = *row.run;
    json << (i == 0 ? "\n" : ",\n") << "    {\"partition\": " << json_string(r.partition)
         << ", \"config\": " << json_string(r.config) << ", \"description\": " << json_string(r.description)
         << ", \"knobs\": " << json_string(row.knobs) << ", \"steps\": " << r.steps
         << ", \"exchanges\": " << r.exchanges << ", \"final_accuracy\": " << json_number(r.final_accuracy())
         << ", \"best_accuracy\": " << json_number(r.best_accuracy())
         << ", \"bytes_sent_per_rank\": " << json_number(r.bytes_sent)
         << ", \"bytes_received_per_rank\": " << json_number(r.bytes_received)
         << ", \"compression_vs_dense\": " << json_optional(row.compression)
         << ", \"target_accuracy\": " << json_optional(row.target)
         << ", \"decentralized\": " << (r.decentralized ? "true" : "false")
         << ", \"steps_to_target\": " << (row.hit ? std::to_string(row.hit->step) : "null")
         << ", \"bytes_to_target\": " << (row.hit ? json_number(row.hit->bytes_sent) : "null")
         << ", \"comm_model_s_to_target\": " << (row.hit ? json_number(row.hit->comm_model_s) : "null")
         << ", \"saving_vs_dense_to_target\": " << json_optional(row.saving_to_target)
         << ", \"comm_model_s\": " << json_number(r.comm_model_s) << ", \"compute_s\": " << json_number(r.compute_s)
         << ", \"sync_cpu_s\": " << json_number(r.sync_cpu_s) << ", \"wall_s\": " << json_number(r.wall_s)
         << ", \"failure\": " << (r.failure.empty() ? "null" : json_string(r.failure)) << ",\n     \"curve\": [";
    for (std::size_t j = 0; j < r.curve.size(); ++j) {
      const curve_point& p = r.curve[j];
      json << (j == 0 ? "" : ", ") << "{\"step\": " << p.step << ", \"bytes_sent\": " << json_number(p.bytes_sent)
           << ", \"accuracy\": " << json_number(p.accuracy) << ", \"test_loss\": " << json_number(p.test_loss)
           << ", \"train_loss\": " << json_number(p.train_loss) << ", \"comm_model_s\": " << json_number(p.comm_model_s)
           << ", \"consensus_distance\": " << json_number(p.consensus_distance) << "}";
    }
    json << "]}";
  }
  json << "\n  ]\n}\n";
  check_written({&csv, &curves, &json}, dir + ": writing the results");
}

}  // namespace study
