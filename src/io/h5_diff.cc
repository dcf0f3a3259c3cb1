// h5_diff.cc — recursive byte comparison of two HDF5 files with the HDF5 C API.
#include "io/h5_diff.h"

#include <hdf5.h>

#include <cstring>
#include <map>
#include <set>

#include "core/error.h"

namespace qsweep {

namespace {

const std::set<std::string> kIgnored = {"start_time", "end_time", "hosts", "n_ranks", "threads_per_rank", "backend", "device",
                                        "command_line", "code_version", "qsweep_version", "merged_by"};

struct Object {
  H5O_type_t type;
};

herr_t collect(hid_t, const char* name, const H5O_info_t* info, void* data) {
  auto* m = static_cast<std::map<std::string, Object>*>(data);
  (*m)[name] = {info->type};
  return 0;
}

std::map<std::string, Object> objects(hid_t f) {
  std::map<std::string, Object> m;
  H5Ovisit2(f, H5_INDEX_NAME, H5_ITER_INC, collect, &m, H5O_INFO_BASIC);
  return m;
}

bool ignored_path(const std::string& path) {
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    if (h5_ignored_name(path.substr(start, end - start))) return true;
    start = end + 1;
  }
  return false;
}

// Bytes and a type description of a dataset or attribute, read in its stored type.
struct Blob {
  std::string type_desc;
  std::vector<unsigned char> bytes;
  bool ok = false;
};

std::string describe_type(hid_t t, hid_t space) {
  std::string d = std::to_string(H5Tget_class(t)) + ":" + std::to_string(H5Tget_size(t));
  const int nd = H5Sget_simple_extent_ndims(space);
  std::vector<hsize_t> dims(nd > 0 ? nd : 0);
  if (nd > 0) H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  for (hsize_t x : dims) d += "x" + std::to_string(x);
  return d;
}

Blob read_dataset(hid_t f, const std::string& name) {
  Blob b;
  hid_t d = H5Dopen2(f, name.c_str(), H5P_DEFAULT);
  if (d < 0) return b;
  hid_t t = H5Dget_type(d), s = H5Dget_space(d);
  b.type_desc = describe_type(t, s);
  const hssize_t n = H5Sget_simple_extent_npoints(s);
  b.bytes.resize(static_cast<size_t>(n) * H5Tget_size(t));
  b.ok = n == 0 || H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, b.bytes.data()) >= 0;
  H5Sclose(s);
  H5Tclose(t);
  H5Dclose(d);
  return b;
}

std::map<std::string, Blob> read_attrs(hid_t f, const std::string& obj) {
  std::map<std::string, Blob> out;
  hid_t o = H5Oopen(f, obj.c_str(), H5P_DEFAULT);
  if (o < 0) return out;
  H5O_info_t info;
  H5Oget_info2(o, &info, H5O_INFO_NUM_ATTRS);
  for (hsize_t i = 0; i < info.num_attrs; ++i) {
    hid_t a = H5Aopen_by_idx(o, ".", H5_INDEX_NAME, H5_ITER_INC, i, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0) continue;
    char name[512] = {0};
    H5Aget_name(a, sizeof(name) - 1, name);
    Blob b;
    hid_t t = H5Aget_type(a), s = H5Aget_space(a);
    b.type_desc = describe_type(t, s);
    const hssize_t n = H5Sget_simple_extent_npoints(s);
    b.bytes.resize(static_cast<size_t>(n) * H5Tget_size(t));
    b.ok = H5Aread(a, t, b.bytes.data()) >= 0;
    H5Sclose(s);
    H5Tclose(t);
    H5Aclose(a);
    if (!h5_ignored_name(name)) out[name] = std::move(b);
  }
  H5Oclose(o);
  return out;
}

}  // namespace

bool h5_ignored_name(const std::string& n) {
  return kIgnored.count(n) || n == "timing" || n.find("seconds") != std::string::npos ||
         n.find("per_second") != std::string::npos;
}

std::vector<std::string> h5_diff(const std::string& pa, const std::string& pb, size_t max_report) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  hid_t fa = H5Fopen(pa.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  QS_CHECK(fa >= 0, pa << ": cannot open as an HDF5 file");
  hid_t fb = H5Fopen(pb.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (fb < 0) {
    H5Fclose(fa);
    QS_THROW(pb << ": cannot open as an HDF5 file");
  }
  std::vector<std::string> diffs;
  size_t total = 0;
  auto report = [&](const std::string& s) {
    if (diffs.size() < max_report) diffs.push_back(s);
    ++total;
  };
  auto oa = objects(fa), ob = objects(fb);
  for (const auto& [name, o] : oa) {
    if (name != "." && ignored_path(name)) continue;
    auto it = ob.find(name);
    if (it == ob.end()) {
      report(name + ": only in " + pa);
      continue;
    }
    if (it->second.type != o.type) {
      report(name + ": a group in one file, a dataset in the other");
      continue;
    }
    const std::string obj = name == "." ? "/" : name;
    auto aa = read_attrs(fa, obj), ab = read_attrs(fb, obj);
    for (const auto& [an, ba] : aa) {
      auto jt = ab.find(an);
      if (jt == ab.end())
        report(obj + "@" + an + ": only in " + pa);
      else if (ba.type_desc != jt->second.type_desc || ba.bytes != jt->second.bytes)
        report(obj + "@" + an + ": values differ");
    }
    for (const auto& [an, bb] : ab)
      if (!aa.count(an)) report(obj + "@" + an + ": only in " + pb);
    if (o.type == H5O_TYPE_DATASET) {
      const Blob da = read_dataset(fa, name), db = read_dataset(fb, name);
      if (!da.ok || !db.ok)
        report(name + ": cannot be read");
      else if (da.type_desc != db.type_desc)
        report(name + ": shapes or types differ (" + da.type_desc + " vs " + db.type_desc + ")");
      else if (da.bytes != db.bytes)
        report(name + ": values differ");
    }
  }
  for (const auto& [name, o] : ob)
    if (!oa.count(name) && !(name != "." && ignored_path(name))) report(name + ": only in " + pb);
  H5Fclose(fa);
  H5Fclose(fb);
  if (total > diffs.size()) diffs.push_back("... and " + std::to_string(total - diffs.size()) + " more differences");
  return diffs;
}

}  // namespace qsweep
