// cpus.h: how many CPUs this process may run on, for the "auto" process counts.
// Any thread. No errors: it falls back to the online CPU count, then to 1.
#pragma once

#include <cstddef>

namespace estafette::base {

// The CPUs in this process's affinity mask (what `nproc` prints): taskset and cpusets narrow
// it, and children inherit it, so `taskset -c 0 estafetted` means one CPU for everything.
std::size_t usable_cpus();

}  // namespace estafette::base
