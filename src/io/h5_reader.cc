// h5_reader.cc — HDF5 C API reads.
#include "io/h5_reader.h"

#include <hdf5.h>

#include "core/error.h"

namespace qsweep {

H5Reader::H5Reader(const std::string& path) : path_(path) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  file_ = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  QS_CHECK(file_ >= 0, path << ": cannot open as HDF5 (missing, or not written by qsweep?)");
}

H5Reader::~H5Reader() {
  if (file_ >= 0) H5Fclose(file_);
}

bool H5Reader::exists(const std::string& obj) const {
  if (obj == "/") return true;
  // Check each path component, as H5Lexists requires.
  size_t pos = 0;
  while ((pos = obj.find('/', pos + 1)) != std::string::npos)
    if (H5Lexists(file_, obj.substr(0, pos).c_str(), H5P_DEFAULT) <= 0) return false;
  return H5Lexists(file_, obj.c_str(), H5P_DEFAULT) > 0;
}

namespace {
herr_t collect_link(hid_t, const char* name, const H5L_info_t*, void* out) {
  static_cast<std::vector<std::string>*>(out)->push_back(name);
  return 0;
}
}  // namespace

std::vector<std::string> H5Reader::read_strings(const std::string& path) const {
  QS_CHECK(exists(path), path_ << ": missing dataset " << path);
  hid_t d = H5Dopen2(file_, path.c_str(), H5P_DEFAULT);
  QS_CHECK(d >= 0, path_ << ": cannot open dataset " << path);
  hid_t t = H5Dget_type(d);
  hid_t space = H5Dget_space(d);
  const bool ok = H5Tget_class(t) == H5T_STRING && !H5Tis_variable_str(t) && H5Sget_simple_extent_ndims(space) == 1;
  hsize_t n = 0;
  if (ok) H5Sget_simple_extent_dims(space, &n, nullptr);
  const size_t len = ok ? H5Tget_size(t) : 0;
  std::vector<char> buf(static_cast<size_t>(n) * len + 1, '\0');
  const herr_t rc = ok && n > 0 ? H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()) : 0;
  H5Sclose(space);
  H5Tclose(t);
  H5Dclose(d);
  QS_CHECK(ok && rc >= 0, path_ << ": " << path << " is not a 1-D dataset of fixed-length strings");
  std::vector<std::string> out;
  for (hsize_t i = 0; i < n; ++i) {
    const char* p = buf.data() + i * len;
    size_t k = 0;
    while (k < len && p[k]) ++k;
    out.emplace_back(p, k);
  }
  return out;
}

std::vector<std::string> H5Reader::children(const std::string& group) const {
  std::vector<std::string> names;
  if (!exists(group)) return names;
  hid_t g = H5Gopen2(file_, group.c_str(), H5P_DEFAULT);
  QS_CHECK(g >= 0, path_ << ": cannot open group " << group);
  hsize_t idx = 0;
  H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_link, &names);
  H5Gclose(g);
  return names;
}

bool H5Reader::has_attr(const std::string& obj, const std::string& name) const {
  return exists(obj) && H5Aexists_by_name(file_, obj.c_str(), name.c_str(), H5P_DEFAULT) > 0;
}

std::string H5Reader::attr_string(const std::string& obj, const std::string& name) const {
  QS_CHECK(has_attr(obj, name), path_ << ": missing attribute " << obj << "@" << name);
  hid_t a = H5Aopen_by_name(file_, obj.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT);
  hid_t t = H5Aget_type(a);
  std::string out;
  if (H5Tget_class(t) == H5T_STRING && !H5Tis_variable_str(t)) {
    const size_t n = H5Tget_size(t);
    std::string buf(n, '\0');
    H5Aread(a, t, &buf[0]);
    out = buf.substr(0, buf.find('\0'));
  }
  H5Tclose(t);
  H5Aclose(a);
  return out;
}

double H5Reader::attr_double(const std::string& obj, const std::string& name) const {
  QS_CHECK(has_attr(obj, name), path_ << ": missing attribute " << obj << "@" << name);
  hid_t a = H5Aopen_by_name(file_, obj.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT);
  double v = 0;
  H5Aread(a, H5T_NATIVE_DOUBLE, &v);
  H5Aclose(a);
  return v;
}

int64_t H5Reader::attr_int(const std::string& obj, const std::string& name) const {
  QS_CHECK(has_attr(obj, name), path_ << ": missing attribute " << obj << "@" << name);
  hid_t a = H5Aopen_by_name(file_, obj.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT);
  int64_t v = 0;
  H5Aread(a, H5T_NATIVE_INT64, &v);
  H5Aclose(a);
  return v;
}

template <typename T>
std::vector<T> H5Reader::read(const std::string& path, int64_t type) const {
  QS_CHECK(exists(path), path_ << ": missing dataset " << path);
  hid_t d = H5Dopen2(file_, path.c_str(), H5P_DEFAULT);
  hid_t sp = H5Dget_space(d);
  const hssize_t n = H5Sget_simple_extent_npoints(sp);
  std::vector<T> v(static_cast<size_t>(n));
  const herr_t st = n > 0 ? H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) : 0;
  H5Sclose(sp);
  H5Dclose(d);
  QS_CHECK(st >= 0, path_ << ": cannot read dataset " << path);
  return v;
}

std::vector<double> H5Reader::read_double(const std::string& p) const { return read<double>(p, H5T_NATIVE_DOUBLE); }
std::vector<float> H5Reader::read_float(const std::string& p) const { return read<float>(p, H5T_NATIVE_FLOAT); }
std::vector<uint8_t> H5Reader::read_uint8(const std::string& p) const { return read<uint8_t>(p, H5T_NATIVE_UINT8); }
std::vector<int32_t> H5Reader::read_int32(const std::string& p) const { return read<int32_t>(p, H5T_NATIVE_INT32); }

}  // namespace qsweep
