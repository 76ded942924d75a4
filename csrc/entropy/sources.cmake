list(APPEND CHANSIM_CORE_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/coder.cpp
  ${CMAKE_CURRENT_LIST_DIR}/param_family.cpp
  ${CMAKE_CURRENT_LIST_DIR}/table_family.cpp
  ${CMAKE_CURRENT_LIST_DIR}/uniform_family.cpp
  ${CMAKE_CURRENT_LIST_DIR}/zipf_family.cpp
  ${CMAKE_CURRENT_LIST_DIR}/format.cpp
  ${CMAKE_CURRENT_LIST_DIR}/param_kernels.cpp
  ${CMAKE_CURRENT_LIST_DIR}/param_kernels_baseline.cpp
  ${CMAKE_CURRENT_LIST_DIR}/segment.cpp
  ${CMAKE_CURRENT_LIST_DIR}/validate.cpp)
list(APPEND CHANSIM_AVX2_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/param_kernels_avx2.cpp)
# The batch kernels vectorise only when GCC may evaluate the arms of a select
# unconditionally: -fno-trapping-math drops floating-point *exception flag*
# semantics (Clang's default), never a value; -ffp-contract=off and
# -fno-fast-math still hold. COMPILE_FLAGS, because csrc/CMakeLists.txt sets the
# AVX2 sources' COMPILE_OPTIONS.
# GCC/Clang only: under MSVC's /fp:precise, /fp:except- (no exception-flag
# semantics) is already the default.
if(NOT MSVC)
  set_property(SOURCE
    ${CMAKE_CURRENT_LIST_DIR}/param_kernels_baseline.cpp
    ${CMAKE_CURRENT_LIST_DIR}/param_kernels_avx2.cpp
    APPEND_STRING PROPERTY COMPILE_FLAGS " -fno-trapping-math")
endif()
