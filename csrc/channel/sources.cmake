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
# The DQ tile loops (see dq_kernels.inc and csrc/CMakeLists.txt for why).
chansim_no_trapping_math(
  ${CMAKE_CURRENT_LIST_DIR}/dq_kernels_baseline.cpp
  ${CMAKE_CURRENT_LIST_DIR}/dq_kernels_avx2.cpp)
