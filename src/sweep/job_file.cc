// job_file.cc — parsing job files with Boost.Program_options' config-file parser (sections,
// '#' comments), comma axes, --set overrides and the grid's Cartesian product.
#include "sweep/job_file.h"

#include <boost/program_options.hpp>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace qsweep {

namespace po = boost::program_options;

namespace {
std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

void split_values(JobEntry& e, const std::string& file) {
  e.values.clear();
  if (!is_grid_section(e.section)) {
    e.values.push_back(e.raw);
    return;
  }
  std::stringstream ss(e.raw);
  std::string v;
  while (std::getline(ss, v, ',')) {
    v = trim(v);
    QS_CHECK(!v.empty(), file << ": " << e.where() << " = " << e.raw
                              << ": empty value in the list (a grid axis is 'a, b, c')");
    e.values.push_back(v);
  }
  if (!e.raw.empty() && e.raw.back() == ',')
    QS_THROW(file << ": " << e.where() << " = " << e.raw << ": trailing comma");
  if (e.values.empty()) e.values.push_back("");
}
}  // namespace

std::string JobEntry::where() const { return section.empty() ? key : "[" + section + "] " + key; }

bool is_grid_section(const std::string& s) {
  return s == "quantize" || s == "eval" || s == "allocate" || s.rfind("allocate.", 0) == 0 || s.rfind("quantize.", 0) == 0;
}

const JobEntry* JobFile::find(const std::string& section, const std::string& key) const {
  for (const auto& e : entries)
    if (e.section == section && e.key == key) return &e;
  return nullptr;
}

std::vector<const JobEntry*> JobFile::section(const std::string& name) const {
  std::vector<const JobEntry*> out;
  for (const auto& e : entries)
    if (e.section == name) out.push_back(&e);
  return out;
}

std::vector<std::string> JobFile::sections() const {
  std::vector<std::string> out;
  for (const auto& e : entries) {
    if (e.section.empty()) continue;
    bool seen = false;
    for (const auto& s : out) seen |= s == e.section;
    if (!seen) out.push_back(e.section);
  }
  return out;
}

std::string JobFile::resolve(const std::string& p) const {
  if (p.empty()) return p;
  const std::string full = p[0] == '/' || dir.empty() ? p : dir + "/" + p;
  // Lexical clean-up ("jobs/../demo/x" -> "demo/x"); symbolic links are not followed.
  std::vector<std::string> parts;
  std::stringstream ss(full);
  for (std::string seg; std::getline(ss, seg, '/');) {
    if (seg.empty() || seg == ".") continue;
    if (seg == ".." && !parts.empty() && parts.back() != "..") {
      parts.pop_back();
    } else if (seg != ".." || full[0] != '/') {
      parts.push_back(seg);
    }
  }
  std::string out = full[0] == '/' ? "/" : "";
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? "/" : "") + parts[i];
  return out.empty() ? "." : out;
}

JobFile read_job_file(const std::string& path) {
  std::ifstream in(path);
  QS_CHECK(in, path << ": cannot open the job file");
  std::stringstream buf;
  buf << in.rdbuf();
  JobFile job;
  job.path = path;
  job.text = buf.str();
  const auto slash = path.find_last_of('/');
  job.dir = slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
  std::istringstream is(job.text);
  po::options_description none;
  po::parsed_options parsed(&none);
  try {
    parsed = po::parse_config_file(is, none, /*allow_unregistered=*/true);
  } catch (const po::invalid_config_file_syntax& e) {
    // Not e.what(): Boost's placeholder substitution loops forever on a line holding "%invalid_line%".
    QS_THROW(path << ": invalid line '" << e.tokens() << "' (expected 'key = value' lines and [section] headers)");
  } catch (const po::error& e) {
    QS_THROW(path << ": " << e.what() << " (expected 'key = value' lines and [section] headers)");
  }
  for (const auto& o : parsed.options) {
    JobEntry e;
    const auto dot = o.string_key.rfind('.');  // [allocate.A] key -> section "allocate.A"
    if (dot == std::string::npos) {
      e.key = o.string_key;
    } else {
      e.section = o.string_key.substr(0, dot);
      e.key = o.string_key.substr(dot + 1);
    }
    e.raw = trim(o.value.empty() ? std::string() : o.value.front());
    QS_CHECK(!job.find(e.section, e.key), path << ": " << e.where() << " is set twice");
    split_values(e, path);
    job.entries.push_back(std::move(e));
  }
  return job;
}

void apply_set(JobFile& job, const std::string& assignment) {
  const auto eq = assignment.find('=');
  QS_CHECK(eq != std::string::npos && eq > 0,
           "--set '" << assignment << "': expected section.key=value (e.g. quantize.bits=2,3) or key=value");
  const std::string lhs = trim(assignment.substr(0, eq));
  JobEntry e;
  const auto dot = lhs.rfind('.');
  if (dot == std::string::npos) {
    e.key = lhs;
  } else {
    e.section = lhs.substr(0, dot);
    e.key = lhs.substr(dot + 1);
  }
  QS_CHECK(!e.key.empty(), "--set '" << assignment << "': empty key");
  e.raw = trim(assignment.substr(eq + 1));
  e.from_set = true;
  split_values(e, "--set");
  for (auto& old : job.entries)
    if (old.section == e.section && old.key == e.key) {
      old = e;
      return;
    }
  job.entries.push_back(std::move(e));
}

std::vector<Axis> grid_axes(const JobFile& job) {
  std::vector<Axis> axes;
  for (const auto& e : job.entries)
    if (e.values.size() > 1) axes.push_back({e.section, e.key, e.values});
  return axes;
}

std::vector<std::vector<int>> grid_points(const std::vector<Axis>& axes) {
  std::vector<std::vector<int>> out{{}};
  for (const auto& a : axes) {
    std::vector<std::vector<int>> next;
    for (const auto& p : out)
      for (int i = 0; i < static_cast<int>(a.values.size()); ++i) {
        next.push_back(p);
        next.back().push_back(i);
      }
    out.swap(next);
  }
  return out;
}

}  // namespace qsweep
