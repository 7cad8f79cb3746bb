# Installs the headers, the exported targets and a package config that
# understands COMPONENTS (cuda, nccl, mpi, blas):
#   <prefix>/include/terse/...                       the headers (FILE_SET HEADERS of terse::terse)
#   <prefix>/share/cmake/terse/terseConfig.cmake      components, find_dependency, version check
#   <prefix>/share/cmake/terse/terse-targets.cmake    terse::terse
#   <prefix>/share/cmake/terse/terse-<c>-targets.cmake  terse::<c>, loaded only when <c> is asked for
#   <prefix>/share/cmake/terse/FindNCCL.cmake         for find_dependency(NCCL)
# terse is header-only, so the package is architecture independent and
# lives under share/.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(TERSE_INSTALL_CMAKEDIR "${CMAKE_INSTALL_DATADIR}/cmake/terse"
    CACHE STRING "Where terseConfig.cmake is installed")

install(TARGETS terse
        EXPORT terse-targets
        FILE_SET HEADERS DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
install(EXPORT terse-targets
        NAMESPACE terse::
        DESTINATION "${TERSE_INSTALL_CMAKEDIR}")

# One export file per backend, so a consumer that did not ask for (and did
# not find the dependencies of) a component never sees its target. The
# components this build has are baked into the config, which rejects asking
# for one that was not built.
set(TERSE_BUILT_COMPONENTS "")
foreach(component IN ITEMS cuda nccl mpi blas)
  if(TARGET terse_${component})
    install(TARGETS terse_${component} EXPORT terse-${component}-targets)
    install(EXPORT terse-${component}-targets
            NAMESPACE terse::
            DESTINATION "${TERSE_INSTALL_CMAKEDIR}")
    list(APPEND TERSE_BUILT_COMPONENTS ${component})
  endif()
endforeach()

configure_package_config_file(
  "${PROJECT_SOURCE_DIR}/cmake/terseConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/terseConfig.cmake"
  INSTALL_DESTINATION "${TERSE_INSTALL_CMAKEDIR}")
# 0.x: a minor version may break the API, so 0.1 accepts 0.1.* only.
write_basic_package_version_file(
  "${PROJECT_BINARY_DIR}/terseConfigVersion.cmake"
  COMPATIBILITY SameMinorVersion
  ARCH_INDEPENDENT)
install(FILES
  "${PROJECT_BINARY_DIR}/terseConfig.cmake"
  "${PROJECT_BINARY_DIR}/terseConfigVersion.cmake"
  "${PROJECT_SOURCE_DIR}/cmake/FindNCCL.cmake"
  DESTINATION "${TERSE_INSTALL_CMAKEDIR}")
