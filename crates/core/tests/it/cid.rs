//! CIDs: string and binary round trips, and tampering with content or CID.

use pedals_core::{
    CID_BYTES_LEN, CID_PREFIX, CoreError, cid_digest, cid_from_bytes, cid_of, parse_cid, verify_cid,
};
use proptest::prelude::*;
use sha2::{Digest, Sha256};

use crate::config;

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn round_trips(content in prop::collection::vec(any::<u8>(), 0..2048)) {
        let cid = cid_of(&content);
        let text = cid.to_string();
        prop_assert!(text.starts_with("bafkrei"), "{}", text);
        prop_assert_eq!(parse_cid(&text).expect("parse"), cid);

        let bytes = cid.to_bytes();
        prop_assert_eq!(bytes.len(), CID_BYTES_LEN);
        prop_assert_eq!(&bytes[..4], &CID_PREFIX[..]);
        let digest: [u8; 32] = Sha256::digest(&content).into();
        prop_assert_eq!(&bytes[4..], &digest[..]);
        prop_assert_eq!(cid_from_bytes(&bytes).expect("parse"), cid);
        let digest = cid_digest(&cid).expect("digest");
        prop_assert_eq!(digest.as_slice(), &bytes[4..]);
        prop_assert_eq!(verify_cid(&cid, &content), Ok(()));
    }

    #[test]
    fn tampered_content_fails(
        content in prop::collection::vec(any::<u8>(), 1..512),
        at in any::<prop::sample::Index>(),
        bit in 0..8u8,
    ) {
        let cid = cid_of(&content);
        let mut tampered = content.clone();
        tampered[at.index(content.len())] ^= 1 << bit;
        let result = verify_cid(&cid, &tampered);
        prop_assert!(matches!(result, Err(CoreError::CidMismatch { .. })), "{:?}", result);
        let mut longer = content.clone();
        longer.push(0);
        prop_assert!(verify_cid(&cid, &longer).is_err());
    }

    #[test]
    fn a_tampered_binary_cid_fails(
        content in prop::collection::vec(any::<u8>(), 0..256),
        at in 0..CID_BYTES_LEN,
        bit in 0..8u8,
    ) {
        let mut bytes = cid_of(&content).to_bytes();
        bytes[at] ^= 1 << bit;
        // Either it is no longer a supported CID, or it names other content.
        if let Ok(cid) = cid_from_bytes(&bytes) {
            prop_assert!(at >= 4, "a changed prefix must not parse");
            let result = verify_cid(&cid, &content);
            prop_assert!(matches!(result, Err(CoreError::CidMismatch { .. })), "{:?}", result);
        }
    }

    #[test]
    fn parsing_arbitrary_input_never_panics(
        text in "\\PC{0,80}",
        bytes in prop::collection::vec(any::<u8>(), 0..80),
    ) {
        let _ = parse_cid(&text);
        let _ = parse_cid(&format!("b{text}"));
        if let Ok(cid) = cid_from_bytes(&bytes) {
            prop_assert_eq!(cid.to_bytes(), bytes);
        }
    }
}
