//! `rrssh ca`: a certificate authority for a fleet (a CA key, and the OpenSSH certificates it
//! signs).

use super::*;
use crate::args::CaAction;
use std::path::{Path, PathBuf};

pub(super) fn ca(action: CaAction) -> Result<ExitCode, String> {
    match action {
        CaAction::Init { file, force } => init(&file, force),
        CaAction::Sign {
            ca,
            principals,
            ttl,
            host,
            id,
            serial,
            force_command,
            source_address,
            no_pty,
            no_port_forwarding,
            grants,
            key,
        } => {
            let ca_key = rrssh::keys::load_private_key(&ca, None).map_err(|e| e.to_string())?;
            let public = rrssh::keys::PublicKey::read_openssh_file(&key)
                .map_err(|e| format!("{}: not a public key ({e})", key.display()))?;
            let id = id.unwrap_or_else(|| {
                key.file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default()
            });
            let mut request = if host {
                rrssh::keys::CertificateRequest::host(id, principals, ttl)
            } else {
                rrssh::keys::CertificateRequest::user(id, principals, ttl)
            };
            request.serial = serial;
            request.force_command = force_command;
            request.source_address = source_address;
            request.extensions.retain(|e| {
                !(no_pty && e == "permit-pty"
                    || no_port_forwarding && e == "permit-port-forwarding")
            });
            for grant in grants {
                let (kind, names) = grant.split_once('=').ok_or_else(|| {
                    format!("--grant {grant}: KIND=NAMES, such as services=billing")
                })?;
                let extension = format!("{kind}@rrssh");
                if !rrssh::keys::CERTIFICATE_GRANTS
                    .iter()
                    .any(|(e, _)| *e == extension)
                {
                    return Err(format!(
                        "--grant {grant}: the kinds are services, scopes and groups"
                    ));
                }
                rrssh::auth::Grants::parse(names).map_err(|e| format!("--grant {grant}: {e}"))?;
                request.extensions.push(format!("{extension}={names}"));
            }
            let cert = rrssh::keys::sign_certificate(&ca_key, &public, &request)
                .map_err(|e| e.to_string())?;
            let out = cert_path(&key);
            std::fs::write(&out, cert.to_openssh().map_err(|e| e.to_string())? + "\n")
                .map_err(|e| format!("{}: {e}", out.display()))?;
            println!(
                "wrote {}: {} certificate {:?}, serial {}, for {}, valid {} more",
                out.display(),
                if host { "host" } else { "user" },
                cert.key_id(),
                cert.serial(),
                cert.valid_principals().join(","),
                humantime(ttl)
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn init(file: &Path, force: bool) -> Result<ExitCode, String> {
    let public = super::keygen::pub_path(file);
    if !force && (file.exists() || public.exists()) {
        return Err(format!(
            "{} already exists; refusing to overwrite it (use --force)",
            file.display()
        ));
    }
    let key = rrssh::keys::generate_ed25519("rrssh CA");
    rrssh::keys::write_key_pair(&key, file).map_err(|e| e.to_string())?;
    let line = key.public_key().to_openssh().map_err(|e| e.to_string())?;
    println!("wrote {} and {}", file.display(), public.display());
    println!("{}", rrssh::keys::fingerprint(key.public_key()));
    println!(
        "servers trusting its user certificates: --trusted-user-ca {}",
        public.display()
    );
    println!("clients trusting its host certificates, in known_hosts: @cert-authority * {line}");
    Ok(ExitCode::SUCCESS)
}

/// Where `ssh-keygen -s` writes the certificate of `key`: `id.pub` gives `id-cert.pub`.
fn cert_path(key: &Path) -> PathBuf {
    let s = key.to_string_lossy();
    let stem = s.strip_suffix(".pub").unwrap_or(&s);
    PathBuf::from(format!("{stem}-cert.pub"))
}

fn humantime(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s % 86_400 == 0 => format!("{} d", s / 86_400),
        s if s % 3_600 == 0 => format!("{} h", s / 3_600),
        s if s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}
