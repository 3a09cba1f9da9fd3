//! The messages of `/pedals/span/1` (docs/split-inference.md, "On the wire"). Each is a JSON
//! header and, for activations, their canonical bytes after it:
//!
//! ```text
//! u32 header length (big-endian) | JSON header | activations (u64 start | i32 values, LE)
//! ```

use pedals_lm::Activations;
use serde::{Deserialize, Serialize};

use crate::{InferError, pay::WireVoucher, receipt::WireReceipt};

/// The largest JSON header accepted.
const MAX_HEADER: usize = 64 * 1024;

/// A client's request to a span server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase", deny_unknown_fields)]
pub enum Request {
    /// What do you serve?
    Info,
    /// Run blocks `start..end` of `model` over the activations that follow, in session
    /// `session` (a number the client picked; sessions are per client peer).
    #[serde(rename_all = "camelCase")]
    Forward {
        /// The session.
        session: u64,
        /// The model's CID.
        model: String,
        /// The first block to run.
        start: u32,
        /// One past the last block to run.
        end: u32,
        /// For a server that charges: the voucher for everything it computed in the session
        /// before this request.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        voucher: Option<WireVoucher>,
    },
    /// The session is over: free its cache.
    #[serde(rename_all = "camelCase")]
    Close {
        /// The session.
        session: u64,
        /// For a server that charges: the voucher for everything it computed in the session.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        voucher: Option<WireVoucher>,
    },
}

/// Why a server refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Refusal {
    /// Not this model, or blocks outside the span served.
    NotServed,
    /// The activations do not continue the session's cache (or the session is unknown: it
    /// was evicted, or the server restarted); `resend_from` says from which position.
    Gap,
    /// No cache left for another session now.
    Full,
    /// Malformed activations, or a message that does not decode.
    BadInput,
    /// No voucher, a voucher that does not pay what the session owes, or a deposit that does
    /// not cover it.
    Unpaid,
}

/// A server's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "camelCase", deny_unknown_fields)]
pub enum Reply {
    /// What it serves.
    #[serde(rename_all = "camelCase")]
    Info {
        /// The model's CID.
        model: String,
        /// The first block served.
        start: u32,
        /// One past the last block served.
        end: u32,
        /// The model's blocks in all.
        blocks: u32,
        /// Sessions it would take now.
        free_sessions: u32,
        /// Measured decoding speed through the span, tokens per second.
        tokens_per_second: f64,
    },
    /// The span's output follows; `cached` positions are now in the session.
    #[serde(rename_all = "camelCase")]
    Output {
        /// Positions the session holds after this request.
        cached: u64,
        /// A server that stakes: its signed receipt of the answer (docs/split-inference.md,
        /// "Disputes").
        #[serde(default, skip_serializing_if = "Option::is_none")]
        receipt: Option<Box<WireReceipt>>,
    },
    /// The session is closed.
    Closed,
    /// Refused; nothing changed.
    #[serde(rename_all = "camelCase")]
    Refused {
        /// Why, for programs.
        code: Refusal,
        /// Why, for people.
        reason: String,
        /// For [`Refusal::Gap`]: the position to resend the session's rows from.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resend_from: Option<u64>,
    },
}

/// Encodes a header and, if any, the activations after it.
pub fn encode<H: Serialize>(header: &H, acts: Option<&Activations>) -> Vec<u8> {
    let json = serde_json::to_vec(header).expect("span headers serialize");
    let mut out = Vec::with_capacity(4 + json.len());
    out.extend_from_slice(&(json.len() as u32).to_be_bytes());
    out.extend_from_slice(&json);
    if let Some(a) = acts {
        out.extend_from_slice(&a.to_bytes());
    }
    out
}

/// Decodes a header and the activations after it (`None` when nothing follows).
pub fn decode<H: for<'de> Deserialize<'de>>(
    bytes: &[u8],
) -> Result<(H, Option<Activations>), InferError> {
    let bad = |m: String| InferError::Protocol(m);
    if bytes.len() < 4 {
        return Err(bad(format!("a message of {} bytes", bytes.len())));
    }
    let len = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    if len > MAX_HEADER || 4 + len > bytes.len() {
        return Err(bad(format!(
            "a header of {len} bytes in a message of {}",
            bytes.len()
        )));
    }
    let header = serde_json::from_slice(&bytes[4..4 + len])
        .map_err(|e| bad(format!("the header does not decode: {e}")))?;
    let rest = &bytes[4 + len..];
    let acts = if rest.is_empty() {
        None
    } else {
        Some(Activations::from_bytes(rest)?)
    };
    Ok((header, acts))
}

/// A refusal with its reason.
pub(crate) fn refused(code: Refusal, reason: impl Into<String>, resend_from: Option<u64>) -> Reply {
    Reply::Refused {
        code,
        reason: reason.into(),
        resend_from,
    }
}
