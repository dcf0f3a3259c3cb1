// h5_writer.h — writing a small, self-describing HDF5 result file (attributes, groups, 1-D
// datasets) atomically: everything goes to "<path>.tmp.<pid>" and commit() renames it into
// place, so a crash or an error never leaves a file that could be mistaken for a result.
// Object timestamps are off, so identical results give identical bytes of data.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace qsweep {

class H5Writer {
 public:
  explicit H5Writer(const std::string& path);
  ~H5Writer();  // removes the temporary file unless committed
  H5Writer(const H5Writer&) = delete;
  H5Writer& operator=(const H5Writer&) = delete;

  void group(const std::string& path);
  // Attributes on the object at `obj` ("/" for the file).
  void attr(const std::string& obj, const std::string& name, const std::string& value);
  void attr(const std::string& obj, const std::string& name, double value);
  void attr(const std::string& obj, const std::string& name, int64_t value);
  void dataset(const std::string& path, const std::vector<double>& v);
  void dataset(const std::string& path, const std::vector<int64_t>& v);
  void dataset(const std::string& path, const std::vector<int32_t>& v);
  void dataset(const std::string& path, const std::vector<float>& v);
  void dataset(const std::string& path, const std::vector<uint8_t>& v);
  // Fixed-length UTF-8 strings (padded to the longest), readable by h5py as bytes.
  void dataset(const std::string& path, const std::vector<std::string>& v);
  // Copies the whole content of another HDF5 file (its root group: attributes, groups,
  // datasets) into the new group `dst` of this file (H5Ocopy).
  void copy_file(const std::string& src_path, const std::string& dst);
  void commit();

 private:
  std::string path_, tmp_;
  int64_t file_ = -1;  // hid_t
  bool committed_ = false;
};

}  // namespace qsweep
