//! What the market's language-model job specs share: their canonical bytes are compact JSON
//! (fields in declaration order, integers and strings only), the sha2-256 digest of which is
//! the job's on-chain `specHash` and its CIDv1 the spec's content address.

use alloy_primitives::B256;
use cid::Cid;
use pedals_core::cid_of;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::LmError;

/// A job spec with canonical bytes.
pub trait CanonicalSpec: Serialize + DeserializeOwned {
    /// What the spec is called in errors (`"lm job spec"`).
    const WHAT: &'static str;

    /// Checks every field.
    fn validate(&self) -> Result<(), LmError>;

    /// The canonical bytes.
    fn to_canonical_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The on-chain `specHash`: the sha2-256 digest of the canonical bytes.
    fn spec_hash(&self) -> B256 {
        B256::from_slice(self.cid().hash().digest())
    }

    /// The spec's CIDv1 (raw, sha2-256).
    fn cid(&self) -> Cid {
        cid_of(&self.to_canonical_bytes())
    }

    /// Reads canonical bytes: refuses anything that does not re-encode to the same bytes, or
    /// does not validate.
    fn from_canonical_bytes(bytes: &[u8]) -> Result<Self, LmError> {
        let spec: Self = serde_json::from_slice(bytes)
            .map_err(|e| LmError::Format(format!("the {} is not valid: {e}", Self::WHAT)))?;
        if spec.to_canonical_bytes() != bytes {
            return Err(LmError::Format(format!(
                "the {} is not in canonical form (compact JSON, fields in order)",
                Self::WHAT
            )));
        }
        spec.validate()?;
        Ok(spec)
    }
}

/// Checks that `bytes` are the file `cid` names (`what` says which, in the error).
pub(crate) fn named_by(bytes: &[u8], cid: &Cid, what: &str) -> Result<(), LmError> {
    if cid_of(bytes) == *cid {
        Ok(())
    } else {
        Err(LmError::Format(format!(
            "the {what} bytes are not the ones the spec names: the requester built the spec \
             from other files; do not run this job"
        )))
    }
}
