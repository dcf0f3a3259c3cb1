// sweep_dir.cc — manifest I/O and cell states.
#include "sweep/sweep_dir.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "core/json_file.h"
#include "io/h5_reader.h"

namespace qsweep {

using nlohmann::json;

Manifest manifest_of(const SweepPlan& plan) {
  Manifest m;
  m.job_path = plan.job.path;
  m.job_text = plan.job.text;
  m.model = plan.model;
  m.calib = plan.calib;
  m.eval_data = plan.eval_data;
  m.tasks = plan.tasks;
  m.tasks_format = plan.tasks.empty() ? "" : plan.tasks_format;
  for (const auto& a : plan.axes) m.axes.push_back(a.section + "." + a.key);
  for (const auto& c : plan.cells) m.cells.push_back({c.index, c.id, c.label, c.baseline, c.params});
  m.spectrum = plan.spectrum;
  m.calibrate = plan.calibrate;
  for (const auto& b : plan.baselines) m.baselines.push_back(b.key);
  return m;
}

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

void write_text_atomic(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp);
    QS_CHECK(out, tmp << ": cannot write (is the directory writable?)");
    out << text;
    out.flush();
    QS_CHECK(out, tmp << ": write failed");
  }
  QS_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, path << ": cannot rename into place: " << std::strerror(errno));
}

void write_manifest(const std::string& dir, const Manifest& m) {
  json j;
  j["format"] = "qsweep-sweep-manifest";
  j["format_version"] = 1;
  j["job_path"] = m.job_path;
  j["job_text"] = m.job_text;
  j["model"] = m.model;
  j["calib"] = m.calib;
  j["eval"] = m.eval_data;
  j["tasks"] = m.tasks;
  j["tasks_format"] = m.tasks_format;
  j["axes"] = m.axes;
  j["spectrum"] = m.spectrum;
  j["calibrate"] = m.calibrate;
  j["baselines"] = m.baselines;
  j["cells"] = json::array();
  for (const auto& c : m.cells) {
    json p = json::array();
    for (const auto& [k, v] : c.params) p.push_back({k, v});
    j["cells"].push_back({{"index", c.index}, {"id", c.id}, {"label", c.label}, {"baseline", c.baseline}, {"params", p}});
  }
  write_text_atomic(dir + "/sweep.json", j.dump(1) + "\n");
}

bool has_manifest(const std::string& dir) { return file_exists(dir + "/sweep.json"); }

Manifest read_manifest(const std::string& dir) {
  const std::string path = dir + "/sweep.json";
  QS_CHECK(file_exists(path), dir << ": not a qsweep sweep directory (no sweep.json)");
  const json j = read_json_file(path, "the sweep manifest");
  Manifest m;
  try {
    QS_CHECK(j.at("format") == "qsweep-sweep-manifest", path << ": not a qsweep sweep manifest");
    m.job_path = j.at("job_path");
    m.job_text = j.at("job_text");
    m.model = j.at("model");
    m.calib = j.at("calib");
    m.eval_data = j.at("eval");
    m.tasks = j.value("tasks", "");  // absent from sweeps made before task files
    m.tasks_format = j.value("tasks_format", "");
    m.axes = j.at("axes").get<std::vector<std::string>>();
    m.spectrum = j.at("spectrum");
    m.calibrate = j.at("calibrate");
    m.baselines = j.at("baselines").get<std::vector<std::string>>();
    for (const auto& c : j.at("cells")) {
      ManifestCell mc;
      mc.index = c.at("index");
      mc.id = c.at("id");
      mc.label = c.at("label");
      mc.baseline = c.at("baseline");
      for (const auto& p : c.at("params")) mc.params.push_back({p.at(0), p.at(1)});
      m.cells.push_back(std::move(mc));
    }
  } catch (const json::exception& e) {
    QS_THROW(path << ": malformed manifest: " << e.what());
  }
  return m;
}

std::string cell_dir(const std::string& dir, const std::string& id) { return dir + "/cells/" + id; }
std::string baseline_dir(const std::string& dir, const std::string& key) { return dir + "/shared/baseline-" + key; }

const char* cell_state_name(CellState s) {
  switch (s) {
    case CellState::Pending: return "pending";
    case CellState::Running: return "running";
    case CellState::Interrupted: return "interrupted";
    case CellState::Complete: return "done";
    case CellState::Failed: return "failed";
  }
  return "?";
}

namespace {
// A live process (not a zombie nobody has reaped yet, as happens in containers).
bool process_alive(int pid) {
  if (::kill(pid, 0) != 0 && errno == ESRCH) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return true;  // no /proc: trust kill()
  const auto close = line.rfind(')');
  return !(close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z');
}
}  // namespace

CellStatus read_cell_status(const std::string& dir, const std::string& id) {
  CellStatus st;
  const std::string cd = cell_dir(dir, id);
  if (file_exists(cd + "/cell.h5")) {
    st.state = CellState::Complete;
    H5Reader r(cd + "/cell.h5");
    if (r.has_attr("/", "seconds")) st.seconds = r.attr_double("/", "seconds");
    if (r.has_attr("/", "perplexity")) {
      st.perplexity = r.attr_double("/", "perplexity");
      st.has_perplexity = std::isfinite(st.perplexity);  // NaN: a cell without evaluation
    }
    return st;
  }
  if (file_exists(cd + "/failed.json")) {
    st.state = CellState::Failed;
    try {
      st.error = read_json_file(cd + "/failed.json", "a failed cell's record").at("error");
    } catch (const std::exception& e) {
      st.error = std::string("(unreadable failed.json: ") + e.what() + ")";
    }
    return st;
  }
  if (file_exists(cd + "/started")) {
    st.state = CellState::Running;
    try {
      const json j = read_json_file(cd + "/started", "a running cell's record");
      st.host = j.at("host");
      st.since = j.at("time");
      char host[256] = {0};
      ::gethostname(host, sizeof(host) - 1);
      const int pid = j.at("pid");
      if (st.host == host && !process_alive(pid)) st.state = CellState::Interrupted;
    } catch (const std::exception&) {
    }
  }
  return st;
}

namespace {
std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return names;
  while (dirent* e = ::readdir(d)) {
    const std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  ::closedir(d);
  return names;
}
}  // namespace

int remove_stale_temporaries(const std::string& dir) {
  int n = 0;
  std::vector<std::string> dirs = {dir, dir + "/shared"};
  for (const auto& e : entries(dir + "/shared")) dirs.push_back(dir + "/shared/" + e);
  for (const auto& d : dirs)
    for (const auto& e : entries(d))
      if (e.find(".tmp.") != std::string::npos && std::remove((d + "/" + e).c_str()) == 0) ++n;
  return n;
}

void clear_cell_dir(const std::string& cd) {
  for (const auto& n : entries(cd)) std::remove((cd + "/" + n).c_str());
}

}  // namespace qsweep
