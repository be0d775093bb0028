//! OpenSSH's key revocation lists (KRL, the format in OpenSSH's PROTOCOL.krl, written by
//! `ssh-keygen -k`): revoked plain keys (explicit or by SHA-1/SHA-256 fingerprint), and revoked
//! certificates by CA and serial (lists, ranges, bitmaps) or key id.

use std::collections::HashSet;

const MAGIC: &[u8; 8] = b"SSHKRL\n\0";
const FORMAT_VERSION: u32 = 1;

const SECTION_CERTIFICATES: u8 = 1;
const SECTION_EXPLICIT_KEY: u8 = 2;
const SECTION_FINGERPRINT_SHA1: u8 = 3;
const SECTION_SIGNATURE: u8 = 4;
const SECTION_FINGERPRINT_SHA256: u8 = 5;

const CERT_SERIAL_LIST: u8 = 0x20;
const CERT_SERIAL_RANGE: u8 = 0x21;
const CERT_SERIAL_BITMAP: u8 = 0x22;
const CERT_KEY_ID: u8 = 0x23;

/// The largest serial bitmap read (bits); `ssh-keygen` writes bitmaps only for dense runs.
const MAX_BITMAP_BYTES: usize = 1 << 20;

/// Whether `data` starts as a KRL does.
pub(super) fn is_krl(data: &[u8]) -> bool {
    data.starts_with(MAGIC)
}

/// The certificates one CA (or every CA, `ca: None`) revoked.
#[derive(Debug, Default)]
pub(super) struct RevokedCertificates {
    /// The CA's public key blob; `None`: certificates of any CA.
    pub(super) ca: Option<Vec<u8>>,
    pub(super) serials: HashSet<u64>,
    pub(super) ranges: Vec<(u64, u64)>,
    pub(super) key_ids: HashSet<String>,
}

impl RevokedCertificates {
    pub(super) fn revokes(&self, serial: u64, key_id: &str) -> bool {
        self.serials.contains(&serial)
            || self
                .ranges
                .iter()
                .any(|&(lo, hi)| lo <= serial && serial <= hi)
            || self.key_ids.contains(key_id)
    }
}

/// What one KRL revokes.
#[derive(Debug, Default)]
pub(super) struct Krl {
    pub(super) blobs: HashSet<Vec<u8>>,
    pub(super) sha1: HashSet<Vec<u8>>,
    pub(super) sha256: HashSet<Vec<u8>>,
    pub(super) certificates: Vec<RevokedCertificates>,
}

/// A reader of SSH wire encoding, every read bounds-checked.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("the KRL is cut short".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    fn string(&mut self) -> Result<&'a [u8], String> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Parses a KRL; a malformed one is an error (and revokes everything where it is used: the
/// caller fails closed).
pub(super) fn parse(data: &[u8]) -> Result<Krl, String> {
    let mut r = Reader(data);
    if r.take(8)? != MAGIC {
        return Err("not a KRL (no SSHKRL magic)".into());
    }
    let version = r.u32()?;
    if version != FORMAT_VERSION {
        return Err(format!(
            "KRL format version {version}, not {FORMAT_VERSION}"
        ));
    }
    let _krl_version = r.u64()?;
    let _generated = r.u64()?;
    let _flags = r.u64()?;
    let _reserved = r.string()?;
    let _comment = r.string()?;
    let mut krl = Krl::default();
    while !r.is_empty() {
        let kind = r.u8()?;
        let mut section = Reader(r.string()?);
        match kind {
            SECTION_CERTIFICATES => krl.certificates.push(certificates(&mut section)?),
            SECTION_EXPLICIT_KEY => {
                while !section.is_empty() {
                    krl.blobs.insert(section.string()?.to_vec());
                }
            }
            SECTION_FINGERPRINT_SHA1 | SECTION_FINGERPRINT_SHA256 => {
                let set = if kind == SECTION_FINGERPRINT_SHA1 {
                    &mut krl.sha1
                } else {
                    &mut krl.sha256
                };
                while !section.is_empty() {
                    set.insert(section.string()?.to_vec());
                }
            }
            // Signatures are not checked (nor are they by sshd): the file is trusted as the
            // server's configuration.
            SECTION_SIGNATURE => {}
            other => return Err(format!("unknown KRL section {other}")),
        }
    }
    Ok(krl)
}

fn certificates(r: &mut Reader<'_>) -> Result<RevokedCertificates, String> {
    let ca = r.string()?;
    let _reserved = r.string()?;
    let mut revoked = RevokedCertificates {
        ca: (!ca.is_empty()).then(|| ca.to_vec()),
        ..RevokedCertificates::default()
    };
    while !r.is_empty() {
        let kind = r.u8()?;
        let mut sub = Reader(r.string()?);
        match kind {
            CERT_SERIAL_LIST => {
                while !sub.is_empty() {
                    revoked.serials.insert(sub.u64()?);
                }
            }
            CERT_SERIAL_RANGE => {
                let (lo, hi) = (sub.u64()?, sub.u64()?);
                if lo > hi {
                    return Err("a KRL serial range ends before it starts".into());
                }
                revoked.ranges.push((lo, hi));
            }
            CERT_SERIAL_BITMAP => {
                let offset = sub.u64()?;
                let bitmap = sub.string()?;
                if bitmap.len() > MAX_BITMAP_BYTES {
                    return Err("a KRL serial bitmap is too large".into());
                }
                // An mpint, most significant byte first; bit i from the end is serial
                // offset + i.
                for (i, byte) in bitmap.iter().rev().enumerate() {
                    for bit in 0..8 {
                        if byte & (1 << bit) != 0 {
                            let n = (i * 8 + bit) as u64;
                            revoked.serials.insert(
                                offset
                                    .checked_add(n)
                                    .ok_or("a KRL serial bitmap runs past the last serial")?,
                            );
                        }
                    }
                }
            }
            CERT_KEY_ID => {
                while !sub.is_empty() {
                    let id = sub.string()?;
                    revoked
                        .key_ids
                        .insert(String::from_utf8_lossy(id).into_owned());
                }
            }
            other => return Err(format!("unknown KRL certificate section {other}")),
        }
    }
    Ok(revoked)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(out: &mut Vec<u8>, s: &[u8]) {
        out.extend_from_slice(&(s.len() as u32).to_be_bytes());
        out.extend_from_slice(s);
    }

    fn header() -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&1u32.to_be_bytes());
        out.extend_from_slice(&[0; 24]);
        string(&mut out, b"");
        string(&mut out, b"test");
        out
    }

    #[test]
    fn serial_lists_ranges_bitmaps_and_key_ids() {
        let mut certs = Vec::new();
        string(&mut certs, b"CA-BLOB");
        string(&mut certs, b"");
        let mut list = Vec::new();
        list.extend_from_slice(&7u64.to_be_bytes());
        certs.push(CERT_SERIAL_LIST);
        string(&mut certs, &list);
        let mut range = Vec::new();
        range.extend_from_slice(&100u64.to_be_bytes());
        range.extend_from_slice(&200u64.to_be_bytes());
        certs.push(CERT_SERIAL_RANGE);
        string(&mut certs, &range);
        let mut bitmap = Vec::new();
        bitmap.extend_from_slice(&1000u64.to_be_bytes());
        string(&mut bitmap, &[0b0000_0101]);
        certs.push(CERT_SERIAL_BITMAP);
        string(&mut certs, &bitmap);
        let mut ids = Vec::new();
        string(&mut ids, b"stolen-laptop");
        certs.push(CERT_KEY_ID);
        string(&mut certs, &ids);
        let mut krl = header();
        krl.push(SECTION_CERTIFICATES);
        string(&mut krl, &certs);
        let parsed = parse(&krl).unwrap();
        let c = &parsed.certificates[0];
        assert_eq!(c.ca.as_deref(), Some(&b"CA-BLOB"[..]));
        for serial in [7, 100, 150, 200, 1000, 1002] {
            assert!(c.revokes(serial, "x"), "{serial}");
        }
        for serial in [6, 99, 201, 1001, 1003] {
            assert!(!c.revokes(serial, "x"), "{serial}");
        }
        assert!(c.revokes(1, "stolen-laptop"));
    }

    #[test]
    fn damaged_lists_are_errors() {
        assert!(parse(b"SSHKRL\n").is_err());
        assert!(parse(b"NOTAKRL\0xxxxxxxxxxxx").is_err());
        let mut krl = header();
        krl.push(9);
        string(&mut krl, b"");
        assert!(parse(&krl).unwrap_err().contains("unknown KRL section"));
        let mut krl = header();
        krl.push(SECTION_EXPLICIT_KEY);
        krl.extend_from_slice(&100u32.to_be_bytes());
        assert!(parse(&krl).unwrap_err().contains("cut short"));
    }
}
