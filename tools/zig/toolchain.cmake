# CMake toolchain for a manylinux wheel built by zig (the `ziglang` package from PyPI): zig's
# Clang against glibc 2.28 (or ZIG_TARGET) with libc++ linked statically, so the module needs
# glibc <= 2.28 and no libstdc++. .ci/run passes it to scikit-build-core:
#   pip wheel . -C cmake.define.CMAKE_TOOLCHAIN_FILE=$PWD/tools/zig/toolchain.cmake
set(CMAKE_C_COMPILER ${CMAKE_CURRENT_LIST_DIR}/zig-cc)
set(CMAKE_CXX_COMPILER ${CMAKE_CURRENT_LIST_DIR}/zig-c++)
if(DEFINED ENV{ZIG_TARGET} AND NOT "$ENV{ZIG_TARGET}" MATCHES "^x86_64-")
  # Cross builds (e.g. aarch64-linux-gnu.2.28): csrc/CMakeLists.txt adds the AVX2 sources
  # only when CMAKE_SYSTEM_PROCESSOR is x86-64. The wheel's tag and the module's suffix are the
  # build interpreter's unless set: _PYTHON_HOST_PLATFORM=linux-aarch64 (tag),
  # SETUPTOOLS_EXT_SUFFIX and -C cmake.define.PYTHON_MODULE_EXTENSION=.cpython-311-aarch64-linux-gnu.so
  # (scikit-build-core reads the first, pybind11 the second).
  set(CMAKE_SYSTEM_NAME Linux)
  string(REGEX MATCH "^[^-]+" CMAKE_SYSTEM_PROCESSOR "$ENV{ZIG_TARGET}")
endif()
