// input_fingerprint.h — what a sweep's results depend on outside its directory, recorded in
// DIR/inputs.json when the sweep starts and compared on `run --resume`: a text edited in place or
// a model folder replaced behind the same path would otherwise be silently mixed with the shared
// stages (full-precision baseline, reference hidden states, statistics) computed from the old one.
//
// Per file: path, size, mtime and a SHA-256 — of the whole file for the calibration and evaluation
// texts, config.json, the tokenizer files and the safetensors index; of the JSON header only for
// each *.safetensors (names, dtypes, shapes, offsets: hashing the weights would read the whole
// checkpoint; a same-shaped checkpoint with other weights shows as a changed mtime).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace qsweep {

struct FileFingerprint {
  std::string role;  // "eval text", "calibration text", "model config", "tokenizer", "safetensors header", ...
  std::string path;
  int64_t size = -1;  // -1: missing
  std::string mtime;  // "seconds.nanoseconds"
  std::string sha256;
};

struct InputFingerprint {
  std::vector<FileFingerprint> files;
  // The device kind and compute dtype the sweep computes on (core/device.h identity): CPU and
  // GPU results differ in the last bits, so a resumed sweep must not mix them. Sweeps recorded
  // before it existed ran on the CPU.
  std::string compute = "cpu fp32";
};

// The fingerprint of the model folder and the texts (empty paths are skipped).
InputFingerprint fingerprint_inputs(const std::string& model_dir, const std::string& calib,
                                   const std::vector<std::string>& eval_files,
                                   const std::vector<std::string>& task_files = {});

void write_fingerprint(const std::string& dir, const InputFingerprint& f);  // DIR/inputs.json, atomic
bool has_fingerprint(const std::string& dir);
InputFingerprint read_fingerprint(const std::string& dir);  // throws naming the file

struct FingerprintChanges {
  std::vector<std::string> changed;  // content or size differs, or a file appeared / disappeared
  std::vector<std::string> touched;  // only the mtime differs
};
FingerprintChanges compare_fingerprints(const InputFingerprint& before, const InputFingerprint& now);

}  // namespace qsweep
