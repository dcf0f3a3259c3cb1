# version.cmake — run at every build: writes generated/qsweep/version.h from `git describe`,
# touching the file only when the version changed (so an unchanged tree rebuilds nothing).
execute_process(COMMAND git describe --always --dirty --tags
  WORKING_DIRECTORY ${SRC_DIR} OUTPUT_VARIABLE QSWEEP_GIT_VERSION
  OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(NOT QSWEEP_GIT_VERSION)
  set(QSWEEP_GIT_VERSION "unknown")
endif()
configure_file(${SRC_DIR}/src/core/version.h.in ${DST} @ONLY)
