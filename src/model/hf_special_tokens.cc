// hf_special_tokens.cc — post-processor templates and tokenizer_config.json overrides.
#include "model/hf_special_tokens.h"

#include <sys/stat.h>

#include <algorithm>

#include "core/error.h"

namespace qsweep {

namespace {

struct Template {
  std::vector<int32_t> prefix, suffix;
};

void parse_post_processor(const JsonAt& j, Template& out) {
  const std::string t = j.type_in("post-processor", {"TemplateProcessing", "ByteLevel", "Sequence"});
  if (t == "ByteLevel") return;  // offsets only
  if (t == "Sequence") {
    const JsonAt list = j["processors"];
    list.expect_array();
    for (size_t i = 0; i < list.size(); ++i) {
      Template sub;
      parse_post_processor(list.at(i), sub);
      out.prefix.insert(out.prefix.end(), sub.prefix.begin(), sub.prefix.end());
      out.suffix.insert(out.suffix.end(), sub.suffix.begin(), sub.suffix.end());
    }
    return;
  }
  const JsonAt single = j["single"];
  single.expect_array();
  bool seen_a = false;
  for (size_t i = 0; i < single.size(); ++i) {
    const JsonAt item = single.at(i);
    std::string special;  // empty: a sequence item
    std::string seq;
    if (item.json().is_string()) {  // "$A", "$A:0", "<s>", "<s>:0"
      std::string s = item.str();
      const size_t colon = s.rfind(':');
      if (colon != std::string::npos && colon + 1 < s.size() &&
          std::all_of(s.begin() + colon + 1, s.end(), ::isdigit))
        s.resize(colon);
      if (!s.empty() && s[0] == '$') seq = s.size() == 1 ? "A" : s.substr(1);
      else special = s;
    } else if (item.has("Sequence")) {
      seq = item["Sequence"]["id"].str();
    } else if (item.has("SpecialToken")) {
      special = item["SpecialToken"]["id"].str();
    } else {
      item.fail("expected {\"Sequence\": ...} or {\"SpecialToken\": ...}");
    }
    if (!special.empty()) {
      const JsonAt specials = j["special_tokens"];
      if (!specials.has(special.c_str())) item.fail("special token \"" + special + "\" is not in " + specials.path());
      const JsonAt ids = specials[special.c_str()]["ids"];
      ids.expect_array();
      auto& dst = seen_a ? out.suffix : out.prefix;
      for (size_t k = 0; k < ids.size(); ++k) {
        const int64_t id = ids.at(k).integer();
        if (id < 0 || id >= INT32_MAX) ids.at(k).fail("token id out of range");
        dst.push_back(static_cast<int32_t>(id));
      }
      continue;
    }
    if (seq != "A" && seq != "0") item.fail("the single-sequence template can only hold $A, found $" + seq);
    if (seen_a) item.fail("$A appears twice");
    seen_a = true;
  }
  if (!seen_a) single.fail("the template has no $A");
}

bool file_exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// bos_token / eos_token: a string, or an AddedToken-like object with "content"; "" if absent.
std::string config_token(const JsonAt& cfg, const char* key) {
  if (!cfg.has(key)) return "";
  const JsonAt t = cfg[key];
  if (t.json().is_string()) return t.str();
  if (t.json().is_object()) return t["content"].str();
  t.fail("expected a string or an object with \"content\", found " + json_type_name(t.json()));
}

}  // namespace

SpecialTokens resolve_special_tokens(const JsonAt& post_processor, const std::string& config_path,
                                     const std::function<int32_t(const std::string&)>& token_id) {
  Template tpl;
  if (!post_processor.json().is_null()) parse_post_processor(post_processor, tpl);
  SpecialTokens sp;
  sp.prefix = tpl.prefix;
  sp.suffix = tpl.suffix;
  sp.bos_id = tpl.prefix.empty() ? -1 : tpl.prefix[0];

  if (!config_path.empty() && file_exists(config_path)) {
    const nlohmann::json cfgj = parse_json_file(config_path, "the tokenizer configuration");
    const JsonAt cfg(cfgj, config_path, "");
    cfg.expect_object();
    auto resolve = [&](const char* key) -> int32_t {
      const std::string content = config_token(cfg, key);
      if (content.empty()) return -1;
      const int32_t id = token_id(content);
      if (id < 0) cfg[key].fail("\"" + content + "\" is not a token of the tokenizer (neither in model.vocab nor in added_tokens)");
      return id;
    };
    const int32_t bos = resolve("bos_token");
    const int32_t eos = resolve("eos_token");
    if (bos >= 0) sp.bos_id = bos;
    if (cfg.has("add_bos_token")) {
      if (cfg["add_bos_token"].boolean()) {
        if (bos < 0) cfg["add_bos_token"].fail("is true but bos_token is missing");
        sp.prefix = {bos};
      } else {
        sp.prefix.clear();
      }
    }
    if (cfg.has("add_eos_token")) {
      if (cfg["add_eos_token"].boolean()) {
        if (eos < 0) cfg["add_eos_token"].fail("is true but eos_token is missing");
        sp.suffix = {eos};
      } else {
        sp.suffix.clear();
      }
    }
  }
  sp.adds_bos = sp.bos_id >= 0 && std::find(sp.prefix.begin(), sp.prefix.end(), sp.bos_id) != sp.prefix.end();
  return sp;
}

}  // namespace qsweep
