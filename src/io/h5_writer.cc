// h5_writer.cc — HDF5 C API wrapper; every failure throws with the file path.
#include "io/h5_writer.h"

#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "core/error.h"

namespace qsweep {

namespace {
hid_t dcpl_no_times() {
  hid_t p = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_obj_track_times(p, false);
  return p;
}
}  // namespace

H5Writer::H5Writer(const std::string& path)
    : path_(path), tmp_(path + ".tmp." + std::to_string(::getpid())) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // errors are reported by us, with context
  hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
  H5Pset_obj_track_times(fcpl, false);
  file_ = H5Fcreate(tmp_.c_str(), H5F_ACC_TRUNC, fcpl, H5P_DEFAULT);
  H5Pclose(fcpl);
  QS_CHECK(file_ >= 0, tmp_ << ": cannot create HDF5 file (is the output directory writable?)");
}

H5Writer::~H5Writer() {
  if (file_ >= 0) H5Fclose(file_);
  if (!committed_) std::remove(tmp_.c_str());
}

void H5Writer::group(const std::string& path) {
  hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
  H5Pset_obj_track_times(gcpl, false);
  hid_t g = H5Gcreate2(file_, path.c_str(), H5P_DEFAULT, gcpl, H5P_DEFAULT);
  H5Pclose(gcpl);
  QS_CHECK(g >= 0, path_ << ": cannot create group " << path);
  H5Gclose(g);
}

namespace {
void write_attr(hid_t file, const std::string& fpath, const std::string& obj,
                const std::string& name, hid_t type, const void* data) {
  hid_t o = H5Oopen(file, obj.c_str(), H5P_DEFAULT);
  QS_CHECK(o >= 0, fpath << ": no object " << obj);
  hid_t space = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(o, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT);
  const bool ok = a >= 0 && H5Awrite(a, type, data) >= 0;
  if (a >= 0) H5Aclose(a);
  H5Sclose(space);
  H5Oclose(o);
  QS_CHECK(ok, fpath << ": cannot write attribute " << obj << "@" << name);
}

template <typename T>
void write_1d(hid_t file, const std::string& fpath, const std::string& path, hid_t type,
              const std::vector<T>& v) {
  hsize_t n = v.size();
  hid_t space = H5Screate_simple(1, &n, nullptr);
  hid_t dcpl = dcpl_no_times();
  hid_t d = H5Dcreate2(file, path.c_str(), type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  const bool ok = d >= 0 && (n == 0 || H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) >= 0);
  if (d >= 0) H5Dclose(d);
  H5Pclose(dcpl);
  H5Sclose(space);
  QS_CHECK(ok, fpath << ": cannot write dataset " << path);
}
}  // namespace

void H5Writer::attr(const std::string& obj, const std::string& name, const std::string& value) {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, value.empty() ? 1 : value.size());
  H5Tset_cset(t, H5T_CSET_UTF8);
  H5Tset_strpad(t, H5T_STR_NULLPAD);
  try {
    write_attr(file_, path_, obj, name, t, value.empty() ? "" : value.data());
  } catch (...) {
    H5Tclose(t);
    throw;
  }
  H5Tclose(t);
}

void H5Writer::attr(const std::string& obj, const std::string& name, double value) {
  write_attr(file_, path_, obj, name, H5T_NATIVE_DOUBLE, &value);
}

void H5Writer::attr(const std::string& obj, const std::string& name, int64_t value) {
  write_attr(file_, path_, obj, name, H5T_NATIVE_INT64, &value);
}

void H5Writer::dataset(const std::string& path, const std::vector<double>& v) {
  write_1d(file_, path_, path, H5T_NATIVE_DOUBLE, v);
}
void H5Writer::dataset(const std::string& path, const std::vector<int64_t>& v) {
  write_1d(file_, path_, path, H5T_NATIVE_INT64, v);
}
void H5Writer::dataset(const std::string& path, const std::vector<float>& v) {
  write_1d(file_, path_, path, H5T_NATIVE_FLOAT, v);
}
void H5Writer::dataset(const std::string& path, const std::vector<uint8_t>& v) {
  write_1d(file_, path_, path, H5T_NATIVE_UINT8, v);
}
void H5Writer::dataset(const std::string& path, const std::vector<int32_t>& v) {
  write_1d(file_, path_, path, H5T_NATIVE_INT32, v);
}

void H5Writer::dataset(const std::string& path, const std::vector<std::string>& v) {
  size_t len = 1;
  for (const auto& x : v) len = std::max(len, x.size());
  std::vector<char> buf(v.size() * len, '\0');
  for (size_t i = 0; i < v.size(); ++i) std::copy(v[i].begin(), v[i].end(), buf.begin() + i * len);
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, len);
  H5Tset_cset(t, H5T_CSET_UTF8);
  H5Tset_strpad(t, H5T_STR_NULLPAD);
  hsize_t n = v.size();
  hid_t space = H5Screate_simple(1, &n, nullptr);
  hid_t dcpl = dcpl_no_times();
  hid_t d = H5Dcreate2(file_, path.c_str(), t, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  const bool ok = d >= 0 && (n == 0 || H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()) >= 0);
  if (d >= 0) H5Dclose(d);
  H5Pclose(dcpl);
  H5Sclose(space);
  H5Tclose(t);
  QS_CHECK(ok, path_ << ": cannot write dataset " << path);
}

void H5Writer::copy_file(const std::string& src_path, const std::string& dst) {
  hid_t src = H5Fopen(src_path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  QS_CHECK(src >= 0, src_path << ": cannot open HDF5 file to copy it into " << path_);
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  const herr_t st = H5Ocopy(src, "/", file_, dst.c_str(), H5P_DEFAULT, lcpl);
  H5Pclose(lcpl);
  H5Fclose(src);
  QS_CHECK(st >= 0, path_ << ": cannot copy " << src_path << " into " << dst);
}

void H5Writer::commit() {
  QS_CHECK(H5Fclose(file_) >= 0, tmp_ << ": cannot close HDF5 file");
  file_ = -1;
  QS_CHECK(std::rename(tmp_.c_str(), path_.c_str()) == 0,
           path_ << ": cannot rename " << tmp_ << " into place");
  committed_ = true;
}

}  // namespace qsweep
