# Build helpers for CO-RE BPF programs.
#
# ks_generate_vmlinux_h(DIR): writes DIR/vmlinux.h from the running kernel's BTF.
# ks_bpf_object(NAME SRC): compiles SRC to NAME.bpf.o with clang, generates
#   NAME.skel.h with bpftool, and defines the INTERFACE target NAME_skel whose
#   include directory holds the skeleton. Header dependencies are tracked with
#   clang's -MD output.

find_program(KS_CLANG NAMES clang clang-16 clang-15 clang-14 REQUIRED)
find_program(KS_BPFTOOL NAMES bpftool PATHS /usr/sbin /usr/local/sbin REQUIRED)

set(KS_VMLINUX_BTF "/sys/kernel/btf/vmlinux" CACHE FILEPATH "BTF used to generate vmlinux.h")

function(ks_generate_vmlinux_h dir)
  file(MAKE_DIRECTORY ${dir})
  if(NOT EXISTS ${dir}/vmlinux.h)
    if(NOT EXISTS ${KS_VMLINUX_BTF})
      message(FATAL_ERROR "no kernel BTF at ${KS_VMLINUX_BTF}: killswitch needs a kernel built with CONFIG_DEBUG_INFO_BTF")
    endif()
    execute_process(
      COMMAND ${KS_BPFTOOL} btf dump file ${KS_VMLINUX_BTF} format c
      OUTPUT_FILE ${dir}/vmlinux.h
      RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
      file(REMOVE ${dir}/vmlinux.h)
      message(FATAL_ERROR "bpftool btf dump failed (${rc})")
    endif()
  endif()
endfunction()

# ks_bpf_object(name src [DEFINES MACRO...]): one BPF object and its skeleton;
# the same source can give two objects built with different macros.
function(ks_bpf_object name src)
  cmake_parse_arguments(ARG "" "" "DEFINES" ${ARGN})
  set(defs)
  foreach(d IN LISTS ARG_DEFINES)
    list(APPEND defs -D${d})
  endforeach()
  set(obj ${CMAKE_CURRENT_BINARY_DIR}/bpf/${name}.bpf.o)
  set(skel_dir ${CMAKE_CURRENT_BINARY_DIR}/skel)
  set(skel ${skel_dir}/${name}.skel.h)
  set(dep ${CMAKE_CURRENT_BINARY_DIR}/bpf/${name}.bpf.d)
  set(incs)
  foreach(inc IN LISTS KS_BPF_INCLUDES)
    list(APPEND incs -I${inc})
  endforeach()
  if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
    set(arch x86)
  elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
    set(arch arm64)
  else()
    set(arch ${CMAKE_SYSTEM_PROCESSOR})
  endif()
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_CURRENT_BINARY_DIR}/bpf
    COMMAND ${KS_CLANG} -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_${arch} -Wall -Werror
            ${defs} ${incs} -MD -MF ${dep} -c ${src} -o ${obj}
    DEPENDS ${src}
    DEPFILE ${dep}
    COMMENT "BPF ${name}.bpf.c"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${skel_dir}
    COMMAND sh -c "${KS_BPFTOOL} gen skeleton ${obj} name ${name} > ${skel}.tmp && mv ${skel}.tmp ${skel}"
    DEPENDS ${obj}
    COMMENT "skeleton ${name}.skel.h"
    VERBATIM)
  add_custom_target(${name}_skel_gen DEPENDS ${skel})
  add_library(${name}_skel INTERFACE)
  add_dependencies(${name}_skel ${name}_skel_gen)
  target_include_directories(${name}_skel INTERFACE ${skel_dir})
  target_link_libraries(${name}_skel INTERFACE PkgConfig::LIBBPF)
endfunction()
