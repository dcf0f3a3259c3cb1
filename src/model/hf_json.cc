// hf_json.cc — JSON access with file + path error messages.
#include "model/hf_json.h"

#include <fstream>
#include <sstream>

#include "core/error.h"

namespace qsweep {

std::string json_type_name(const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::null: return "null";
    case nlohmann::json::value_t::object: return "an object";
    case nlohmann::json::value_t::array: return "an array";
    case nlohmann::json::value_t::string: return "a string";
    case nlohmann::json::value_t::boolean: return "a boolean";
    case nlohmann::json::value_t::number_float: return "a non-integer number";
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned: return "an integer";
    default: return "an unexpected value";
  }
}

void JsonAt::fail(const std::string& msg) const {
  QS_THROW(*file_ << ": " << (path_.empty() ? std::string("(top level)") : path_) << ": " << msg);
}

bool JsonAt::has(const char* key) const {
  if (!j_->is_object()) return false;
  const auto it = j_->find(key);
  return it != j_->end() && !it->is_null();
}

JsonAt JsonAt::operator[](const char* key) const {
  expect_object();
  const std::string sub = path_.empty() ? std::string(key) : path_ + "." + key;
  const auto it = j_->find(key);
  if (it == j_->end() || it->is_null()) QS_THROW(*file_ << ": " << sub << ": missing (required)");
  return JsonAt(*it, *file_, sub);
}

JsonAt JsonAt::at(size_t i) const {
  expect_array();
  return JsonAt((*j_)[i], *file_, path_ + "[" + std::to_string(i) + "]");
}

size_t JsonAt::size() const {
  if (!j_->is_object()) expect_array();
  return j_->size();
}

std::string JsonAt::str() const {
  if (!j_->is_string()) fail("expected a string, found " + json_type_name(*j_));
  return j_->get<std::string>();
}

bool JsonAt::boolean() const {
  if (!j_->is_boolean()) fail("expected true or false, found " + json_type_name(*j_));
  return j_->get<bool>();
}

int64_t JsonAt::integer() const {
  if (!j_->is_number_integer()) fail("expected an integer, found " + json_type_name(*j_));
  if (j_->is_number_unsigned() && j_->get<uint64_t>() > uint64_t(INT64_MAX)) fail("integer out of range");
  return j_->get<int64_t>();
}

void JsonAt::expect_array() const {
  if (!j_->is_array()) fail("expected an array, found " + json_type_name(*j_));
}

void JsonAt::expect_object() const {
  if (!j_->is_object()) fail("expected an object, found " + json_type_name(*j_));
}

std::string JsonAt::str_or(const char* key, const std::string& dflt) const {
  return has(key) ? (*this)[key].str() : dflt;
}

bool JsonAt::bool_or(const char* key, bool dflt) const {
  return has(key) ? (*this)[key].boolean() : dflt;
}

std::string JsonAt::type_in(const char* what, std::initializer_list<const char*> supported) const {
  const std::string t = (*this)["type"].str();
  std::string list;
  for (const char* s : supported) {
    if (t == s) return t;
    list += (list.empty() ? "" : ", ") + std::string(s);
  }
  (*this)["type"].fail("\"" + t + "\" is not supported as a " + what + " (supported: " + list + ")");
}

nlohmann::json parse_json_file(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  QS_CHECK(in, path << ": cannot open (" << what << ")");
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return nlohmann::json::parse(ss.str());
  } catch (const nlohmann::json::parse_error& e) {
    QS_THROW(path << ": not valid JSON at byte " << e.byte << " (" << what << "): " << e.what());
  } catch (const nlohmann::json::exception& e) {  // out_of_range: a number like 1e400
    QS_THROW(path << ": not valid JSON (" << what << "): " << e.what());
  }
}

}  // namespace qsweep
