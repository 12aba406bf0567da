//! AWS Signature Version 4, checked as the service checks it (with
//! [`EmulatorConfig::signing_secret`](crate::EmulatorConfig::signing_secret)): the signature
//! is computed again from what arrived (method, path, query, the signed headers, the SHA-256
//! of the body) and compared with the `Authorization` header's. A client that changes the
//! body after signing, or signs with another secret, is refused as AWS refuses it.

use hmac::{Hmac, KeyInit, Mac};
use hyper::HeaderMap;
use sha2::{Digest, Sha256};

/// Error code of a refused signature.
pub const INVALID_SIGNATURE: &str = "InvalidSignatureException";

/// The parts of `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
struct Authorization<'a> {
    /// `date/region/service/aws4_request`.
    scope: &'a str,
    signed_headers: &'a str,
    signature: &'a str,
}

fn parse(value: &str) -> Option<Authorization<'_>> {
    let rest = value.strip_prefix("AWS4-HMAC-SHA256 ")?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',').map(str::trim) {
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let (_key, scope) = credential?.split_once('/')?;
    Some(Authorization {
        scope,
        signed_headers: signed?,
        signature: signature?,
    })
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A header's values as SigV4 puts them in the canonical request: trimmed, inner runs of
/// spaces made one, several values joined by commas.
fn canonical_value(headers: &HeaderMap, name: &str) -> Option<String> {
    let values: Vec<String> = headers
        .get_all(name)
        .iter()
        .map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    (!values.is_empty()).then(|| values.join(","))
}

/// The query string as SigV4 canonicalizes it: pairs sorted (already percent-encoded).
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(&str, &str)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect();
    pairs.sort_unstable();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Checks the request's SigV4 signature with `secret`; `Err` says why it does not match.
pub fn verify(
    method: &str,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
    secret: &str,
) -> Result<(), String> {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(parse)
        .ok_or("Missing or malformed Authorization header (AWS4-HMAC-SHA256 expected).")?;
    let date = headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or("Missing X-Amz-Date header.")?;
    let mut canonical_headers = String::new();
    for name in auth.signed_headers.split(';') {
        let value = canonical_value(headers, name)
            .ok_or_else(|| format!("Signed header {name} is not in the request."))?;
        canonical_headers.push_str(&format!("{name}:{value}\n"));
    }
    let canonical = format!(
        "{method}\n{path}\n{}\n{canonical_headers}\n{}\n{}",
        canonical_query(query),
        auth.signed_headers,
        hex(&Sha256::digest(body)),
    );
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{date}\n{}\n{}",
        auth.scope,
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let mut key = format!("AWS4{secret}").into_bytes();
    for part in auth.scope.split('/') {
        key = hmac(&key, part.as_bytes());
    }
    let expected = hex(&hmac(&key, to_sign.as_bytes()));
    if expected == auth.signature {
        Ok(())
    } else {
        Err("The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    /// AWS's published example (the `get-vanilla` case of the SigV4 test suite).
    fn vanilla() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("example.amazonaws.com"));
        h.insert("x-amz-date", HeaderValue::from_static("20150830T123600Z"));
        h.insert(
            "authorization",
            HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            ),
        );
        h
    }

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    #[test]
    fn the_published_example_verifies() {
        assert_eq!(verify("GET", "/", "", &vanilla(), b"", SECRET), Ok(()));
    }

    #[test]
    fn another_body_secret_or_header_is_refused() {
        let h = vanilla();
        assert!(verify("GET", "/", "", &h, b"x", SECRET).is_err());
        assert!(verify("GET", "/", "", &h, b"", "other").is_err());
        assert!(verify("POST", "/", "", &h, b"", SECRET).is_err());
        let mut moved = h.clone();
        moved.insert("host", HeaderValue::from_static("example.amazonaws.com:1"));
        assert!(verify("GET", "/", "", &moved, b"", SECRET).is_err());
        let mut unsigned = h;
        unsigned.remove("authorization");
        assert!(verify("GET", "/", "", &unsigned, b"", SECRET).is_err());
    }
}
