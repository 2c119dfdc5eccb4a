# The Debian package (cpack -G DEB in the build directory): the binary in
# /usr/sbin, the policy as a conffile in /etc/killswitch (the built-in
# policy, commented), /etc/killswitch/policy.d for drop-ins, the systemd
# unit, the logrotate file and the docs. docs/operations.md says how to
# build, install and run it.
include(GNUInstallDirs)

set(KS_PKG ${CMAKE_SOURCE_DIR}/scripts/package)
set(KS_PKG_BUILD ${CMAKE_BINARY_DIR}/package)

# The shipped policy is what `killswitch policy show-default` prints: the
# daemon's defaults, every key with its comment.
add_custom_command(OUTPUT ${KS_PKG_BUILD}/policy.yaml
  COMMAND ${CMAKE_COMMAND} -E make_directory ${KS_PKG_BUILD}
  COMMAND $<TARGET_FILE:killswitch> policy show-default > ${KS_PKG_BUILD}/policy.yaml
  DEPENDS killswitch
  COMMENT "Writing the packaged policy (killswitch policy show-default)")
add_custom_target(ks_package_policy ALL DEPENDS ${KS_PKG_BUILD}/policy.yaml)

install(TARGETS killswitch RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})
install(FILES ${KS_PKG_BUILD}/policy.yaml DESTINATION /etc/killswitch
  PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ)
install(FILES ${KS_PKG}/policy.d-README DESTINATION /etc/killswitch/policy.d RENAME README)
install(FILES ${KS_PKG}/killswitch.service DESTINATION /lib/systemd/system)
install(FILES ${KS_PKG}/killswitch.logrotate DESTINATION /etc/logrotate.d RENAME killswitch)
install(FILES README.md docs/operations.md docs/policy.md docs/audit-schema.md
  docs/guarantees.md docs/database-protection.md docs/architecture.md docs/performance.md
  DESTINATION ${CMAKE_INSTALL_DOCDIR})

# conffiles: dpkg keeps an operator's changes to these on upgrade.
file(WRITE ${KS_PKG_BUILD}/conffiles
  "/etc/killswitch/policy.yaml\n/etc/killswitch/policy.d/README\n/etc/logrotate.d/killswitch\n")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME killswitch)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "killswitch maintainers <killswitch@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "stops AI agents from destroying data, from inside the kernel (eBPF)")
set(CPACK_PACKAGE_DESCRIPTION
  "killswitch watches AI agent processes and their descendants with eBPF and stops\n destructive actions on protected data and databases: deleting or overwriting\n files, DROP, TRUNCATE, DELETE without WHERE, FLUSHALL. Every decision goes to an\n audit trail.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Library dependencies as dpkg-shlibdeps finds them in the binary.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "logrotate")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${KS_PKG_BUILD}/conffiles ${KS_PKG}/postinst ${KS_PKG}/prerm ${KS_PKG}/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES TRUE)
include(CPack)
