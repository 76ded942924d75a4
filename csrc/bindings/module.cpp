// chansim._core: the thin pybind11 layer over the native core. Each layer binds
// its own functions in bind_<layer>.cpp; arguments are validated there too,
// so the core is safe to call from Python even without the Python wrappers.
#include <pybind11/pybind11.h>

#include "bindings.h"

PYBIND11_MODULE(_core, m) {
  m.doc() = "chansim native core (channel simulation, entropy coding, common randomness)";
  chansim::bind::register_common(m);
  chansim::bind::register_entropy(m);
  chansim::bind::register_channel(m);
  chansim::bind::register_grc(m);
}
