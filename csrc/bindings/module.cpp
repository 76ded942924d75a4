// chansim._core: the thin pybind11 layer over the native core. Each layer binds
// its own functions in bind_<layer>.cpp; arguments are validated there too,
// so the core is safe to call from Python even without the Python wrappers.
#include <pybind11/pybind11.h>

#include "bindings.h"
#include "common/errors.h"

namespace {

namespace py = pybind11;

// One mapping for every layer: chansim::FormatError (malformed input) becomes
// chansim.errors.FormatError, a ValueError; std::invalid_argument (bad
// arguments) keeps pybind11's mapping to ValueError.
void register_errors() {
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const chansim::FormatError& e) {
      // Kept for the life of the process (never decref'd at interpreter exit).
      static PyObject* type = py::object(py::module_::import("chansim.errors").attr("FormatError")).release().ptr();
      PyErr_SetString(type, e.what());
    }
  });
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "chansim native core (channel simulation, entropy coding, common randomness)";
  register_errors();
  chansim::bind::register_common(m);
  chansim::bind::register_entropy(m);
  chansim::bind::register_channel(m);
  chansim::bind::register_grc(m);
}
