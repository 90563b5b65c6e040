//! A test's certificate authority (openssl, EC P-256) and the certificates it signs: the
//! central site's, carriers', the branch's appliance certificate, and an attacker's own CA.
use crate::bins::bin;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Pki {
    dir: PathBuf,
    /// The CA's certificate: the bundle a peer's certificate must chain to.
    pub ca: PathBuf,
}

impl Pki {
    /// A new CA named `name`, its files in `dir/<name>`.
    pub fn new(dir: &Path, name: &str) -> Pki {
        let dir = dir.join(name);
        std::fs::create_dir_all(&dir).expect("pki dir");
        let pki = Pki { ca: dir.join("ca.pem"), dir };
        let subject = format!("/CN={name} test CA");
        pki.openssl(&["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-subj", &subject, "-days", "30"]);
        pki
    }

    /// A certificate for `names` (subjectAltName entries such as "DNS:x" or "IP:10.0.0.1"):
    /// (certificate, key).
    pub fn issue(&self, label: &str, names: &str) -> (PathBuf, PathBuf) {
        let (key, csr, cert, ext) = (format!("{label}.key"), format!("{label}.csr"), format!("{label}.pem"), format!("{label}.ext"));
        self.openssl(&["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", &key, "-out", &csr, "-subj", &format!("/CN={label}")]);
        std::fs::write(self.dir.join(&ext), format!("subjectAltName={names}\n")).expect("write ext");
        self.openssl(&["x509", "-req", "-in", &csr, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", &cert, "-days", "30", "-extfile", &ext]);
        (self.dir.join(cert), self.dir.join(key))
    }

    /// A certificate for `names` installed as the appliance certificate in a directory of its
    /// own, as `sbactl tls install` does (the `tls_dir` of a service's config).
    pub fn install_appliance(&self, label: &str, names: &str, dir: &Path) {
        let (cert, key) = self.issue(label, names);
        let out = Command::new(bin("sbactl")).args(["tls", "install"]).args([&cert, &key]).arg("--dir").arg(dir).output().expect("sbactl");
        assert!(out.status.success(), "sbactl tls install: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl").current_dir(&self.dir).args(args).output().expect("openssl (apt-get install openssl)");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}
