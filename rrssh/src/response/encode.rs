//! Writing JSON: serde_json, or sonic-rs with the `fast-json` feature.

use bytes::{BufMut, BytesMut};
use serde::Serialize;

/// Writes `value` as JSON at the end of `buf`; on an error `buf` is as it was.
///
/// With the `fast-json` feature sonic-rs writes it, and serde_json writes again what sonic-rs
/// would have written differently: serde_json's own types (`RawValue`, arbitrary-precision
/// numbers) reach a serializer as structs with a private name, which only serde_json reads as
/// raw JSON. The bytes mean the same either way.
pub(crate) fn encode_json<T: Serialize + ?Sized>(
    buf: &mut BytesMut,
    value: &T,
) -> Result<(), serde_json::Error> {
    let start = buf.len();
    #[cfg(feature = "fast-json")]
    {
        const PRIVATE: &[u8] = b"\"$serde_json::private::";
        if sonic_rs::to_writer((&mut *buf).writer(), value).is_ok()
            && memchr::memmem::find(&buf[start..], PRIVATE).is_none()
        {
            return Ok(());
        }
        buf.truncate(start);
    }
    let written = serde_json::to_writer((&mut *buf).writer(), value);
    if written.is_err() {
        buf.truncate(start);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded<T: Serialize + ?Sized>(v: &T) -> Vec<u8> {
        let mut buf = BytesMut::from(&b"prefix "[..]);
        encode_json(&mut buf, v).unwrap();
        assert!(buf.starts_with(b"prefix "), "what was in the buffer stays");
        buf[7..].to_vec()
    }

    #[test]
    fn writes_what_serde_json_writes() {
        let text = "quote \" backslash \\ newline \n tab \t nul \u{0} bell \u{7} del \u{7f} é 漢 🦀 </script>";
        let long = "y".repeat(5000) + text;
        let mut keys = std::collections::BTreeMap::new();
        keys.insert(7u32, "seven");
        keys.insert(11u32, "eleven");
        let cases: Vec<serde_json::Value> = vec![
            serde_json::json!(text),
            serde_json::json!(long),
            serde_json::json!({"id": 12345, "neg": -2, "big": u64::MAX, "small": i64::MIN,
                "ok": true, "none": null, "list": [1, "two", [3], {"four": 4}], "": ""}),
            serde_json::to_value(&keys).unwrap(),
        ];
        for v in &cases {
            assert_eq!(encoded(v), serde_json::to_vec(v).unwrap(), "{v}");
        }
        // Floats: the same number, whichever shortest form is written.
        for f in [
            1.5,
            -0.0,
            1e21,
            1e-7,
            0.1 + 0.2,
            f64::MAX,
            f64::MIN_POSITIVE,
        ] {
            let back: f64 = serde_json::from_slice(&encoded(&f)).unwrap();
            assert_eq!(back.to_bits(), f.to_bits(), "{f}");
        }
        assert_eq!(encoded(&f64::NAN), b"null");
    }

    #[test]
    fn serde_json_private_types_are_written_as_serde_json_writes_them() {
        let raw =
            serde_json::value::RawValue::from_string(r#"{"pre":"formatted" , "n":[1,2]}"#.into())
                .unwrap();
        assert_eq!(encoded(&raw), br#"{"pre":"formatted" , "n":[1,2]}"#);
        #[derive(Serialize)]
        struct Wrapper<'a> {
            inner: &'a serde_json::value::RawValue,
            name: &'a str,
        }
        let w = Wrapper {
            inner: &raw,
            name: "around it",
        };
        assert_eq!(encoded(&w), serde_json::to_vec(&w).unwrap());
    }

    #[test]
    fn an_error_leaves_the_buffer_as_it_was() {
        let mut bad = std::collections::HashMap::new();
        bad.insert(vec![1u8], 1);
        let mut buf = BytesMut::from(&b"kept"[..]);
        assert!(encode_json(&mut buf, &bad).is_err());
        assert_eq!(&buf[..], b"kept");
    }
}
