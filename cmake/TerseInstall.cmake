# Installs the headers, the exported targets and a package config that
# understands COMPONENTS (cuda, nccl, mpi).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(TERSE_INSTALL_CMAKEDIR "${CMAKE_INSTALL_DATADIR}/cmake/terse"
    CACHE STRING "Where terseConfig.cmake is installed")

install(TARGETS ${terse_exported_targets}
        EXPORT terseTargets
        FILE_SET HEADERS DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
install(EXPORT terseTargets
        NAMESPACE terse::
        DESTINATION "${TERSE_INSTALL_CMAKEDIR}")

# The components this build was configured with; the config rejects asking
# for one that was not built.
set(TERSE_BUILT_COMPONENTS "")
if(terse_has_cuda)
  list(APPEND TERSE_BUILT_COMPONENTS cuda)
endif()
if(terse_has_nccl)
  list(APPEND TERSE_BUILT_COMPONENTS nccl)
endif()
if(terse_has_mpi)
  list(APPEND TERSE_BUILT_COMPONENTS mpi)
endif()

configure_package_config_file(
  "${PROJECT_SOURCE_DIR}/cmake/terseConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/terseConfig.cmake"
  INSTALL_DESTINATION "${TERSE_INSTALL_CMAKEDIR}")
write_basic_package_version_file(
  "${PROJECT_BINARY_DIR}/terseConfigVersion.cmake"
  COMPATIBILITY SameMinorVersion
  ARCH_INDEPENDENT)
install(FILES
  "${PROJECT_BINARY_DIR}/terseConfig.cmake"
  "${PROJECT_BINARY_DIR}/terseConfigVersion.cmake"
  "${PROJECT_SOURCE_DIR}/cmake/FindNCCL.cmake"
  DESTINATION "${TERSE_INSTALL_CMAKEDIR}")
