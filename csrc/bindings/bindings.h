#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace chansim {
namespace bind {

namespace py = pybind11;

void register_common(py::module_& m);
void register_entropy(py::module_& m);
void register_channel(py::module_& m);
void register_grc(py::module_& m);

// Argument checks shared by every binding: a clear ValueError naming the
// argument, never a crash on a wrong dtype, layout or size.
template <class T>
inline void require_array(const py::array& a, const char* name, bool writable) {
  // By equivalence, not identity: an unpickled array's dtype is a different object.
  if (!py::isinstance<py::array_t<T>>(a))
    throw py::value_error(std::string(name) + ": expected dtype " + std::string(py::str(py::dtype::of<T>())) +
                          ", got " + std::string(py::str(a.dtype())));
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(name) + ": array must be C-contiguous");
  if (writable && !a.writeable()) throw py::value_error(std::string(name) + ": array is read-only");
}

}  // namespace bind
}  // namespace chansim
