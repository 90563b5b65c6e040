//! The buildroot external tree, checked offline. With BUILDROOT_DIR set to a buildroot checkout,
//! `make BR2_EXTERNAL=buildroot sba_x86_64_defconfig` runs there and every option of the defconfig must
//! survive into .config (an option buildroot does not know, or whose dependencies fail, is dropped).
//! Always: static checks of the tree, the overlay it shares with the VM image, and the units.
use anyhow::{bail, ensure, Context, Result};
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().expect("repository root")
}

fn tree() -> PathBuf {
    repo().join("buildroot")
}

fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// The defconfig's assignments, `BR2_X=value` and `# BR2_X is not set`.
fn defconfig_lines() -> Result<Vec<String>> {
    Ok(read(&tree().join("configs/sba_x86_64_defconfig"))?
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("BR2_") || (l.starts_with("# BR2_") && l.ends_with(" is not set")))
        .map(str::to_string)
        .collect())
}

fn defconfig_value(key: &str) -> Result<String> {
    defconfig_lines()?
        .iter()
        .find_map(|l| l.strip_prefix(&format!("{key}=")).map(|v| v.trim_matches('"').to_string()))
        .with_context(|| format!("{key} is not in the defconfig"))
}

/// A path of the defconfig, with the external tree's variable expanded.
fn external_path(value: &str) -> PathBuf {
    PathBuf::from(value.replace("$(BR2_EXTERNAL_SBA_PATH)", &tree().display().to_string()))
}

#[test]
fn defconfig_survives_make_in_buildroot() -> Result<()> {
    let Some(buildroot) = std::env::var_os("BUILDROOT_DIR").map(PathBuf::from) else {
        eprintln!("image_buildroot: BUILDROOT_DIR not set, static checks only");
        return Ok(());
    };
    let out_dir = std::env::temp_dir().join(format!("hf-br-{}", std::process::id()));
    let _ = fs::remove_dir_all(&out_dir);
    let out = Command::new("make")
        .arg("-C")
        .arg(&buildroot)
        .arg(format!("BR2_EXTERNAL={}", tree().display()))
        .arg(format!("O={}", out_dir.display()))
        .arg("sba_x86_64_defconfig")
        .output()
        .context("running make (apt-get install make gcc)")?;
    ensure!(
        out.status.success(),
        "make sba_x86_64_defconfig failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let config = read(&out_dir.join(".config"))?;
    let have: BTreeSet<&str> = config.lines().map(str::trim).collect();
    let lost: Vec<String> = defconfig_lines()?.into_iter().filter(|l| !have.contains(l.as_str())).collect();
    ensure!(lost.is_empty(), "buildroot dropped or changed these defconfig lines: {lost:#?}");

    // The package's makefile as buildroot evaluates it (no download, no build).
    let vars = Command::new("make")
        .arg("-C")
        .arg(&out_dir)
        .arg("printvars")
        .arg("VARS=SBA_SERVICES_VERSION SBA_SERVICES_SITE_METHOD SBA_SERVICES_OVERRIDE_SRCDIR SBA_SERVICES_DEPENDENCIES")
        .output()?;
    let vars = String::from_utf8_lossy(&vars.stdout).into_owned();
    let _ = fs::remove_dir_all(&out_dir);
    for wanted in [
        "SBA_SERVICES_VERSION=0.".to_string(),
        "SBA_SERVICES_SITE_METHOD=local".to_string(),
        format!("SBA_SERVICES_OVERRIDE_SRCDIR={}", repo().display()),
    ] {
        ensure!(vars.lines().any(|l| l.starts_with(&wanted)), "printvars lacks {wanted}:\n{vars}");
    }
    ensure!(vars.contains("host-rustc"), "sba-services does not depend on host-rustc:\n{vars}");
    Ok(())
}

#[test]
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
                Some(i) if !line.starts_with("$(") && !line.starts_with("endef") && !line.starts_with(' ') => line[..i].trim(),
                _ => continue,
            },
        };
        ensure!(name.starts_with(&format!("{upper}_")), "{pkg}.mk defines {name}, not named {upper}_...");
    }
    Ok(())
}

#[test]
fn defconfig_names_files_that_exist() -> Result<()> {
    let overlay = external_path(&defconfig_value("BR2_ROOTFS_OVERLAY")?);
    ensure!(overlay.is_dir(), "BR2_ROOTFS_OVERLAY {} is not a directory", overlay.display());
    ensure!(
        overlay.canonicalize()? == repo().join("image/overlay").canonicalize()?,
        "the buildroot image must use the same overlay as the VM image (image/overlay)"
    );
    for key in ["BR2_ROOTFS_POST_BUILD_SCRIPT", "BR2_LINUX_KERNEL_CONFIG_FRAGMENT_FILES"] {
        for file in defconfig_value(key)?.split_whitespace() {
            ensure!(external_path(file).is_file(), "{key} names {file}, which does not exist");
        }
    }
    let post_build = external_path(&defconfig_value("BR2_ROOTFS_POST_BUILD_SCRIPT")?);
    ensure!(is_executable(&post_build), "{} is not executable", post_build.display());
    for script in [post_build, tree().join("package/sba-services/vendor-crates.sh")] {
        let out = Command::new("bash").arg("-n").arg(&script).output()?;
        ensure!(out.status.success(), "{}: {}", script.display(), String::from_utf8_lossy(&out.stderr));
        ensure!(read(&script)?.contains("set -euo pipefail"), "{} lacks set -euo pipefail", script.display());
    }
    Ok(())
}

#[test]
fn defconfig_is_the_appliance() -> Result<()> {
    let lines = defconfig_lines()?;
    for wanted in [
        "BR2_x86_64=y",
        "BR2_INIT_SYSTEMD=y",
        "BR2_LINUX_KERNEL=y",
        "BR2_PACKAGE_DAHDI_LINUX=y",
        "BR2_PACKAGE_DAHDI_TOOLS=y",
        "BR2_PACKAGE_LIBPRI=y",
        "BR2_PACKAGE_SBA_SERVICES=y",
        "BR2_TARGET_ROOTFS_EXT2=y",
        "BR2_TARGET_ROOTFS_EXT2_4=y",
        "BR2_KERNEL_HEADERS_6_6=y",
    ] {
        ensure!(lines.iter().any(|l| l == wanted), "the defconfig lacks {wanted}");
    }
    // dahdi-linux 3.3 builds against kernels up to 6.8/6.9 only.
    let kernel = defconfig_value("BR2_LINUX_KERNEL_CUSTOM_VERSION_VALUE")?;
    ensure!(kernel.starts_with("6.6."), "kernel {kernel} is not the 6.6 LTS series dahdi-linux 3.3 supports");
    Ok(())
}

#[test]
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
        for key in ["Type=notify", "Restart=on-failure", "StateDirectory=sba", "ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateTmp=yes", "AmbientCapabilities=CAP_NET_BIND_SERVICE"] {
            ensure!(has(key), "{service}.service lacks {key}");
        }
        ensure!(unit.lines().any(|l| l.starts_with("WatchdogSec=")), "{service}.service has no watchdog");
        ensure!(has("DynamicUser=yes") || unit.lines().any(|l| l.starts_with("User=")), "{service}.service runs as root");
        ensure!(mk.contains(service), "sba-services.mk does not install {service}");
        let wants = units.join("multi-user.target.wants").join(format!("{service}.service"));
        ensure!(fs::read_link(&wants).is_ok(), "{service} is not enabled ({} missing)", wants.display());
    }
    let gateway = read(&units.join("sba-gateway.service"))?;
    ensure!(gateway.contains("DeviceAllow=char-dahdi rw"), "sba-gateway.service cannot reach /dev/dahdi");
    let modprobe = read(&repo().join("image/overlay/etc/modprobe.d/dahdi.conf"))?;
    ensure!(modprobe.lines().any(|l| l.trim() == "options dahdi auto_assign_spans=1"), "dahdi spans would stay unassigned");
    ensure!(repo().join("image/overlay/etc/dahdi/system.conf").is_file(), "no /etc/dahdi/system.conf");
    let journald = read(&repo().join("image/overlay/etc/systemd/journald.conf.d/sba.conf"))?;
    ensure!(journald.contains("Storage=persistent") && journald.contains("SystemMaxUse="), "journald is not persistent and capped");
    Ok(())
}

#[test]
fn units_pass_systemd_analyze_verify() -> Result<()> {
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        eprintln!("image_buildroot: systemd-analyze not installed, units not verified");
        return Ok(());
    }
    // A root holding the overlay, the system's own units and stand-ins for the binaries the
    // units run, so that verify resolves dependencies and executables inside it.
    let root = std::env::temp_dir().join(format!("hf-units-{}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    copy_tree(&repo().join("image/overlay"), &root)?;
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

#[test]
fn post_build_accepts_a_complete_target_and_refuses_an_incomplete_one() -> Result<()> {
    let target = std::env::temp_dir().join(format!("hf-br-target-{}", std::process::id()));
    let _ = fs::remove_dir_all(&target);
    copy_tree(&repo().join("image/overlay"), &target)?;
    for file in ["usr/bin/sba-registrar", "usr/sbin/dahdi_cfg", "lib/modules/6.6.152/dahdi/dahdi.ko"] {
        let path = target.join(file);
        fs::create_dir_all(path.parent().unwrap())?;
        fs::write(&path, "#!/bin/sh\n")?;
        fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    }
    let post_build = tree().join("board/sba/post-build.sh");
    let out = Command::new(&post_build).arg(&target).output()?;
    ensure!(out.status.success(), "post-build.sh refused a complete target: {}", String::from_utf8_lossy(&out.stderr));
    let info = read(&target.join("etc/sba/build-info"))?;
    ensure!(info.contains("source="), "no build-info written: {info}");

    fs::remove_file(target.join("lib/modules/6.6.152/dahdi/dahdi.ko"))?;
    let out = Command::new(&post_build).arg(&target).output()?;
    let _ = fs::remove_dir_all(&target);
    ensure!(!out.status.success(), "post-build.sh accepted a target without the DAHDI modules");
    ensure!(String::from_utf8_lossy(&out.stderr).contains("DAHDI"), "the refusal does not say what is missing");
    Ok(())
}
