//! Content identifiers: CIDv1 with the raw codec (0x55) and a sha2-256 multihash, the same
//! identifiers IPFS uses for raw blocks.
//!
//! On-chain a CID is its binary form, 36 bytes: `0x01 0x55 0x12 0x20 ‖ sha256(content)`.
//! As text it is multibase base32 (lowercase, starting with `b`), e.g. `bafkrei…`.

use ::cid::{Cid, Version, multihash::Multihash};
use alloy_primitives::{B256, hex};
use sha2::{Digest, Sha256};

use crate::{CoreError, error::shorten};

/// Multicodec code of the raw codec: the CID addresses the bytes themselves.
pub const RAW_CODEC: u64 = 0x55;
/// Multihash code of sha2-256.
pub const SHA2_256_CODE: u64 = 0x12;
/// The first four bytes of every binary CID that Pedals accepts: version 1, raw, sha2-256,
/// 32-byte digest.
pub const CID_PREFIX: [u8; 4] = [0x01, 0x55, 0x12, 0x20];
/// Length of a binary CID: the prefix and a 32-byte digest.
pub const CID_BYTES_LEN: usize = 36;

/// The CID of `bytes`: CIDv1, raw codec, sha2-256.
pub fn cid_of(bytes: &[u8]) -> Cid {
    let digest: [u8; 32] = Sha256::digest(bytes).into();
    cid_from_digest(&B256::from(digest))
}

/// The CID of content whose sha2-256 digest is `digest`.
pub fn cid_from_digest(digest: &B256) -> Cid {
    let hash = Multihash::wrap(SHA2_256_CODE, digest.as_slice())
        .expect("a 32-byte digest fits a 64-byte multihash");
    Cid::new_v1(RAW_CODEC, hash)
}

/// Checks that `cid` is of the one form Pedals uses (CIDv1, raw codec, 32-byte sha2-256).
pub fn check_cid(cid: &Cid) -> Result<(), CoreError> {
    let hash = cid.hash();
    let supported = cid.version() == Version::V1
        && cid.codec() == RAW_CODEC
        && hash.code() == SHA2_256_CODE
        && hash.size() == 32;
    if supported {
        return Ok(());
    }
    let version = match cid.version() {
        Version::V0 => "CIDv0",
        Version::V1 => "CIDv1",
    };
    Err(CoreError::UnsupportedCid {
        cid: cid.to_string(),
        found: format!(
            "{version} with codec {:#x} ({}) and hash {:#x} ({}) of {} bytes",
            cid.codec(),
            codec_name(cid.codec()),
            hash.code(),
            hash_name(hash.code()),
            hash.size()
        ),
    })
}

/// The sha2-256 digest inside a CID of the supported form.
pub fn cid_digest(cid: &Cid) -> Result<B256, CoreError> {
    check_cid(cid)?;
    Ok(B256::from_slice(cid.hash().digest()))
}

/// Checks that `bytes` is the content that `cid` names.
pub fn verify_cid(cid: &Cid, bytes: &[u8]) -> Result<(), CoreError> {
    check_cid(cid)?;
    let actual = cid_of(bytes);
    if actual == *cid {
        Ok(())
    } else {
        Err(CoreError::CidMismatch {
            expected: cid.to_string(),
            actual: actual.to_string(),
        })
    }
}

/// Parses a CID string (base32 `b…` as Pedals writes them; other multibase forms of the same
/// CID are accepted too) and checks that it is of the supported form.
pub fn parse_cid(s: &str) -> Result<Cid, CoreError> {
    let cid = Cid::try_from(s).map_err(|e| CoreError::CidParse {
        input: format!("{:?}", shorten(s, 80)),
        reason: e.to_string(),
    })?;
    check_cid(&cid)?;
    Ok(cid)
}

/// Parses a binary CID (the on-chain form, starting with 0x01), requiring that it fills `bytes`
/// exactly, and checks that it is of the supported form.
pub fn cid_from_bytes(bytes: &[u8]) -> Result<Cid, CoreError> {
    let error = |reason: String| {
        let shown = &bytes[..bytes.len().min(48)];
        let more = if bytes.len() > shown.len() { "…" } else { "" };
        CoreError::CidParse {
            input: format!("0x{}{more}", hex::encode(shown)),
            reason,
        }
    };
    let mut rest = bytes;
    let cid = Cid::read_bytes(&mut rest).map_err(|e| error(e.to_string()))?;
    if !rest.is_empty() {
        return Err(error(format!(
            "{} bytes after the end of the CID",
            rest.len()
        )));
    }
    check_cid(&cid)?;
    Ok(cid)
}

fn codec_name(code: u64) -> &'static str {
    match code {
        0x55 => "raw",
        0x70 => "dag-pb",
        0x71 => "dag-cbor",
        0x0129 => "dag-json",
        0x0200 => "json",
        _ => "unknown",
    }
}

fn hash_name(code: u64) -> &'static str {
    match code {
        0x00 => "identity",
        0x12 => "sha2-256",
        0x13 => "sha2-512",
        0x16 => "sha3-256",
        0x1b => "keccak-256",
        0x1e => "blake3",
        0xb220 => "blake2b-256",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vector() {
        // `printf 'hello world' | ipfs add --cid-version 1 --raw-leaves` gives this CID.
        let cid = cid_of(b"hello world");
        assert_eq!(
            cid.to_string(),
            "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
        );
        let bytes = cid.to_bytes();
        assert_eq!(bytes.len(), CID_BYTES_LEN);
        assert_eq!(bytes[..4], CID_PREFIX);
        assert_eq!(
            hex::encode(&bytes[4..]),
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
    }

    #[test]
    fn string_and_bytes_round_trip() {
        let cid = cid_of(b"pedals");
        assert_eq!(parse_cid(&cid.to_string()).expect("parse"), cid);
        assert_eq!(cid_from_bytes(&cid.to_bytes()).expect("parse"), cid);
        assert_eq!(
            cid_digest(&cid).expect("digest").as_slice(),
            cid.hash().digest()
        );
        verify_cid(&cid, b"pedals").expect("verifies");
    }

    #[test]
    fn tampered_content_is_a_mismatch() {
        let cid = cid_of(b"pedals");
        assert!(matches!(
            verify_cid(&cid, b"pedalz"),
            Err(CoreError::CidMismatch { .. })
        ));
    }

    #[test]
    fn other_forms_are_unsupported() {
        // A CIDv0 (dag-pb, sha2-256, base58).
        let v0 = Cid::new_v0(Multihash::wrap(SHA2_256_CODE, &[1; 32]).expect("multihash"))
            .expect("cid v0")
            .to_string();
        assert!(v0.starts_with("Qm"), "{v0}");
        let err = parse_cid(&v0).expect_err("v0 is unsupported");
        assert!(matches!(err, CoreError::UnsupportedCid { .. }), "{err}");
        assert!(err.to_string().contains("dag-pb"), "{err}");
        // A CIDv1 with the dag-pb codec.
        let mut bytes = cid_of(b"x").to_bytes();
        bytes[1] = 0x70;
        assert!(matches!(
            cid_from_bytes(&bytes),
            Err(CoreError::UnsupportedCid { .. })
        ));
        // A CIDv1 with keccak-256.
        let mh = Multihash::wrap(0x1b, &[7; 32]).expect("multihash");
        let cid = Cid::new_v1(RAW_CODEC, mh);
        let err = verify_cid(&cid, b"x").expect_err("keccak is unsupported");
        assert!(err.to_string().contains("keccak-256"), "{err}");
    }

    #[test]
    fn malformed_input_is_a_parse_error() {
        let mut bytes = cid_of(b"x").to_bytes();
        bytes.push(0);
        assert!(matches!(
            cid_from_bytes(&bytes),
            Err(CoreError::CidParse { .. })
        ));
        assert!(matches!(
            cid_from_bytes(&bytes[..20]),
            Err(CoreError::CidParse { .. })
        ));
        assert!(matches!(
            cid_from_bytes(&[]),
            Err(CoreError::CidParse { .. })
        ));
        assert!(matches!(
            parse_cid("bnotacid!"),
            Err(CoreError::CidParse { .. })
        ));
        assert!(matches!(parse_cid(""), Err(CoreError::CidParse { .. })));
    }
}
