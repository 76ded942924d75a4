list(APPEND CHANSIM_CORE_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/parallel.cpp
  ${CMAKE_CURRENT_LIST_DIR}/prng.cpp
  ${CMAKE_CURRENT_LIST_DIR}/prng_kernels_baseline.cpp)
list(APPEND CHANSIM_AVX2_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/prng_kernels_avx2.cpp)
