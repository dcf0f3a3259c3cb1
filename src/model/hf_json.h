// hf_json.h — a position inside a parsed tokenizer.json / tokenizer_config.json that knows its
// file and JSON path, so that every complaint about the file names both
// ("tokenizer.json: pre_tokenizer.pretokenizers[1].type: ..."). The readers of the tokenizer's
// parts take a JsonAt instead of a bare nlohmann::json for that reason.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>

namespace qsweep {

class JsonAt {
 public:
  JsonAt(const nlohmann::json& j, const std::string& file, std::string path)
      : j_(&j), file_(&file), path_(std::move(path)) {}

  const nlohmann::json& json() const { return *j_; }
  const std::string& file() const { return *file_; }
  const std::string& path() const { return path_; }

  /// True when the key is present and not null.
  bool has(const char* key) const;
  /// The required member `key` (an error names the path when it is missing or null).
  JsonAt operator[](const char* key) const;
  /// Element i of an array.
  JsonAt at(size_t i) const;
  size_t size() const;  ///< of an array (checked) or object

  std::string str() const;     ///< a string, else an error naming the type found
  bool boolean() const;        ///< a boolean
  int64_t integer() const;     ///< an integer
  void expect_array() const;
  void expect_object() const;

  // Optional members with defaults (null counts as absent).
  std::string str_or(const char* key, const std::string& dflt) const;
  bool bool_or(const char* key, bool dflt) const;

  /// `type` of this object, checked against the supported names; an unsupported one stops with
  /// `file: path.type: "X" is not supported (supported: A, B)`.
  std::string type_in(const char* what, std::initializer_list<const char*> supported) const;

  /// Throws qsweep::Error "<file>: <path>: <msg>".
  [[noreturn]] void fail(const std::string& msg) const;

 private:
  const nlohmann::json* j_;
  const std::string* file_;
  std::string path_;
};

/// A short name for a JSON value's type ("a string", "an array", ...).
std::string json_type_name(const nlohmann::json& j);

/// Parses a JSON file; a syntax error names the file and the byte offset.
nlohmann::json parse_json_file(const std::string& path, const std::string& what);

}  // namespace qsweep
