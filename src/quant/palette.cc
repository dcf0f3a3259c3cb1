// palette.cc — candidate palettes of mixed-precision allocation (see palette.h).
#include "quant/palette.h"

#include "core/error.h"

namespace qsweep {

std::vector<GridSpec> parse_palette(const std::string& s) {
  std::vector<GridSpec> out;
  std::string item;
  std::vector<std::string> items;
  for (char c : s + ",") {
    if (c == ',' || c == ' ' || c == '\t') {
      if (!item.empty()) items.push_back(item);
      item.clear();
    } else {
      item += c;
    }
  }
  QS_CHECK(!items.empty(), "--palette '" << s << "': no candidates (expected BITS:GROUP,... e.g. 3:128,4:128)");
  for (const std::string& it : items) {
    const size_t colon = it.find(':');
    GridSpec g;
    try {
      QS_CHECK(colon != std::string::npos, "");
      size_t used = 0;
      g.bits = std::stoi(it.substr(0, colon), &used);
      QS_CHECK(used == colon, "");
      const std::string gs = it.substr(colon + 1);
      g.group_size = std::stoi(gs, &used);
      QS_CHECK(used == gs.size(), "");
    } catch (const std::exception&) {
      throw Error("--palette '" + s + "': entry '" + it + "' is not BITS:GROUP (e.g. 3:128; group -1 for one group per row)");
    }
    QS_CHECK(g.bits >= 2 && g.bits <= 8, "--palette: " << it << ": bits must be 2..8");
    QS_CHECK(g.group_size == -1 || g.group_size >= 1, "--palette: " << it << ": group size must be positive or -1");
    for (const GridSpec& o : out)
      QS_CHECK(o.bits != g.bits || o.group_size != g.group_size, "--palette: " << it << " is listed twice");
    out.push_back(g);
  }
  return out;
}

std::vector<GridSpec> strategy_palette(const std::string& strategy) {
  std::vector<int> bits, groups;
  if (strategy == "conservative") {
    bits = {4, 6, 8};
    groups = {64, 128};
  } else if (strategy == "adaptive") {
    bits = {2, 3, 4, 6, 8};
    groups = {64, 128, 256};
  } else if (strategy == "aggressive") {
    bits = {2, 3, 4, 8};
    groups = {128, 256};
  } else {
    throw Error("--strategy '" + strategy + "': expected conservative, adaptive or aggressive");
  }
  std::vector<GridSpec> out;
  for (int b : bits)
    for (int g : groups) {
      GridSpec s;
      s.bits = b;
      s.group_size = g;
      out.push_back(s);
    }
  return out;
}

std::string palette_string(const std::vector<GridSpec>& p) {
  std::string s;
  for (const GridSpec& g : p) s += (s.empty() ? "" : ",") + std::to_string(g.bits) + ":" + std::to_string(g.group_size);
  return s;
}

}  // namespace qsweep
