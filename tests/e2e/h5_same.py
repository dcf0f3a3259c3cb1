#!/usr/bin/python3
"""h5_same.py A.h5 B.h5 — exit 0 when two qsweep HDF5 files hold the same results bit for bit.

Every dataset and attribute is compared exactly (NaN equal to NaN at the same place), except
provenance and timing: times, host names, rank and thread counts, command line, code version,
seconds and throughput, and the /timing group. Prints the first differences otherwise.
"""
import sys

import h5py
import numpy as np

IGNORED = {"start_time", "end_time", "hosts", "n_ranks", "threads_per_rank", "backend", "command_line",
           "code_version", "qsweep_version", "seconds", "forward_seconds", "tokens_per_second"}


def same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype.kind == "f":
        return a.tobytes() == b.tobytes()
    return bool(np.array_equal(a, b))


def main():
    fa, fb = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
    diffs = []

    def attrs(name, oa, ob):
        keys = (set(oa.attrs) | set(ob.attrs)) - IGNORED
        for k in sorted(keys):
            if k not in oa.attrs or k not in ob.attrs or not same(oa.attrs[k], ob.attrs[k]):
                diffs.append(f"attribute {name}@{k}")

    def visit(name, oa):
        if name.startswith("timing"):
            return
        if name not in fb:
            diffs.append(f"{name} only in {sys.argv[1]}")
            return
        ob = fb[name]
        attrs(name, oa, ob)
        if isinstance(oa, h5py.Dataset) and not same(oa[()], ob[()]):
            diffs.append(f"dataset {name}")

    attrs("/", fa, fb)
    fa.visititems(visit)
    fb.visititems(lambda n, o: diffs.append(f"{n} only in {sys.argv[2]}") if n not in fa and not n.startswith("timing") else None)
    for d in diffs[:10]:
        print("differs:", d)
    sys.exit(1 if diffs else 0)


if __name__ == "__main__":
    main()
