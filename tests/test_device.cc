// test_device.cc — the device seam's host side (core/device.h): --device parsing, resolution
// (auto never picks a GPU that some rank lacks; cuda without CUDA or without a GPU is a clear
// error), the rank→GPU binding, the process device and its scope, make_forward's choice, and the
// compute identity in a sweep's inputs.json. Runs in both builds (CTest -R Device in CUDA's).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/backend.h"
#include "core/device.h"
#include "core/error.h"
#include "sweep/sweep_dir.h"
#include "dist/comm.h"
#include "dist/device_comm.h"
#include "model/forward.h"
#include "model/synthetic_model.h"
#include "sweep/input_fingerprint.h"
#include "test_util.h"

namespace qsweep {
namespace {

TEST(DeviceChoiceTest, ParsesTheThreeChoicesAndNamesTheOptionOtherwise) {
  EXPECT_EQ(parse_device_choice("auto"), DeviceChoice::Auto);
  EXPECT_EQ(parse_device_choice("cpu"), DeviceChoice::Cpu);
  EXPECT_EQ(parse_device_choice("cuda"), DeviceChoice::Cuda);
  for (const char* bad : {"gpu", "CUDA", "", "cuda:0"}) {
    try {
      parse_device_choice(bad, "job.ini: device =");
      FAIL() << bad;
    } catch (const Error& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("job.ini: device ="), std::string::npos) << m;
      EXPECT_NE(m.find("auto"), std::string::npos) << m;
    }
  }
}

TEST(DeviceChoiceTest, ComputeDtypeParsesAndIsPartOfTheIdentity) {
  EXPECT_EQ(parse_compute_dtype("fp32"), ComputeDtype::Fp32);
  EXPECT_EQ(parse_compute_dtype("bf16"), ComputeDtype::Bf16);
  EXPECT_EQ(parse_compute_dtype("tf32x3"), ComputeDtype::Tf32x3);
  for (const char* bad : {"fp16", "BF16", "", "tf32", "3xtf32"}) {
    try {
      parse_compute_dtype(bad, "job.ini: compute-dtype =");
      FAIL() << bad;
    } catch (const Error& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("job.ini: compute-dtype ="), std::string::npos) << m;
      EXPECT_NE(m.find("bf16"), std::string::npos) << m;
    }
  }
  ComputeDevice d;
  d.kind = DeviceKind::Cuda, d.dtype = ComputeDtype::Bf16;
  EXPECT_EQ(d.identity(), "cuda bf16");  // a bf16 sweep never resumes as an fp32 one
  d.dtype = ComputeDtype::Fp32;
  EXPECT_EQ(d.identity(), "cuda fp32");
  d.dtype = ComputeDtype::Tf32x3;
  EXPECT_EQ(d.identity(), "cuda tf32x3");  // nor does a tf32x3 one
}

// QSWEEP_CUDA_ATTENTION: "flash" opts in to the fused attention of CUDA's bf16 and tf32x3, and then
// is part of the identity (a sweep started with it never resumes without it); fp32 and the CPU
// never take it; a misspelt value is refused naming the variable.
TEST(DeviceChoiceTest, FusedAttentionIsOptInAndPartOfTheIdentity) {
  EXPECT_FALSE(flash_attention_requested(nullptr));
  EXPECT_FALSE(flash_attention_requested(""));
  EXPECT_FALSE(flash_attention_requested("gemm"));
  EXPECT_TRUE(flash_attention_requested("flash"));
  try {
    flash_attention_requested("Flash");
    FAIL() << "a misspelt value was taken";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("QSWEEP_CUDA_ATTENTION='Flash'"), std::string::npos) << e.what();
  }
  const char* old = std::getenv("QSWEEP_CUDA_ATTENTION");
  const std::string saved = old ? old : "";
  setenv("QSWEEP_CUDA_ATTENTION", "flash", 1);
  ComputeDevice d;
  d.kind = DeviceKind::Cuda, d.dtype = ComputeDtype::Bf16;
  EXPECT_EQ(d.identity(), "cuda bf16 flash-attention");
  d.dtype = ComputeDtype::Tf32x3;
  EXPECT_EQ(d.identity(), "cuda tf32x3 flash-attention");
  d.dtype = ComputeDtype::Fp32;
  EXPECT_EQ(d.identity(), "cuda fp32");
  d.kind = DeviceKind::Cpu;
  EXPECT_EQ(d.identity(), "cpu fp32");
  if (old)
    setenv("QSWEEP_CUDA_ATTENTION", saved.c_str(), 1);
  else
    unsetenv("QSWEEP_CUDA_ATTENTION");
}

// bf16 GEMMs exist on CUDA only: a run that resolves to the CPU refuses the option instead of
// silently computing in fp32 under a "bf16" label, and leaves the device as it was.
TEST(DeviceSelectTest, Bf16OnTheCpuIsRefused) {
  const Comm one = Comm::local();
  select_device(DeviceChoice::Cpu, one);
  try {
    select_device(DeviceChoice::Cpu, one, ComputeDtype::Bf16);
    FAIL() << "bf16 accepted on the CPU";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--compute-dtype bf16 runs on CUDA only"), std::string::npos) << e.what();
  }
  try {
    select_device(DeviceChoice::Cpu, one, ComputeDtype::Tf32x3);
    FAIL() << "tf32x3 accepted on the CPU";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--compute-dtype tf32x3 runs on CUDA only"), std::string::npos) << e.what();
  }
  EXPECT_EQ(current_device().identity(), "cpu fp32");
}

TEST(DeviceResolveTest, AutoTakesCudaOnlyWhenBuiltAndEveryRankHasAGpu) {
  EXPECT_EQ(resolve_device(DeviceChoice::Auto, true, 4, true), DeviceKind::Cuda);
  EXPECT_EQ(resolve_device(DeviceChoice::Auto, true, 4, false), DeviceKind::Cpu);  // another rank has none
  EXPECT_EQ(resolve_device(DeviceChoice::Auto, true, 0, false), DeviceKind::Cpu);
  EXPECT_EQ(resolve_device(DeviceChoice::Auto, false, 0, false), DeviceKind::Cpu);
  EXPECT_EQ(resolve_device(DeviceChoice::Cpu, true, 8, true), DeviceKind::Cpu);
  EXPECT_EQ(resolve_device(DeviceChoice::Cuda, true, 1, true), DeviceKind::Cuda);
}

TEST(DeviceResolveTest, CudaWithoutCudaOrWithoutAGpuSaysWhatToDo) {
  try {
    resolve_device(DeviceChoice::Cuda, false, 0, false);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("built without CUDA"), std::string::npos) << e.what();
  }
  try {
    resolve_device(DeviceChoice::Cuda, true, 0, false);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sees no CUDA device"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("CUDA_VISIBLE_DEVICES"), std::string::npos) << e.what();
  }
}

TEST(DeviceBindingTest, NodeLocalRankModuloVisibleGpus) {
  EXPECT_EQ(gpu_for_local_rank(0, 8), 0);
  EXPECT_EQ(gpu_for_local_rank(7, 8), 7);
  EXPECT_EQ(gpu_for_local_rank(8, 8), 0);  // more ranks than GPUs: shared round-robin
  EXPECT_EQ(gpu_for_local_rank(5, 4), 1);
  EXPECT_EQ(gpu_for_local_rank(1, 1), 0);  // two ranks on one GPU: the shared-device path
}

TEST(DeviceSelectTest, ThisMachineResolvesAndScopesRestore) {
  const Comm one = Comm::local();
  EXPECT_EQ(select_device(DeviceChoice::Cpu, one).kind, DeviceKind::Cpu);
  EXPECT_EQ(current_device().identity(), "cpu fp32");
  const ComputeDevice& a = select_device(DeviceChoice::Auto, one);
  EXPECT_EQ(a.kind, cuda_device_count() > 0 && built_with_cuda() ? DeviceKind::Cuda : DeviceKind::Cpu);
  if (cuda_device_count() == 0) {
    EXPECT_THROW(select_device(DeviceChoice::Cuda, one), Error);
    EXPECT_EQ(current_device().kind, DeviceKind::Cpu);  // a refused choice leaves the device as it was
  }
  select_device(DeviceChoice::Cpu, one);
  {
    ComputeDevice fake;  // a scope switches the process's device and puts it back
    fake.description = "cpu (scoped)";
    DeviceScope scope(fake);
    EXPECT_EQ(current_device().description, "cpu (scoped)");
  }
  EXPECT_EQ(current_device().description, "cpu");
}

TEST(DeviceSelectTest, MakeForwardFollowsTheProcessDevice) {
  select_device(DeviceChoice::Cpu, Comm::local());
  const std::string dir = test::scratch_dir("device_forward");
  SyntheticModelSpec s;
  s.hidden = 32, s.intermediate = 48, s.layers = 1, s.heads = 2, s.kv_heads = 1, s.vocab = 50;
  write_synthetic_model(dir, s);
  LlamaWeights m(dir);
  EXPECT_STREQ(make_forward(m.config())->device_name(), "cpu");
}

TEST(DeviceFingerprintTest, ComputeIsPartOfASweepsIdentity) {
  const std::string dir = test::scratch_dir("device_fingerprint");
  InputFingerprint cpu;
  cpu.compute = "cpu fp32";
  write_fingerprint(dir, cpu);
  EXPECT_EQ(read_fingerprint(dir).compute, "cpu fp32");
  InputFingerprint gpu;
  gpu.compute = "cuda fp32";
  const FingerprintChanges ch = compare_fingerprints(read_fingerprint(dir), gpu);
  ASSERT_EQ(ch.changed.size(), 1u);
  EXPECT_NE(ch.changed[0].find("cpu fp32 -> cuda fp32"), std::string::npos) << ch.changed[0];
  EXPECT_NE(ch.changed[0].find("--device cpu --compute-dtype fp32"), std::string::npos) << ch.changed[0];
  InputFingerprint bf16;
  bf16.compute = "cuda bf16";
  const FingerprintChanges ch2 = compare_fingerprints(bf16, gpu);
  ASSERT_EQ(ch2.changed.size(), 1u);
  EXPECT_NE(ch2.changed[0].find("--device cuda --compute-dtype bf16"), std::string::npos) << ch2.changed[0];
  EXPECT_TRUE(compare_fingerprints(read_fingerprint(dir), cpu).changed.empty());
  // A sweep recorded before the field existed ran on the CPU.
  write_text_atomic(dir + "/inputs.json", R"({"format": "qsweep-sweep-inputs", "version": 1, "files": []})");
  EXPECT_EQ(read_fingerprint(dir).compute, "cpu fp32");
}

}  // namespace
}  // namespace qsweep

namespace qsweep {
namespace {

// NCCL refuses two ranks on one GPU: the shared-device test that sends those to the MPI path.
TEST(DeviceCommTest, DistinctDevicesPerHostAndOrdinal) {
  EXPECT_TRUE(distinct_devices({"a", "a", "b", "b"}, {0, 1, 0, 1}));
  EXPECT_FALSE(distinct_devices({"a", "a"}, {0, 0}));  // two ranks, one GPU
  EXPECT_TRUE(distinct_devices({"a"}, {0}));
  EXPECT_FALSE(distinct_devices({"a", "b", "a"}, {3, 3, 3}));
  EXPECT_FALSE(nccl_usable(Comm::local(), 0));  // one rank: nothing to reduce
}

// --activation-budget-mb per device: the ranks bound to one GPU of one host count together.
TEST(DeviceCommTest, BytesSharingADevice) {
  const std::vector<std::string> hosts = {"a", "a", "a", "b"};
  const std::vector<int64_t> ordinals = {0, 1, 0, 0};
  const std::vector<double> bytes = {10, 20, 30, 40};
  EXPECT_EQ(bytes_sharing_device(hosts, ordinals, bytes, 0), 40);
  EXPECT_EQ(bytes_sharing_device(hosts, ordinals, bytes, 1), 20);
  EXPECT_EQ(bytes_sharing_device(hosts, ordinals, bytes, 2), 40);
  EXPECT_EQ(bytes_sharing_device(hosts, ordinals, bytes, 3), 40);  // another host's GPU 0
  EXPECT_EQ(bytes_on_device(Comm::local(), 0, 7), 7);
}

// The NCCL deadline: 300 s by default, QSWEEP_NCCL_TIMEOUT_S when it is a positive number,
// an error naming the variable otherwise.
TEST(DeviceCommTest, NcclTimeoutFromTheEnvironment) {
  unsetenv("QSWEEP_NCCL_TIMEOUT_S");
  EXPECT_EQ(nccl_timeout_seconds(), 300);
  setenv("QSWEEP_NCCL_TIMEOUT_S", "12.5", 1);
  EXPECT_EQ(nccl_timeout_seconds(), 12.5);
  for (const char* bad : {"0", "-3", "ten", "5s"}) {
    setenv("QSWEEP_NCCL_TIMEOUT_S", bad, 1);
    try {
      nccl_timeout_seconds();
      ADD_FAILURE() << bad << " accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("QSWEEP_NCCL_TIMEOUT_S"), std::string::npos) << e.what();
    }
  }
  unsetenv("QSWEEP_NCCL_TIMEOUT_S");
}

}  // namespace
}  // namespace qsweep
