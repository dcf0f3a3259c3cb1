// h5_reader.h — reading back qsweep's own HDF5 files (attributes and 1-D datasets), with errors
// that name the file and the object when something expected is missing or of the wrong size.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace qsweep {

class H5Reader {
 public:
  explicit H5Reader(const std::string& path);
  ~H5Reader();
  H5Reader(const H5Reader&) = delete;
  H5Reader& operator=(const H5Reader&) = delete;

  const std::string& path() const { return path_; }
  bool exists(const std::string& obj) const;
  bool has_attr(const std::string& obj, const std::string& name) const;
  // The names of a group's members (links), in name order; empty when the group does not exist.
  std::vector<std::string> children(const std::string& group) const;
  std::string attr_string(const std::string& obj, const std::string& name) const;
  double attr_double(const std::string& obj, const std::string& name) const;
  int64_t attr_int(const std::string& obj, const std::string& name) const;
  std::vector<double> read_double(const std::string& path) const;
  std::vector<float> read_float(const std::string& path) const;
  std::vector<uint8_t> read_uint8(const std::string& path) const;
  std::vector<int32_t> read_int32(const std::string& path) const;
  // A 1-D dataset of fixed-length strings (as H5Writer writes them; NUL padding removed).
  std::vector<std::string> read_strings(const std::string& path) const;

 private:
  template <typename T>
  std::vector<T> read(const std::string& path, int64_t type) const;
  std::string path_;
  int64_t file_ = -1;
};

}  // namespace qsweep
