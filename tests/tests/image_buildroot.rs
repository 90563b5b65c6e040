//! The buildroot external tree, checked without building it. Static checks run everywhere: the tree's
//! declarations, both boards' defconfigs, the kernel options and patches the appliance needs, the
//! overlays the defconfigs name, the units, journald's budget, the tone zone, the firewall, and
//! post-build.sh on a stand-in target. Checks that need a buildroot checkout (BUILDROOT_DIR: `make
//! defconfig` there, `utils/check-package`) or a host tool are marked ignored when it is absent, so the
//! runner reports them skipped, with the reason in brackets before their name; run anyway
//! (`--ignored`), they fail.
//!
//! A libtest-mimic harness (`harness = false` in tests/Cargo.toml): libtest and nextest decide what
//! is ignored when they list the tests, not at run time.
use anyhow::{bail, ensure, Context, Result};
use libtest_mimic::{Arguments, Failed, Trial};
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let args = Arguments::from_args();
    let buildroot = std::env::var_os("BUILDROOT_DIR").map(PathBuf::from);
    let needs_buildroot = |name: &'static str, check: fn(&Path) -> Result<()>| {
        let dir = buildroot.clone();
        let trial = Trial::test(name, move || {
            let dir = dir.context("BUILDROOT_DIR is not set: it names a buildroot checkout (2026.05 or later)")?;
            check(&dir).map_err(failed)
        });
        match buildroot {
            Some(_) => trial,
            None => trial.with_kind("needs BUILDROOT_DIR").with_ignored_flag(true),
        }
    };
    let needs_tool = |name: &'static str, tool: &'static str, check: fn() -> Result<()>| {
        let trial = Trial::test(name, move || check().map_err(failed));
        if has_tool(tool) {
            trial
        } else {
            trial.with_kind(format!("needs {tool}")).with_ignored_flag(true)
        }
    };
    let trials = vec![
        needs_buildroot("defconfigs_survive_make_in_buildroot", defconfigs_survive_make_in_buildroot),
        needs_buildroot("tree_passes_check_package", tree_passes_check_package),
        Trial::test("external_tree_declares_and_sources_its_packages", || run(external_tree_declares_and_sources_its_packages)),
        Trial::test("defconfigs_name_files_that_exist", || run(defconfigs_name_files_that_exist)),
        Trial::test("defconfigs_are_the_appliance", || run(defconfigs_are_the_appliance)),
        Trial::test("boards_differ_only_in_their_board_files", || run(boards_differ_only_in_their_board_files)),
        Trial::test("dahdi_linux_builds_against_the_kernel", || run(dahdi_linux_builds_against_the_kernel)),
        Trial::test("sandboxing_of_the_units_is_applied", || run(sandboxing_of_the_units_is_applied)),
        Trial::test("journald_fits_the_rootfs", || run(journald_fits_the_rootfs)),
        Trial::test("tone_zone_matches_the_number_plan", || run(tone_zone_matches_the_number_plan)),
        Trial::test("readme_states_the_default_span", || run(readme_states_the_default_span)),
        Trial::test("units_start_only_what_the_image_has", || run(units_start_only_what_the_image_has)),
        Trial::test("resolved_and_timesyncd_start_after_the_services", || run(resolved_and_timesyncd_start_after_the_services)),
        needs_tool("units_pass_systemd_analyze_verify", "systemd-analyze", units_pass_systemd_analyze_verify),
        Trial::test("firewall_lets_in_only_the_services", || run(firewall_lets_in_only_the_services)),
        needs_tool("firewall_rules_load", "iptables-legacy-restore", firewall_rules_load),
        Trial::test("legal_info_names_the_crates_licenses", || run(legal_info_names_the_crates_licenses)),
        Trial::test("services_are_built_for_size", || run(services_are_built_for_size)),
        Trial::test("udev_rules_for_absent_hardware_are_masked", || run(udev_rules_for_absent_hardware_are_masked)),
        Trial::test("post_build_accepts_a_complete_target_and_refuses_an_incomplete_one", || {
            run(post_build_accepts_a_complete_target_and_refuses_an_incomplete_one)
        }),
        Trial::test("post_build_notes_only_conditions_that_fail", || run(post_build_notes_only_conditions_that_fail)),
        Trial::test("rootfs_room_refuses_an_image_the_first_boot_cannot_write", || run(rootfs_room_refuses_an_image_the_first_boot_cannot_write)),
        Trial::test("post_build_refuses_a_kernel_without_the_fragments_options", || {
            run(post_build_refuses_a_kernel_without_the_fragments_options)
        }),
    ];
    libtest_mimic::run(&args, trials).exit();
}

fn failed(e: anyhow::Error) -> Failed {
    format!("{e:#}").into()
}

fn run(check: fn() -> Result<()>) -> Result<(), Failed> {
    check().map_err(failed)
}

fn has_tool(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success())
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().expect("repository root")
}

fn tree() -> PathBuf {
    repo().join("buildroot")
}

fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn scratch(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hf-br-{what}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    dir
}

/// One defconfig of configs/: its name and its assignments (`BR2_X=value`, `# BR2_X is not set`).
struct Defconfig {
    name: String,
    lines: Vec<String>,
}

impl Defconfig {
    fn all() -> Result<Vec<Defconfig>> {
        let mut all = Vec::new();
        for entry in fs::read_dir(tree().join("configs"))? {
            let path = entry?.path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            ensure!(name.starts_with("sba_") && name.ends_with("_defconfig"), "configs/{name} is not named sba_*_defconfig");
            let lines = read(&path)?
                .lines()
                .map(str::trim)
                .filter(|l| l.starts_with("BR2_") || (l.starts_with("# BR2_") && l.ends_with(" is not set")))
                .map(str::to_string)
                .collect();
            all.push(Defconfig { name, lines });
        }
        all.sort_by(|a, b| a.name.cmp(&b.name));
        ensure!(all.len() >= 2, "configs/ must hold the qemu board and the real-hardware board");
        Ok(all)
    }

    fn has(&self, line: &str) -> bool {
        self.lines.iter().any(|l| l == line)
    }

    fn value(&self, key: &str) -> Result<String> {
        self.lines
            .iter()
            .find_map(|l| l.strip_prefix(&format!("{key}=")).map(|v| v.trim_matches('"').to_string()))
            .with_context(|| format!("{key} is not in {}", self.name))
    }

    /// A space-separated list of paths, with the external tree's variable expanded.
    fn paths(&self, key: &str) -> Result<Vec<PathBuf>> {
        Ok(self.value(key)?.split_whitespace().map(external_path).collect())
    }

    /// The kernel options the board's own config (if any) and the fragments set (`CONFIG_X=y` lines).
    fn kernel_options(&self) -> Result<BTreeSet<String>> {
        let mut options = BTreeSet::new();
        let own = self.paths("BR2_LINUX_KERNEL_CUSTOM_CONFIG_FILE").unwrap_or_default();
        for fragment in own.into_iter().chain(self.paths("BR2_LINUX_KERNEL_CONFIG_FRAGMENT_FILES")?) {
            for line in read(&fragment)?.lines().map(str::trim).filter(|l| l.starts_with("CONFIG_")) {
                options.insert(line.to_string());
            }
        }
        Ok(options)
    }
}

/// A path of a defconfig, with the external tree's variable expanded.
fn external_path(value: &str) -> PathBuf {
    PathBuf::from(value.replace("$(BR2_EXTERNAL_SBA_PATH)", &tree().display().to_string()))
}

/// A size as buildroot and journald write it (`64M`, `512K`), in bytes.
fn size_bytes(text: &str) -> Result<u64> {
    let text = text.trim();
    let (digits, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: u64 = digits.parse().with_context(|| format!("size {text}"))?;
    Ok(n * match unit {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        _ => bail!("size {text}: unknown unit"),
    })
}

fn sba_toml() -> Result<toml::Table> {
    let path = repo().join("image/overlay/etc/sba/sba.toml");
    read(&path)?.parse().with_context(|| format!("parsing {}", path.display()))
}

fn defconfigs_survive_make_in_buildroot(buildroot: &Path) -> Result<()> {
    for defconfig in Defconfig::all()? {
        let out_dir = scratch("defconfig");
        let out = Command::new("make")
            .arg("-C")
            .arg(buildroot)
            .arg(format!("BR2_EXTERNAL={}", tree().display()))
            .arg(format!("O={}", out_dir.display()))
            .arg(&defconfig.name)
            .output()
            .context("running make (apt-get install make gcc)")?;
        ensure!(
            out.status.success(),
            "make {} failed:\n{}{}",
            defconfig.name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let config = read(&out_dir.join(".config"))?;
        let have: BTreeSet<&str> = config.lines().map(str::trim).collect();
        let lost: Vec<&String> = defconfig.lines.iter().filter(|l| !have.contains(l.as_str())).collect();
        ensure!(lost.is_empty(), "buildroot dropped or changed these lines of {}: {lost:#?}", defconfig.name);

        // The package's makefile as buildroot evaluates it (no download, no build), with the
        // crates' licenses vendor-crates.sh writes into the download directory present, as in a
        // real build.
        let dl = out_dir.join("dl");
        let vendor = dl.join("sba-services/vendor");
        fs::create_dir_all(&vendor)?;
        fs::write(vendor.join(".sba-legal.mk"), "SBA_SERVICES_CRATES_LICENSE = MIT (crates)\n")?;
        let vars = Command::new("make")
            .arg("-C")
            .arg(&out_dir)
            .env("BR2_DL_DIR", &dl)
            .arg("printvars")
            .arg("VARS=PACKAGES SBA_SERVICES_VERSION SBA_SERVICES_SITE_METHOD SBA_SERVICES_OVERRIDE_SRCDIR SBA_SERVICES_DEPENDENCIES SBA_SERVICES_LICENSE")
            .output()?;
        let vars = String::from_utf8_lossy(&vars.stdout).into_owned();
        let _ = fs::remove_dir_all(&out_dir);
        for wanted in [
            "SBA_SERVICES_VERSION=0.".to_string(),
            "SBA_SERVICES_SITE_METHOD=local".to_string(),
            format!("SBA_SERVICES_OVERRIDE_SRCDIR={}", repo().display()),
        ] {
            ensure!(vars.lines().any(|l| l.starts_with(&wanted)), "{}: printvars lacks {wanted}:\n{vars}", defconfig.name);
        }
        ensure!(vars.contains("host-rustc"), "sba-services does not depend on host-rustc:\n{vars}");
        let packages = vars.lines().find_map(|l| l.strip_prefix("PACKAGES=")).unwrap_or_default();
        ensure!(
            packages.split_whitespace().any(|p| p == "sba-services"),
            "{}: sba-services is not among the packages buildroot builds: {packages}",
            defconfig.name
        );
        ensure!(vars.contains("MIT (crates)"), "{}: the crates' licenses are not in SBA_SERVICES_LICENSE:\n{vars}", defconfig.name);
    }
    Ok(())
}

/// Buildroot's own style checker over every file of the tree.
fn tree_passes_check_package(buildroot: &Path) -> Result<()> {
    let out = Command::new("find").arg(tree()).args(["-type", "f"]).output()?;
    let files: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|f| !f.ends_with("README.md"))
        .map(str::to_string)
        .collect();
    let out = Command::new(buildroot.join("utils/check-package"))
        .arg("-b")
        .args(&files)
        .current_dir(tree())
        .output()
        .context("running utils/check-package (it needs python3 with python-magic and flake8, and shellcheck)")?;
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    ensure!(out.status.success() && report.contains("0 warnings generated"), "utils/check-package:\n{report}");
    Ok(())
}

fn external_tree_declares_and_sources_its_packages() -> Result<()> {
    let desc = read(&tree().join("external.desc"))?;
    ensure!(desc.lines().any(|l| l.trim() == "name: SBA"), "external.desc must be named SBA (BR2_EXTERNAL_SBA_PATH)");
    ensure!(read(&tree().join("external.mk"))?.contains("$(BR2_EXTERNAL_SBA_PATH)/package/"), "external.mk includes no package");

    let sourced: BTreeSet<String> = read(&tree().join("Config.in"))?
        .lines()
        .filter_map(|l| l.trim().strip_prefix("source "))
        .map(|s| s.trim_matches('"').to_string())
        .collect();
    let mut dirs = BTreeSet::new();
    for entry in fs::read_dir(tree().join("package"))? {
        dirs.insert(entry?.file_name().to_string_lossy().into_owned());
    }
    for s in &sourced {
        let path = external_path(&s.replace("$BR2_EXTERNAL_SBA_PATH", "$(BR2_EXTERNAL_SBA_PATH)"));
        ensure!(path.is_file(), "Config.in sources {s}, which does not exist");
    }
    for pkg in &dirs {
        let wanted = format!("$BR2_EXTERNAL_SBA_PATH/package/{pkg}/Config.in");
        ensure!(sourced.contains(&wanted), "Config.in does not source package/{pkg}");
        check_package(pkg)?;
    }
    ensure!(dirs.contains("sba-services"), "no package/sba-services");
    Ok(())
}

/// A package's Config.in defines BR2_PACKAGE_<NAME>, and every variable of its .mk is <NAME>_...
fn check_package(pkg: &str) -> Result<()> {
    let upper = pkg.to_uppercase().replace('-', "_");
    let dir = tree().join("package").join(pkg);
    let config = read(&dir.join("Config.in"))?;
    ensure!(
        config.lines().any(|l| l.trim() == format!("config BR2_PACKAGE_{upper}")),
        "package/{pkg}/Config.in does not define BR2_PACKAGE_{upper}"
    );
    let mk = read(&dir.join(format!("{pkg}.mk")))?;
    ensure!(mk.contains("$(eval $(cargo-package))") || mk.contains("$(eval $(generic-package))"), "{pkg}.mk evaluates no package infrastructure");
    for line in mk.lines().filter(|l| !l.starts_with('#') && !l.starts_with('\t') && !l.trim().is_empty()) {
        let name = match line.strip_prefix("define ") {
            Some(rest) => rest.trim(),
            None => match line.find(['=', '+', '?', ':']) {
                Some(i) if !line.starts_with("$(") && !line.starts_with("endef") && !line.starts_with(' ') && !line.starts_with("-include") => {
                    line[..i].trim()
                }
                _ => continue,
            },
        };
        ensure!(name.starts_with(&format!("{upper}_")), "{pkg}.mk defines {name}, not named {upper}_...");
    }
    Ok(())
}

fn defconfigs_name_files_that_exist() -> Result<()> {
    for defconfig in Defconfig::all()? {
        let overlays = defconfig.paths("BR2_ROOTFS_OVERLAY")?;
        ensure!(
            overlays.first().map(|o| o.canonicalize().ok()) == Some(repo().join("image/overlay").canonicalize().ok()),
            "{}: the buildroot image must start from the overlay of the VM image (image/overlay)",
            defconfig.name
        );
        for overlay in &overlays {
            ensure!(overlay.is_dir(), "{}: overlay {} is not a directory", defconfig.name, overlay.display());
        }
        let mut scripts = Vec::new();
        for key in [
            "BR2_ROOTFS_POST_BUILD_SCRIPT",
            "BR2_ROOTFS_POST_IMAGE_SCRIPT",
            "BR2_LINUX_KERNEL_CUSTOM_CONFIG_FILE",
            "BR2_LINUX_KERNEL_CONFIG_FRAGMENT_FILES",
            "BR2_GLOBAL_PATCH_DIR",
        ] {
            let Ok(paths) = defconfig.paths(key) else { continue };
            for path in paths {
                ensure!(path.exists(), "{}: {key} names {}, which does not exist", defconfig.name, path.display());
                if key.ends_with("_SCRIPT") {
                    ensure!(is_executable(&path), "{} is not executable", path.display());
                    scripts.push(path);
                }
            }
        }
        scripts.push(tree().join("package/sba-services/vendor-crates.sh"));
        for script in scripts {
            let out = Command::new("bash").arg("-n").arg(&script).output()?;
            ensure!(out.status.success(), "{}: {}", script.display(), String::from_utf8_lossy(&out.stderr));
            ensure!(read(&script)?.contains("set -euo pipefail"), "{} lacks set -euo pipefail", script.display());
        }
    }
    Ok(())
}

fn defconfigs_are_the_appliance() -> Result<()> {
    for d in Defconfig::all()? {
        for wanted in [
            "BR2_x86_64=y",
            "BR2_INIT_SYSTEMD=y",
            "BR2_LINUX_KERNEL=y",
            "BR2_PACKAGE_DAHDI_LINUX=y",
            "BR2_PACKAGE_SBA_SERVICES=y",
            "BR2_PACKAGE_IPTABLES=y",
            "BR2_TARGET_ROOTFS_EXT2=y",
            "BR2_TARGET_ROOTFS_EXT2_4=y",
            // What a branch box never reads: the hardware database (udev's largest part), locales.
            "# BR2_PACKAGE_SYSTEMD_HWDB is not set",
            // ACPI power button (qemu's system_powerdown, a box's power key): a clean shutdown.
            "BR2_PACKAGE_SYSTEMD_LOGIND=y",
            "BR2_ENABLE_LOCALE_WHITELIST=\"C\"",
        ] {
            ensure!(d.has(wanted), "{} lacks {wanted}", d.name);
        }
        // sba-gateway configures its span through DAHDI's ioctls: nothing runs dahdi_cfg, so neither
        // dahdi-tools nor the perl it selects (57 MB) nor libpri (the test image's far end) belongs here.
        for unwanted in ["BR2_PACKAGE_DAHDI_TOOLS=y", "BR2_PACKAGE_PERL=y", "BR2_PACKAGE_LIBPRI=y"] {
            ensure!(!d.has(unwanted), "{} has {unwanted}, which the appliance does not use", d.name);
        }
        // No empty root password on the console: either no password login for root, or a hashed one.
        let locked = d.has("# BR2_TARGET_ENABLE_ROOT_LOGIN is not set");
        let hashed = d.value("BR2_TARGET_GENERIC_ROOT_PASSWD").is_ok_and(|p| p.starts_with("$6$") || p.starts_with("$5$"));
        ensure!(locked || hashed, "{}: root logs in on the console with an empty or clear-text password", d.name);
        // The rootfs is small: the size buildroot makes the ext4 (systemd-growfs fills a larger disk at boot).
        let size = size_bytes(&d.value("BR2_TARGET_ROOTFS_EXT2_SIZE")?)?;
        ensure!(size < 64_000_000, "{}: rootfs of {size} bytes, not under 64 MB", d.name);
        // buildroot's default mkfs spends ~9 MiB of a 60 MiB ext4 on inode tables (15360 inodes), the
        // journal (4 MiB) and root's reserve (5%): the target (60.1 MB, measured) then does not fit.
        let inodes: u64 = d.value("BR2_TARGET_ROOTFS_EXT2_INODES")?.parse().context("BR2_TARGET_ROOTFS_EXT2_INODES")?;
        ensure!((2_500..=8_192).contains(&inodes), "{}: {inodes} inodes (the target has ~2500 files; buildroot's default spends 3.75 MiB on 15360)", d.name);
        ensure!(d.value("BR2_TARGET_ROOTFS_EXT2_RESBLKS")? == "0", "{}: blocks reserved for root in a rootfs with no room to spare", d.name);
        let mkfs = d.value("BR2_TARGET_ROOTFS_EXT2_MKFS_OPTIONS")?;
        ensure!(mkfs.contains("-J size=1"), "{}: mkfs options {mkfs:?} keep the default journal (4 MiB)", d.name);
    }
    Ok(())
}

/// The real-hardware board and the qemu one share everything but board/sba/{pc,qemu}.
fn boards_differ_only_in_their_board_files() -> Result<()> {
    let all = Defconfig::all()?;
    let qemu = all.iter().find(|d| d.name.contains("qemu")).context("no qemu defconfig")?;
    let pc = all.iter().find(|d| d.name.contains("_pc_")).context("no real-hardware (pc) defconfig")?;
    let board_specific = |l: &str| {
        l.contains("board/sba/qemu") || l.contains("board/sba/pc") || l.contains("GRUB2") || l.contains("GENIMAGE")
            || l.contains("DOSFSTOOLS") || l.contains("MTOOLS") || l.starts_with("BR2_TARGET_GENERIC_GETTY_PORT")
            || l.starts_with("BR2_ROOTFS_POST_IMAGE_SCRIPT") || l.starts_with("BR2_ROOTFS_OVERLAY")
            // A box's kernel starts from x86_64_defconfig (unknown hardware); the VM's from its own config.
            || l == "BR2_LINUX_KERNEL_USE_ARCH_DEFAULT_CONFIG=y" || l == "BR2_LINUX_KERNEL_USE_CUSTOM_CONFIG=y"
    };
    let common = |d: &Defconfig| -> BTreeSet<String> { d.lines.iter().filter(|l| !board_specific(l)).cloned().collect() };
    let (q, p) = (common(qemu), common(pc));
    ensure!(q == p, "the boards differ beyond their board files: qemu only {:?}, pc only {:?}", q.difference(&p).collect::<Vec<_>>(), p.difference(&q).collect::<Vec<_>>());

    let pc_kernel = pc.kernel_options()?;
    for wanted in ["CONFIG_ITCO_WDT=y", "CONFIG_SP5100_TCO=y", "CONFIG_SERIAL_8250_CONSOLE=y", "CONFIG_EFI_STUB=y"] {
        ensure!(pc_kernel.contains(wanted), "the pc board's kernel lacks {wanted}");
    }
    ensure!(qemu.kernel_options()?.contains("CONFIG_FW_CFG_SYSFS=y"), "the qemu board cannot read the tests' fw_cfg scripts");
    ensure!(qemu.kernel_options()?.contains("CONFIG_PVH=y"), "the qemu board's vmlinux has no PVH entry for image/qemu to boot");
    let grub = read(&tree().join("board/sba/pc/grub.cfg"))?;
    ensure!(grub.contains("console=ttyS0,115200"), "the pc board has no serial console");
    Ok(())
}

/// dahdi-linux 3.3.0's drivers define a MAX of their own, which stable kernels now define too
/// (`"MAX" redefined [-Werror]`): a patch in BR2_GLOBAL_PATCH_DIR renames it in every such driver.
fn dahdi_linux_builds_against_the_kernel() -> Result<()> {
    for d in Defconfig::all()? {
        let version = d.value("BR2_LINUX_KERNEL_CUSTOM_VERSION_VALUE")?;
        ensure!(version.starts_with("6.1."), "{}: kernel {version}; dahdi-linux 3.3.0 is built and booted here against 6.1", d.name);
        let patches = d.paths("BR2_GLOBAL_PATCH_DIR")?;
        let dir = patches.first().context("no BR2_GLOBAL_PATCH_DIR")?.join("dahdi-linux");
        let mut patched = BTreeSet::new();
        for entry in fs::read_dir(&dir).with_context(|| format!("{}: no dahdi-linux patches", d.name))? {
            let text = read(&entry?.path())?;
            ensure!(text.contains("Upstream: ") && text.contains("Signed-off-by: "), "a dahdi-linux patch lacks Upstream:/Signed-off-by:");
            let mut file = None;
            for line in text.lines() {
                if let Some(f) = line.strip_prefix("+++ b/") {
                    file = Some(f.to_string());
                } else if line.starts_with("-") && line.contains("#define MAX ") {
                    patched.extend(file.clone());
                }
            }
        }
        for driver in ["drivers/dahdi/wctdm24xxp/base.c", "drivers/dahdi/wcaxx-base.c", "drivers/dahdi/wctdm.c"] {
            ensure!(patched.contains(driver), "{driver} keeps its MAX (no patch renames it)");
        }
    }
    Ok(())
}

/// The units' SystemCallFilter=, MemoryDenyWriteExecute=, RestrictAddressFamilies= need systemd built
/// with libseccomp; DevicePolicy=/DeviceAllow= and IPAddressDeny= need cgroup BPF in the kernel.
fn sandboxing_of_the_units_is_applied() -> Result<()> {
    for d in Defconfig::all()? {
        ensure!(d.has("BR2_PACKAGE_LIBSECCOMP=y"), "{}: systemd is built -SECCOMP without libseccomp", d.name);
        let options = d.kernel_options()?;
        for wanted in ["CONFIG_BPF_SYSCALL=y", "CONFIG_CGROUP_BPF=y", "CONFIG_SECCOMP_FILTER=y"] {
            ensure!(options.contains(wanted), "{}: the kernel lacks {wanted}", d.name);
        }
    }
    Ok(())
}

/// journald's disk budget fits beside the system in the smallest rootfs a defconfig makes.
fn journald_fits_the_rootfs() -> Result<()> {
    let conf = read(&repo().join("image/overlay/etc/systemd/journald.conf.d/sba.conf"))?;
    let key = |k: &str| -> Result<u64> {
        let v = conf.lines().find_map(|l| l.trim().strip_prefix(&format!("{k}="))).with_context(|| format!("journald: no {k}"))?;
        size_bytes(v)
    };
    ensure!(conf.lines().any(|l| l.trim() == "Storage=persistent"), "journald is not persistent");
    let (max_use, keep_free, file) = (key("SystemMaxUse")?, key("SystemKeepFree")?, key("SystemMaxFileSize")?);
    ensure!(file * 4 <= max_use, "SystemMaxFileSize {file} leaves fewer than 4 files in SystemMaxUse {max_use}");
    // What the system itself takes (measured: buildroot/README.md); the rest is the services' state and the journal.
    const SYSTEM: u64 = 40 << 20;
    for d in Defconfig::all()? {
        let size = size_bytes(&d.value("BR2_TARGET_ROOTFS_EXT2_SIZE")?)?;
        ensure!(
            SYSTEM + max_use + keep_free <= size,
            "{}: journald's SystemMaxUse + SystemKeepFree ({} MiB) do not fit beside the system in a {} MiB rootfs",
            d.name,
            (max_use + keep_free) >> 20,
            size >> 20
        );
    }
    Ok(())
}

/// A DAHDI tone zone, where one is configured, is the country of the number plan sba.toml ships
/// (its +CC rewrite): /etc/dahdi/system.conf when the image has one, `[gateway] tonezone` otherwise.
fn tone_zone_matches_the_number_plan() -> Result<()> {
    let config = sba_toml()?;
    let rules = config.get("mediation").and_then(|m| m.get("rules")).and_then(|r| r.as_array()).context("no [[mediation.rules]]")?;
    let country = rules
        .iter()
        .find_map(|r| r.get("replace")?.as_str()?.strip_prefix('+').map(|s| s.chars().take_while(char::is_ascii_digit).collect::<String>()))
        .context("no rule rewrites to +CC")?;
    // ITU country codes of the zones DAHDI's zonedata knows best, by the prefixes ITU gives them.
    let zone = match country.as_str() {
        c if c.starts_with("44") => "uk",
        c if c.starts_with("31") => "nl",
        c if c.starts_with("49") => "de",
        c if c.starts_with("33") => "fr",
        c if c.starts_with('1') => "us",
        c => bail!("no tone zone known for country code {c}: add it here"),
    };
    let mut configured = Vec::new();
    if let Ok(system) = read(&repo().join("image/overlay/etc/dahdi/system.conf")) {
        for key in ["loadzone", "defaultzone"] {
            let value = system.lines().find_map(|l| l.trim().strip_prefix(&format!("{key}="))).with_context(|| format!("system.conf has no {key}"))?;
            configured.push((format!("system.conf {key}"), value.trim().to_string()));
        }
    }
    if let Some(value) = config.get("gateway").and_then(|g| g.get("tonezone")).and_then(|z| z.as_str()) {
        configured.push(("sba.toml [gateway] tonezone".to_string(), value.to_string()));
    }
    for (place, value) in configured {
        ensure!(value == zone, "{place} is {value}, but the number plan is +{country} ({zone})");
    }
    Ok(())
}

fn readme_states_the_default_span() -> Result<()> {
    let config = sba_toml()?;
    let spantype = config.get("gateway").and_then(|g| g.get("spantype")).and_then(|s| s.as_str()).context("no [gateway] spantype")?;
    let readme = read(&tree().join("README.md"))?;
    let wanted = format!("one {} PRI span by default", spantype.to_uppercase());
    ensure!(readme.contains(&wanted), "buildroot/README.md does not say \"{wanted}\" (sba.toml's [gateway] spantype)");
    Ok(())
}

fn units_start_only_what_the_image_has() -> Result<()> {
    let units = repo().join("image/overlay/etc/systemd/system");
    let mk = read(&tree().join("package/sba-services/sba-services.mk"))?;
    for service in ["sba-registrar", "sba-mediation", "sba-gateway"] {
        let unit = read(&units.join(format!("{service}.service")))?;
        let bin = format!("/usr/bin/{service}");
        let has = |l: &str| unit.lines().any(|x| x.trim() == l);
        ensure!(has(&format!("ConditionPathExists={bin}")), "{service}.service must be skipped where {bin} is absent");
        ensure!(
            unit.lines().any(|l| l.starts_with(&format!("ExecStart={bin} --config /etc/sba/sba.toml"))),
            "{service}.service does not run {bin} --config /etc/sba/sba.toml"
        );
        for key in ["Type=notify", "Restart=on-failure", "StateDirectory=sba", "ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateTmp=yes", "ProtectProc=invisible", "ProcSubset=pid", "AmbientCapabilities=CAP_NET_BIND_SERVICE"] {
            ensure!(has(key), "{service}.service lacks {key}");
        }
        ensure!(unit.lines().any(|l| l.starts_with("WatchdogSec=")), "{service}.service has no watchdog");
        ensure!(has("DynamicUser=yes") || unit.lines().any(|l| l.starts_with("User=")), "{service}.service runs as root");
        ensure!(mk.contains(service), "sba-services.mk does not install {service}");
        let wants = units.join("multi-user.target.wants").join(format!("{service}.service"));
        ensure!(fs::read_link(&wants).is_ok(), "{service} is not enabled ({} missing)", wants.display());
    }
    for entry in fs::read_dir(&units)? {
        let path = entry?.path();
        let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else { continue };
        if !name.ends_with(".service") {
            continue;
        }
        for line in read(&path)?.lines() {
            if let Some(bin) = line.strip_prefix("ExecStart=/usr/bin/").and_then(|c| c.split_whitespace().next()) {
                ensure!(mk.contains(bin), "{name} runs /usr/bin/{bin}, which sba-services.mk does not install");
            }
        }
    }
    // buildroot runs `systemctl preset-all`: the appliance's units must be enabled by a preset too.
    let preset = read(&tree().join("board/sba/common/rootfs-overlay/usr/lib/systemd/system-preset/50-sba.preset"))?;
    ensure!(preset.lines().any(|l| l.trim() == "enable sba-*.service"), "no preset enables the sba-* units");
    let gateway = read(&units.join("sba-gateway.service"))?;
    ensure!(gateway.contains("DeviceAllow=char-dahdi rw"), "sba-gateway.service cannot reach /dev/dahdi");
    let modprobe = read(&repo().join("image/overlay/etc/modprobe.d/dahdi.conf"))?;
    ensure!(modprobe.lines().any(|l| l.trim() == "options dahdi auto_assign_spans=1"), "dahdi spans would stay unassigned");
    // sba-gateway configures its span from sba.toml: nothing may run dahdi_cfg at boot.
    ensure!(!units.join("sba-dahdi.service").exists() && !gateway.contains("dahdi_cfg"), "a unit still runs dahdi_cfg");
    Ok(())
}

/// Started at boot, systemd-resolved and systemd-timesyncd order themselves before sysinit.target, so
/// every service would wait for them: the image starts them once the services are up.
fn resolved_and_timesyncd_start_after_the_services() -> Result<()> {
    let preset = read(&tree().join("board/sba/common/rootfs-overlay/usr/lib/systemd/system-preset/50-sba.preset"))?;
    let unit = read(&tree().join("board/sba/common/rootfs-overlay/etc/systemd/system/sba-after-ready.service"))?;
    let value = |key: &str| unit.lines().find_map(|l| l.strip_prefix(key)).map(str::split_whitespace).into_iter().flatten().collect::<Vec<_>>();
    for daemon in ["systemd-resolved.service", "systemd-timesyncd.service"] {
        ensure!(preset.lines().any(|l| l.trim() == format!("disable {daemon}")), "50-sba.preset still starts {daemon} at boot");
        ensure!(value("ExecStart=").contains(&daemon), "sba-after-ready.service does not start {daemon}");
    }
    for service in ["sba-registrar.service", "sba-mediation.service", "sba-gateway.service"] {
        ensure!(value("After=").contains(&service), "sba-after-ready.service does not wait for {service}");
    }
    ensure!(value("WantedBy=") == ["multi-user.target"], "sba-after-ready.service is not started at boot");
    Ok(())
}

/// Every overlay of the qemu defconfig (the fullest image), as one root.
fn overlay_root(what: &str) -> Result<PathBuf> {
    let root = scratch(what);
    let qemu = Defconfig::all()?.into_iter().find(|d| d.name.contains("qemu")).context("no qemu defconfig")?;
    for overlay in qemu.paths("BR2_ROOTFS_OVERLAY")? {
        copy_tree(&overlay, &root)?;
    }
    Ok(root)
}

fn units_pass_systemd_analyze_verify() -> Result<()> {
    // A root holding the overlays, the system's own units and stand-ins for the binaries the
    // units run, so that verify resolves dependencies and executables inside it.
    let root = overlay_root("units")?;
    copy_tree(Path::new("/usr/lib/systemd/system"), &root.join("usr/lib/systemd/system"))?;
    let units: Vec<PathBuf> = fs::read_dir(root.join("etc/systemd/system"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "service"))
        .collect();
    for unit in &units {
        for line in read(unit)?.lines() {
            if let Some(cmd) = line.strip_prefix("ExecStart=").or_else(|| line.strip_prefix("ExecStartPre=")) {
                let exe = cmd.trim_start_matches(['-', '+', '!', '@']).split_whitespace().next().unwrap_or("");
                ensure!(exe.starts_with('/'), "{}: {exe} is not an absolute path", unit.display());
                let stand_in = root.join(exe.trim_start_matches('/'));
                fs::create_dir_all(stand_in.parent().unwrap())?;
                fs::write(&stand_in, "#!/bin/sh\n")?;
                fs::set_permissions(&stand_in, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
            }
        }
    }
    let out = Command::new("systemd-analyze").arg("verify").arg(format!("--root={}", root.display())).args(&units).output()?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let _ = fs::remove_dir_all(&root);
    // verify exits 0 on many warnings (an unknown Type= is "ignored"): any message fails the test.
    ensure!(out.status.success() && stderr.trim().is_empty(), "systemd-analyze verify: {stderr}");
    Ok(())
}

/// The firewall is the shared overlay's: both images carry it (image_firewall boots it).
fn firewall_dir() -> PathBuf {
    repo().join("image/overlay/etc/sba")
}

/// The firewall drops by default and lets in, from the site's networks only, exactly the ports
/// sba.toml's services listen on: SIP over UDP and TCP, SIP over TLS, the RTP range, the web page.
/// Both images install iptables and start the firewall at boot.
fn firewall_lets_in_only_the_services() -> Result<()> {
    let config = sba_toml()?;
    let port = |section: &str, key: &str| -> Result<u16> {
        let listen = config.get(section).and_then(|s| s.get(key)).and_then(|l| l.as_str()).with_context(|| format!("no {section}.{key}"))?;
        listen.rsplit(':').next().unwrap_or("").parse().with_context(|| format!("{section}.{key} {listen}"))
    };
    let sip = port("registrar", "listen")?;
    let media = config.get("mediation").and_then(|m| m.get("media_ports")).and_then(|p| p.as_array()).context("no mediation.media_ports")?;
    let (first, last) = (media[0].as_integer().context("media_ports")?, media[1].as_integer().context("media_ports")?);
    let wanted: BTreeSet<String> = [
        format!("-p udp -m udp --dport {sip}"),
        format!("-p tcp -m tcp --dport {sip}"),
        // SIP over TLS: the phones' (the registrar's) and the trunks' and PBXs' (sba-mediation's).
        format!("-p tcp -m tcp --dport {}", port("registrar", "tls_listen")?),
        format!("-p tcp -m tcp --dport {}", port("mediation", "tls_listen")?),
        format!("-p udp -m udp --dport {first}:{last}"),
        format!("-p tcp -m tcp --dport {}", port("web", "listen")?),
    ]
    .into();
    for (file, sites) in [("firewall4.rules", ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"].as_slice()), ("firewall6.rules", ["fc00::/7", "fe80::/10"].as_slice())] {
        let rules = read(&firewall_dir().join(file))?;
        let rules: Vec<&str> = rules.lines().map(str::trim).filter(|l| !l.starts_with('#') && !l.is_empty()).collect();
        for policy in [":INPUT DROP [0:0]", ":FORWARD DROP [0:0]"] {
            ensure!(rules.contains(&policy), "{file}: no {policy}");
        }
        let services: BTreeSet<String> = rules
            .iter()
            .filter_map(|r| r.strip_prefix("-A sba-services ")?.strip_suffix(" -j ACCEPT").map(str::to_string))
            .collect();
        ensure!(services == wanted, "{file} lets in {services:?}, the services listen on {wanted:?}");
        let from: BTreeSet<&str> = rules.iter().filter_map(|r| r.strip_prefix("-A sba-sites -s ")?.strip_suffix(" -j sba-services")).collect();
        ensure!(from == sites.iter().copied().collect(), "{file}: the services are open to {from:?}");
        // Nothing else reaches the services, and INPUT accepts no port outside the chain.
        for rule in rules.iter().filter(|r| r.starts_with("-A INPUT") && r.ends_with("-j ACCEPT")) {
            ensure!(!rule.contains("--dport") || rule.contains("--sport 67 --dport 68") || rule.contains("--sport 547 --dport 546"), "{file}: INPUT opens {rule}");
        }
    }
    // Every match module the rules load is in the kernel (post-build.sh checks the fragment took).
    let fragment = read(&tree().join("board/sba/common/linux.fragment"))?;
    for file in ["firewall4.rules", "firewall6.rules"] {
        let rules = read(&firewall_dir().join(file))?;
        let words: Vec<&str> = rules.lines().filter(|l| l.starts_with("-A")).flat_map(str::split_whitespace).collect();
        for module in words.windows(2).filter(|w| w[0] == "-m").map(|w| w[1]) {
            if ["tcp", "udp", "icmp", "icmp6"].contains(&module) {
                continue; // part of iptables' core
            }
            let option = format!("CONFIG_NETFILTER_XT_MATCH_{}=y", module.to_uppercase());
            ensure!(fragment.lines().any(|l| l.trim() == option), "{file} uses -m {module}; the kernel fragment lacks {option}");
        }
    }
    let units = repo().join("image/overlay/etc/systemd/system");
    let unit = read(&units.join("sba-firewall.service"))?;
    ensure!(unit.contains("Before=network-pre.target") && unit.contains("DefaultDependencies=no"), "the firewall is not up before the network");
    // A firewall that is silently skipped leaves the appliance open: no condition, a failure shows.
    ensure!(!unit.lines().any(|l| l.starts_with("Condition")), "sba-firewall.service is skipped on a condition");
    let wants = units.join("multi-user.target.wants/sba-firewall.service");
    ensure!(fs::read_link(&wants).is_ok(), "the firewall is not enabled ({} missing)", wants.display());
    let build = read(&repo().join("image/build.sh"))?;
    let packages = build.lines().find(|l| l.starts_with("packages=(")).context("image/build.sh has no packages=(...)")?;
    ensure!(packages.split(['(', ' ']).any(|p| p == "iptables"), "the Debian VM image does not install iptables: {packages}");
    Ok(())
}

/// The rules as the kernel's iptables takes them (`--test` commits nothing).
fn firewall_rules_load() -> Result<()> {
    for (tool, file) in [("iptables-legacy-restore", "firewall4.rules"), ("ip6tables-legacy-restore", "firewall6.rules")] {
        let out = Command::new(tool).arg("--test").arg(firewall_dir().join(file)).output()?;
        ensure!(out.status.success(), "{tool} --test {file}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// The rootfs budget (< 64 MB): the five service binaries are most of it, so buildroot builds them
/// for size (the first build's, at the release profile, took 32 of its 74 MB).
fn services_are_built_for_size() -> Result<()> {
    let mk = read(&tree().join("package/sba-services/sba-services.mk"))?;
    for setting in ["CARGO_PROFILE_RELEASE_OPT_LEVEL=s", "CARGO_PROFILE_RELEASE_LTO=true", "CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1"] {
        ensure!(mk.contains(setting), "sba-services.mk does not build the services for size: no {setting}");
    }
    Ok(())
}

/// `make legal-info` lists the services with the licenses of every crate linked into them and
/// saves those crates' license files (vendor-crates.sh writes them from cargo metadata).
fn legal_info_names_the_crates_licenses() -> Result<()> {
    let mk = read(&tree().join("package/sba-services/sba-services.mk"))?;
    ensure!(mk.contains("SBA_SERVICES_LICENSE_FILES = LICENSE"), "sba-services.mk saves no license file of its own");
    ensure!(repo().join("LICENSE").is_file(), "the repository has no LICENSE file for legal-info");
    let include = mk.find("-include $(SBA_SERVICES_VENDOR_DIR)/.sba-legal.mk").context("sba-services.mk does not read the crates' licenses")?;
    // buildroot names a package after the last makefile read when it is evaluated.
    let eval = mk.find("$(eval $(cargo-package))").context("sba-services.mk is not a cargo-package")?;
    ensure!(include > eval, "sba-services.mk reads the crates' licenses before its eval: buildroot would name the package after that file");
    let vendor = read(&tree().join("package/sba-services/vendor-crates.sh"))?;
    ensure!(vendor.contains(".sba-legal.mk") && vendor.contains("--filter-platform"), "vendor-crates.sh does not write the crates' licenses for the target");
    Ok(())
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).map(|m| m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to)?;
    let out = Command::new("cp").arg("-a").arg(format!("{}/.", from.display())).arg(to).output()?;
    if !out.status.success() {
        bail!("cp -a {} {}: {}", from.display(), to.display(), String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

fn stand_in(target: &Path, file: &str) -> Result<()> {
    let path = target.join(file);
    fs::create_dir_all(path.parent().unwrap())?;
    fs::write(&path, "#!/bin/sh\n")?;
    fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    Ok(())
}

/// A target as buildroot leaves it before post-build.sh: the overlays, the services, the modules.
fn complete_target(what: &str) -> Result<PathBuf> {
    let target = overlay_root(what)?;
    for file in ["usr/bin/sba-registrar", "usr/bin/sba-mediation", "usr/bin/sba-gateway", "usr/bin/sba-web", "usr/bin/sbactl", "lib/modules/6.1.175/dahdi/dahdi.ko"] {
        stand_in(&target, file)?;
    }
    fs::create_dir_all(target.join("var"))?;
    Ok(target)
}

fn post_build(target: &Path) -> Result<std::process::Output> {
    post_build_with(target, &[])
}

/// post-build.sh with the environment buildroot gives it (BR2_CONFIG, BUILD_DIR, ...).
fn post_build_with(target: &Path, env: &[(&str, &Path)]) -> Result<std::process::Output> {
    let script = tree().join("board/sba/common/post-build.sh");
    let mut command = Command::new(&script);
    command.arg(target).env_remove("BR2_CONFIG").env_remove("BUILD_DIR");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().with_context(|| format!("running {}", script.display()))
}

fn post_build_accepts_a_complete_target_and_refuses_an_incomplete_one() -> Result<()> {
    let target = complete_target("target")?;
    // What dahdi-linux installs for the Astribank's loaders (dahdi-tools, not in the image).
    stand_in(&target, "usr/share/dahdi/FPGA_1141.hex")?;
    let out = post_build(&target)?;
    ensure!(out.status.success(), "post-build.sh refused a complete target: {}", String::from_utf8_lossy(&out.stderr));
    let info = read(&target.join("etc/sba/build-info"))?;
    ensure!(info.contains("source="), "no build-info written: {info}");
    ensure!(!target.join("usr/share/dahdi").exists(), "post-build.sh left the Astribank firmware in the rootfs");
    for unit in ["sys-kernel-tracing.mount", "systemd-network-generator.service", "systemd-tmpfiles-setup-dev.service", "systemd-udev-load-credentials.service"] {
        let masked = target.join("etc/systemd/system").join(unit);
        ensure!(fs::read_link(&masked).is_ok_and(|l| l == Path::new("/dev/null")), "post-build.sh did not mask {unit}");
    }
    for stamp in ["etc/.updated", "var/.updated"] {
        ensure!(target.join(stamp).exists(), "post-build.sh did not mark the image up to date ({stamp})");
    }

    fs::remove_file(target.join("lib/modules/6.1.175/dahdi/dahdi.ko"))?;
    let out = post_build(&target)?;
    let _ = fs::remove_dir_all(&target);
    ensure!(!out.status.success(), "post-build.sh accepted a target without the DAHDI modules");
    ensure!(String::from_utf8_lossy(&out.stderr).contains("DAHDI"), "the refusal does not say what is missing");
    Ok(())
}

/// udev rules for hardware a branch box lacks are masked in the overlays (a `/dev/null` link of the
/// same name in /etc/udev/rules.d); those the appliance uses are not.
fn udev_rules_for_absent_hardware_are_masked() -> Result<()> {
    let root = overlay_root("udev")?;
    let rules = root.join("etc/udev/rules.d");
    let masked = |name: &str| fs::read_link(rules.join(format!("{name}.rules"))).is_ok_and(|l| l == Path::new("/dev/null"));
    let result = (|| {
        for name in ["60-evdev", "70-joystick", "70-mouse", "78-sound-card", "60-persistent-v4l", "64-btrfs"] {
            ensure!(masked(name), "{name}.rules is not masked");
        }
        for name in ["50-udev-default", "60-block", "60-persistent-storage", "70-power-switch", "71-seat", "80-drivers", "80-net-setup-link", "99-systemd"] {
            ensure!(!masked(name) && !rules.join(format!("{name}.rules")).exists(), "{name}.rules (used by the appliance) is masked");
        }
        Ok(())
    })();
    let _ = fs::remove_dir_all(&root);
    result
}

/// A unit's conditions are tested as systemd tests them: a configuration file that exists is not
/// "absent" because it is not executable; a missing executable is reported.
/// Both boards check the image they made: a 60M rootfs with 418 KiB free (less than ext4's 2%
/// reserve) booted without /etc/machine-id, and networkd's DHCP failed ("No medium found").
fn rootfs_room_refuses_an_image_the_first_boot_cannot_write() -> Result<()> {
    let script = tree().join("board/sba/common/rootfs-room.sh");
    for board in ["qemu", "pc"] {
        let post_image = read(&tree().join(format!("board/sba/{board}/post-image.sh")))?;
        ensure!(post_image.contains("common/rootfs-room.sh"), "the {board} board's post-image.sh does not check the rootfs' room");
    }
    let dir = scratch("rootfs-room");
    fs::create_dir_all(dir.join("host/sbin"))?;
    let dumpe2fs = ["/sbin/dumpe2fs", "/usr/sbin/dumpe2fs"].into_iter().find(|p| Path::new(p).exists()).context("no dumpe2fs")?;
    std::os::unix::fs::symlink(dumpe2fs, dir.join("host/sbin/dumpe2fs"))?;
    let accepted = |fill_kib: usize| -> Result<bool> {
        let content = dir.join(format!("content-{fill_kib}"));
        fs::create_dir_all(&content)?;
        fs::write(content.join("fill"), vec![1u8; fill_kib * 1024])?;
        let image = dir.join(format!("rootfs-{fill_kib}.ext4"));
        let mkfs = Command::new("mkfs.ext4").args(["-q", "-F", "-b", "1024", "-N", "64", "-m", "0", "-d"]).arg(&content).arg(&image).arg("8M").output()?;
        ensure!(mkfs.status.success(), "mkfs.ext4: {}", String::from_utf8_lossy(&mkfs.stderr));
        let out = Command::new(&script).arg(&image).env("HOST_DIR", dir.join("host")).output()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        ensure!(out.status.success() || stderr.contains("holds back"), "rootfs-room.sh failed otherwise: {stderr}");
        Ok(out.status.success())
    };
    // 8 MiB in 1 KiB blocks: ext4 holds back 163 of them; 1 MiB more is asked for.
    ensure!(accepted(1024)?, "an image with 6 MiB free was refused");
    ensure!(!accepted(7000)?, "an image with under 1 MiB free was accepted");
    Ok(())
}

fn post_build_notes_only_conditions_that_fail() -> Result<()> {
    let target = complete_target("conditions")?;
    fs::create_dir_all(target.join("etc/example"))?;
    fs::write(target.join("etc/example/present.conf"), "")?;
    fs::write(
        target.join("etc/systemd/system/example-met.service"),
        "[Unit]\nConditionPathExists=/etc/example/present.conf\nConditionFileIsExecutable=/usr/bin/sbactl\n[Service]\nExecStart=/usr/bin/sbactl\n",
    )?;
    fs::write(
        target.join("etc/systemd/system/example-unmet.service"),
        "[Unit]\nConditionPathExists=/etc/example/present.conf\nConditionFileIsExecutable=/usr/sbin/absent\n[Service]\nExecStart=/usr/sbin/absent\n",
    )?;
    let out = post_build(&target)?;
    let _ = fs::remove_dir_all(&target);
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(out.status.success(), "post-build.sh failed: {stderr}");
    ensure!(!stderr.contains("example-met.service"), "post-build.sh notes a unit whose conditions hold: {stderr}");
    ensure!(
        stderr.contains("example-unmet.service will be skipped (ConditionFileIsExecutable=/usr/sbin/absent"),
        "post-build.sh does not note the unit whose executable is missing: {stderr}"
    );
    Ok(())
}

/// kconfig drops an option whose dependencies fail without a word (the firewall's `limit` match
/// needed NETFILTER_ADVANCED): post-build.sh compares the board config and fragments with the kernel's .config.
fn post_build_refuses_a_kernel_without_the_fragments_options() -> Result<()> {
    let target = complete_target("kconfig")?;
    let build = scratch("kconfig-build");
    let qemu = Defconfig::all()?.into_iter().find(|d| d.name.contains("qemu")).context("no qemu defconfig")?;
    let fragments = qemu.value("BR2_LINUX_KERNEL_CONFIG_FRAGMENT_FILES")?;
    let own = qemu.value("BR2_LINUX_KERNEL_CUSTOM_CONFIG_FILE")?;
    fs::create_dir_all(build.join("linux-custom"))?;
    fs::create_dir_all(build.join("linux-headers-custom"))?;
    let br2_config = build.join("buildroot.config");
    fs::write(
        &br2_config,
        format!("BR2_LINUX_KERNEL_CUSTOM_CONFIG_FILE=\"{own}\"\nBR2_LINUX_KERNEL_CONFIG_FRAGMENT_FILES=\"{fragments}\"\n"),
    )?;
    let options: Vec<String> = qemu.kernel_options()?.into_iter().collect();
    let tree = tree();
    let env = [("BR2_CONFIG", br2_config.as_path()), ("BUILD_DIR", build.as_path()), ("BR2_EXTERNAL_SBA_PATH", tree.as_path())];

    fs::write(build.join("linux-custom/.config"), options.join("\n") + "\n")?;
    let out = post_build_with(&target, &env)?;
    ensure!(out.status.success(), "post-build.sh refused a kernel with every option: {}", String::from_utf8_lossy(&out.stderr));

    let without: Vec<&String> = options.iter().filter(|o| o.as_str() != "CONFIG_CGROUP_BPF=y").collect();
    fs::write(build.join("linux-custom/.config"), without.iter().map(|o| format!("{o}\n")).collect::<String>())?;
    let out = post_build_with(&target, &env)?;
    ensure!(!out.status.success(), "post-build.sh accepted a kernel without CONFIG_CGROUP_BPF");
    ensure!(String::from_utf8_lossy(&out.stderr).contains("CONFIG_CGROUP_BPF=y"), "the refusal does not name the option");

    // An option of the board's own config (not a fragment) that kconfig dropped is refused too.
    let without: Vec<&String> = options.iter().filter(|o| o.as_str() != "CONFIG_INPUT_EVDEV=y").collect();
    fs::write(build.join("linux-custom/.config"), without.iter().map(|o| format!("{o}\n")).collect::<String>())?;
    let out = post_build_with(&target, &env)?;
    let _ = fs::remove_dir_all(&target);
    let _ = fs::remove_dir_all(&build);
    ensure!(!out.status.success(), "post-build.sh accepted a kernel without its board config's CONFIG_INPUT_EVDEV");
    Ok(())
}
