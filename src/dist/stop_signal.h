// stop_signal.h — graceful stop on SIGTERM or SIGUSR1 (what Slurm sends before a time limit or a
// preemption, and what mpirun/srun forward to every rank). The handler only sets a flag; the
// sweep runner polls it collectively at block and cell boundaries, so every rank of a group stops
// at the same point, abandons or finishes its cell, flushes, and the run exits with code 75
// (EX_TEMPFAIL), which the Slurm templates turn into a requeue.
#pragma once
#include "dist/comm.h"

namespace qsweep {

constexpr int kExitRequeue = 75;  // EX_TEMPFAIL: "try again later"

void install_stop_handlers();     // SIGTERM and SIGUSR1
bool stop_signal_received();      // this process only, no communication
int stop_signal_number();         // the first signal received (0: none)
// Collective over `comm`: true on every rank when any rank of it received a stop signal.
bool stop_requested(const Comm& comm);

}  // namespace qsweep
