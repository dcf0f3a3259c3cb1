// stop_signal.cc — async-signal-safe flag and its collective poll.
#include "dist/stop_signal.h"

#include <csignal>

namespace qsweep {

namespace {
volatile std::sig_atomic_t g_signal = 0;
extern "C" void on_stop_signal(int sig) {
  if (!g_signal) g_signal = sig;
}
}  // namespace

void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGUSR1, &sa, nullptr);
}

bool stop_signal_received() { return g_signal != 0; }
int stop_signal_number() { return g_signal; }

bool stop_requested(const Comm& comm) {
  return comm.allreduce_max(stop_signal_received() ? 1.0 : 0.0) > 0;
}

}  // namespace qsweep
