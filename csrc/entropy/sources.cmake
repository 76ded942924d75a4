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
# The parametric batch kernels (why: csrc/CMakeLists.txt).
chansim_no_trapping_math(
  ${CMAKE_CURRENT_LIST_DIR}/param_kernels_baseline.cpp
  ${CMAKE_CURRENT_LIST_DIR}/param_kernels_avx2.cpp)
