# qslab build hash for the ESP-IDF port (firmware/ports/esp32), the ESP32 counterpart of firmware/Makefile's
# QS_BUILD_HASH. Same recipe: the first 16 hex digits (lower case) of SHA-256 over, for every hashed file in sorted
# order (byte order of the path, as make's $(sort)), "<path relative to firmware/>\n<contents>", followed by a
# build-settings trailer. The Makefile's trailer is "CFLAGS=<flags>\nLDLIBS=<libs>\n"; here the compiler flags
# come from ESP-IDF and the sdkconfig, so the trailer is "IDF_TARGET=<target>\nIDF_VER=<ESP-IDF version>\n" and
# the files that decide the configuration (sdkconfig.defaults, partitions.csv, the CMake files, Kconfig) are
# hashed like sources.
#
# Hashed files (paths relative to firmware/):
#   core/*.c core/*.h core/pqc/*.c core/pqc/*.h crypto/mbedtls.c crypto/*.h ports/sock_bsd.c ports/heap_count.c ports/stack_paint.c ports/stack_paint.h
#   ports/esp32/CMakeLists.txt ports/esp32/qs_build_hash.cmake ports/esp32/sdkconfig.defaults
#   ports/esp32/partitions.csv ports/esp32/main/CMakeLists.txt ports/esp32/main/Kconfig.projbuild
#   ports/esp32/main/*.c ports/esp32/main/*.h
# Not hashed: the generated sdkconfig (it does not exist before the first configure, so hashing it would make
# the first and the second build of the same tree differ); a local `idf.py menuconfig` change is therefore not
# reflected in the hash (README.md, "Build hash").
#
# Used two ways:
#   - included by ../CMakeLists.txt (project mode): qs_build_hash(<out-var> <firmware-dir> <target> <idf-ver>)
#   - as a script, without ESP-IDF, to print the hash an image will carry:
#       cmake -DIDF_TARGET=esp32 -DIDF_VER=v5.1.2 -P firmware/ports/esp32/qs_build_hash.cmake
#     (IDF_VER exactly as the build reports it: `idf.py --version`, or the "IDF_VER" line of the configure log)

function(qs_build_hash_files out_var fw_dir)
    set(patterns
        core/*.c core/*.h core/pqc/*.c core/pqc/*.h crypto/mbedtls.c crypto/*.h ports/sock_bsd.c ports/heap_count.c ports/stack_paint.c ports/stack_paint.h
        ports/esp32/CMakeLists.txt ports/esp32/qs_build_hash.cmake ports/esp32/sdkconfig.defaults
        ports/esp32/partitions.csv ports/esp32/main/CMakeLists.txt ports/esp32/main/Kconfig.projbuild
        ports/esp32/main/*.c ports/esp32/main/*.h)
    set(rel_files "")
    foreach(p IN LISTS patterns)
        if(p MATCHES "[*]")
            if(CMAKE_SCRIPT_MODE_FILE)
                file(GLOB found RELATIVE "${fw_dir}" "${fw_dir}/${p}")
            else()
                # CONFIGURE_DEPENDS: a file added or removed later re-runs the configure step (new hash)
                file(GLOB found RELATIVE "${fw_dir}" CONFIGURE_DEPENDS "${fw_dir}/${p}")
            endif()
            list(APPEND rel_files ${found})
        elseif(EXISTS "${fw_dir}/${p}")
            list(APPEND rel_files "${p}")
        endif()
    endforeach()
    list(REMOVE_DUPLICATES rel_files)
    list(SORT rel_files COMPARE STRING)
    set(${out_var} "${rel_files}" PARENT_SCOPE)
endfunction()

function(qs_build_hash out_var fw_dir target idf_ver)
    qs_build_hash_files(rel_files "${fw_dir}")
    set(data "")
    foreach(f IN LISTS rel_files)
        file(READ "${fw_dir}/${f}" contents)
        string(APPEND data "${f}\n" "${contents}")
    endforeach()
    string(APPEND data "IDF_TARGET=${target}\nIDF_VER=${idf_ver}\n")
    string(SHA256 digest "${data}")
    string(SUBSTRING "${digest}" 0 16 digest)
    string(TOLOWER "${digest}" digest)
    set(${out_var} "${digest}" PARENT_SCOPE)
    if(NOT CMAKE_SCRIPT_MODE_FILE)
        # editing any hashed file re-runs the configure step, so PROJECT_VER and QS_BUILD_HASH follow it
        set(abs_files "")
        foreach(f IN LISTS rel_files)
            list(APPEND abs_files "${fw_dir}/${f}")
        endforeach()
        set_property(DIRECTORY "${CMAKE_CURRENT_SOURCE_DIR}" APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${abs_files})
    endif()
endfunction()

# An explicit hash (-DQS_BUILD_HASH=... or the environment variable QS_BUILD_HASH) must follow the contract of
# controller/flash/esptool.ts: 1-16 lower-case hex digits.
function(qs_build_hash_check value where)
    if(NOT value MATCHES "^[0-9a-f]+$")
        message(FATAL_ERROR "${where} '${value}' is not a qslab build hash (1-16 lower-case hex digits)")
    endif()
    string(LENGTH "${value}" n)
    if(n GREATER 16)
        message(FATAL_ERROR "${where} '${value}' is longer than 16 hex digits")
    endif()
endfunction()

if(CMAKE_SCRIPT_MODE_FILE AND CMAKE_SCRIPT_MODE_FILE STREQUAL CMAKE_CURRENT_LIST_FILE)
    if(NOT DEFINED IDF_TARGET OR NOT DEFINED IDF_VER)
        message(FATAL_ERROR "usage: cmake -DIDF_TARGET=esp32|esp32s3 -DIDF_VER=<ESP-IDF version> -P qs_build_hash.cmake")
    endif()
    get_filename_component(_qs_fw_dir "${CMAKE_CURRENT_LIST_DIR}/../.." ABSOLUTE)
    qs_build_hash(_qs_hash "${_qs_fw_dir}" "${IDF_TARGET}" "${IDF_VER}")
    # stdout, without CMake's "-- " prefix
    execute_process(COMMAND "${CMAKE_COMMAND}" -E echo "${_qs_hash}")
endif()
