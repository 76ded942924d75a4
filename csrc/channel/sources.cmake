list(APPEND CHANSIM_CORE_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/dq.cpp
  ${CMAKE_CURRENT_LIST_DIR}/dq_kernels_baseline.cpp
  ${CMAKE_CURRENT_LIST_DIR}/pfr.cpp
  ${CMAKE_CURRENT_LIST_DIR}/pfr_screen_baseline.cpp)
list(APPEND CHANSIM_CORE_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/gprs.cpp
  ${CMAKE_CURRENT_LIST_DIR}/grc.cpp)
list(APPEND CHANSIM_AVX2_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/dq_kernels_avx2.cpp
  ${CMAKE_CURRENT_LIST_DIR}/pfr_screen_avx2.cpp)
# The tile loops vectorise only when GCC may evaluate select arms
# unconditionally: -fno-trapping-math drops exception-flag semantics, never a
# value (see dq_kernels.inc). COMPILE_FLAGS, because csrc/CMakeLists.txt sets
# the AVX2 sources' COMPILE_OPTIONS.
# GCC/Clang only: under MSVC's /fp:precise, /fp:except- (no exception-flag
# semantics) is already the default.
if(NOT MSVC)
  set_property(SOURCE
    ${CMAKE_CURRENT_LIST_DIR}/dq_kernels_baseline.cpp
    ${CMAKE_CURRENT_LIST_DIR}/dq_kernels_avx2.cpp
    APPEND_STRING PROPERTY COMPILE_FLAGS " -fno-trapping-math")
endif()
