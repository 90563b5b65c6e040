################################################################################
#
# sba-services
#
################################################################################

# The services build from the checkout that holds this BR2_EXTERNAL tree.
SBA_SERVICES_SITE = $(realpath $(BR2_EXTERNAL_SBA_PATH)/..)
SBA_SERVICES_SITE_METHOD = local
SBA_SERVICES_VERSION = $(shell sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' \
	$(SBA_SERVICES_SITE)/Cargo.toml)

# A local source skips buildroot's download-time vendoring: vendor-crates.sh (next to this file) puts
# the crates in the download directory, and cargo --offline reads them from there. It also writes
# the licenses and license files of the crates linked into the services, for legal-info (read at
# the end of this file).
SBA_SERVICES_VENDOR_DIR = $(DL_DIR)/sba-services/vendor

SBA_SERVICES_LICENSE = Apache-2.0$(if $(SBA_SERVICES_CRATES_LICENSE),$(comma) $(SBA_SERVICES_CRATES_LICENSE))
SBA_SERVICES_LICENSE_FILES = LICENSE $(SBA_SERVICES_CRATES_LICENSE_FILES)

# Build outputs, VM images and test scratch of the checkout are not sources.
SBA_SERVICES_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = \
	--exclude /target --exclude /image/build --exclude /tests/.work --exclude /var \
	--exclude fuzz/target --exclude fuzz/corpus --exclude fuzz/artifacts

define SBA_SERVICES_USE_VENDORED_CRATES
	@test -f $(SBA_SERVICES_VENDOR_DIR)/.sba-cargo-lock.sha256 || { \
		echo "sba-services: no vendored crates in $(SBA_SERVICES_VENDOR_DIR): run" \
			"$(BR2_EXTERNAL_SBA_PATH)/package/sba-services/vendor-crates.sh $(DL_DIR)"; exit 1; }
	@cd $(@D) && sha256sum --quiet -c $(SBA_SERVICES_VENDOR_DIR)/.sba-cargo-lock.sha256 || { \
		echo "sba-services: Cargo.lock changed since the crates were vendored: run" \
			"$(BR2_EXTERNAL_SBA_PATH)/package/sba-services/vendor-crates.sh $(DL_DIR)"; exit 1; }
	mkdir -p $(@D)/.cargo
	printf '[source.crates-io]\nreplace-with = "vendored-sources"\n\n[source.vendored-sources]\ndirectory = "%s"\n' \
		$(SBA_SERVICES_VENDOR_DIR) > $(@D)/.cargo/config.toml
	ln -sfn $(SBA_SERVICES_VENDOR_DIR) $(@D)/vendor
endef
SBA_SERVICES_POST_RSYNC_HOOKS += SBA_SERVICES_USE_VENDORED_CRATES

# The rootfs budget (< 64 MB): the five binaries are most of it, so they are built for size, with
# one codegen unit and LTO so that the linker drops what each does not use, and no debug info.
SBA_SERVICES_CARGO_ENV = \
	CARGO_PROFILE_RELEASE_OPT_LEVEL=s \
	CARGO_PROFILE_RELEASE_LTO=true \
	CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
	CARGO_PROFILE_RELEASE_DEBUG=false

# The test crate runs on the build host only.
SBA_SERVICES_CARGO_BUILD_OPTS = --workspace --exclude holdfast-tests --bins

SBA_SERVICES_PROFILE_DIR = $(if $(BR2_ENABLE_DEBUG),debug,release)

# cargo install refuses a virtual workspace manifest: install the service binaries the workspace has.
define SBA_SERVICES_INSTALL_TARGET_CMDS
	for b in sba-registrar sba-mediation sba-gateway sba-web sbactl; do \
		f=$(@D)/target/$(RUSTC_TARGET_NAME)/$(SBA_SERVICES_PROFILE_DIR)/$$b; \
		if [ -f $$f ]; then $(INSTALL) -D -m 0755 $$f $(TARGET_DIR)/usr/bin/$$b || exit 1; fi; \
	done
	test -x $(TARGET_DIR)/usr/bin/sba-registrar
endef

$(eval $(cargo-package))

# After the eval: buildroot names a package after the last makefile read (read before it, this file
# would make the package "vendor" and sba-services would never be built).
-include $(SBA_SERVICES_VENDOR_DIR)/.sba-legal.mk
