//! `rrssh keygen`: a key pair in OpenSSH's format.

use super::*;
use std::path::{Path, PathBuf};

pub(super) fn keygen(
    file: &Path,
    comment: Option<String>,
    force: bool,
    passphrase: Option<String>,
) -> Result<ExitCode, String> {
    if !force && (file.exists() || pub_path(file).exists()) {
        return Err(format!(
            "{} already exists; refusing to overwrite it (use --force)",
            file.display()
        ));
    }
    let comment = comment.unwrap_or_else(|| {
        let user = rrssh::transport::local_user().unwrap_or_else(|| "rrssh".into());
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        format!("{user}@{}", host.trim())
    });
    let key = rrssh::keys::generate_ed25519(&comment);
    let passphrase = passphrase
        .or_else(|| std::env::var("RRSSH_PASSPHRASE").ok())
        .filter(|p| !p.is_empty());
    let stored = match &passphrase {
        Some(p) => rrssh::keys::encrypt_private_key(&key, p).map_err(|e| e.to_string())?,
        None => key.clone(),
    };
    rrssh::keys::write_key_pair(&stored, file).map_err(|e| e.to_string())?;
    println!("wrote {} and {}", file.display(), pub_path(file).display());
    println!("{}", rrssh::keys::fingerprint(key.public_key()));
    Ok(ExitCode::SUCCESS)
}

pub(super) fn pub_path(file: &Path) -> PathBuf {
    let mut p = file.as_os_str().to_owned();
    p.push(".pub");
    PathBuf::from(p)
}
