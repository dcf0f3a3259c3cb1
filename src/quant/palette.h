// palette.h — the candidate (bits, group size) pairs of mixed-precision allocation: parsed from
// --palette "2:128,3:128,4:64" (commas or spaces between candidates: in a job file's [allocate]
// section, where commas make grid axes, "2:128 3:128" is one palette; group -1: one group per
// row) or fixed by a strategy:
//   conservative  bits {4, 6, 8} x groups {64, 128}
//   adaptive      bits {2, 3, 4, 6, 8} x groups {64, 128, 256}   (the default)
//   aggressive    bits {2, 3, 4, 8} x groups {128, 256}
#pragma once
#include <string>
#include <vector>

#include "quant/grid.h"

namespace qsweep {

std::vector<GridSpec> parse_palette(const std::string& s);         // throws naming the bad entry
std::vector<GridSpec> strategy_palette(const std::string& strategy);  // throws for an unknown name
std::string palette_string(const std::vector<GridSpec>& p);          // "2:64,2:128,..."

}  // namespace qsweep
