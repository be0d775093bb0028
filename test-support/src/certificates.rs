//! Certificates for tests, made with `openssl`: private CAs and what they sign (EC P-256 keys,
//! valid for two days).

use std::path::{Path, PathBuf};

/// Runs `openssl` with `args` in `dir`; `Err` holds what it printed.
pub fn openssl(dir: &Path, args: &[&str]) -> Result<(), String> {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("run openssl: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

const EC: [&str; 5] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
];

/// A private CA in a directory: `{ca}.pem` and `{ca}-key.pem`, and the certificates it signs.
#[derive(Debug, Clone)]
pub struct Pki {
    dir: PathBuf,
    ca: String,
}

impl Pki {
    /// The CA `ca` in `dir`, made now unless its files are there.
    pub fn new(dir: &Path, ca: &str) -> Result<Self, String> {
        let pki = Self {
            dir: dir.to_owned(),
            ca: ca.to_owned(),
        };
        if !pki.ca_file().exists() {
            let (cert, key) = (format!("{ca}.pem"), format!("{ca}-key.pem"));
            let subject = format!("/CN=rrssh test CA {ca}");
            let mut args = vec!["req", "-x509"];
            args.extend(EC);
            args.extend([
                "-keyout", &key, "-out", &cert, "-days", "2", "-subj", &subject,
            ]);
            openssl(dir, &args)?;
        }
        Ok(pki)
    }

    /// The CA's certificate (PEM), for clients to trust.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join(format!("{}.pem", self.ca))
    }

    /// Signs a new key's certificate into `cert_file` and `key_file` (in the directory), for
    /// subject `/CN={cn}` with the extension lines `ext` (`subjectAltName=IP:127.0.0.1`,
    /// `extendedKeyUsage=clientAuth`, …).
    pub fn issue(
        &self,
        cert_file: &str,
        key_file: &str,
        cn: &str,
        ext: &str,
    ) -> Result<(), String> {
        let ext_file = format!("{cert_file}.ext");
        let csr = format!("{cert_file}.csr");
        std::fs::write(self.dir.join(&ext_file), format!("{ext}\n"))
            .map_err(|e| format!("{ext_file}: {e}"))?;
        let subject = format!("/CN={cn}");
        let mut args = vec!["req"];
        args.extend(EC);
        args.extend(["-keyout", key_file, "-out", &csr, "-subj", &subject]);
        openssl(&self.dir, &args)?;
        let (ca, ca_key) = (format!("{}.pem", self.ca), format!("{}-key.pem", self.ca));
        openssl(
            &self.dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &ca,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-out",
                cert_file,
                "-days",
                "2",
                "-extfile",
                &ext_file,
            ],
        )
    }

    /// A server certificate `cert.pem` / `key.pem` for 127.0.0.1 and `localhost`, subject
    /// `/CN={cn}` (which tells two of them apart).
    pub fn server(&self, cn: &str) -> Result<(), String> {
        self.issue(
            "cert.pem",
            "key.pem",
            cn,
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        )
    }
}
