# Included after project() by tools/zig/toolchain.cmake: once the top-level CMakeLists.txt has
# defined its targets, every binary that links chansim_core (the Python module, the C++ tests)
# compiles cpu_model.cpp, whose strong __cpu_model replaces the zero stub in zig's compiler-rt.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64|amd64")
  function(chansim_zig_cpu_model)
    if(TARGET chansim_core)
      target_sources(chansim_core INTERFACE ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/cpu_model.cpp)
    endif()
  endfunction()
  cmake_language(DEFER DIRECTORY ${CMAKE_SOURCE_DIR} CALL chansim_zig_cpu_model)
endif()
