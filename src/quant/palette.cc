// palette.cc — candidate palettes of mixed-precision allocation (see palette.h).
#include "quant/palette.h"

#include "core/error.h"

namespace qsweep {

std::vector<GridSpec> parse_palette(const std::string& s) {
  std::vector<GridSpec> out;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t comma = s.find(',', start);
    const std::string item = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    const size_t colon = item.find(':');
    GridSpec g;
    try {
      QS_CHECK(colon != std::string::npos, "");
      size_t used = 0;
      g.bits = std::stoi(item.substr(0, colon), &used);
      QS_CHECK(used == colon, "");
      const std::string gs = item.substr(colon + 1);
      g.group_size = std::stoi(gs, &used);
      QS_CHECK(used == gs.size(), "");
    } catch (const std::exception&) {
      throw Error("--palette '" + s + "': entry '" + item + "' is not BITS:GROUP (e.g. 3:128; group -1 for one group per row)");
    }
    QS_CHECK(g.bits >= 2 && g.bits <= 8, "--palette: " << item << ": bits must be 2..8");
    QS_CHECK(g.group_size == -1 || g.group_size >= 1, "--palette: " << item << ": group size must be positive or -1");
    for (const GridSpec& o : out)
      QS_CHECK(o.bits != g.bits || o.group_size != g.group_size, "--palette: " << item << " is listed twice");
    out.push_back(g);
    if (comma == std::string::npos) break;
    start = comma + 1;
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
