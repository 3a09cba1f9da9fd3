//! Fetching a blob from an IPFS HTTP gateway, a second source next to libp2p providers.
//!
//! It asks for the raw block (`/ipfs/<cid>?format=raw`, `Accept: application/vnd.ipld.raw`,
//! the trustless-gateway form), caps the download, and leaves the check against the CID to the
//! caller: a gateway is trusted no more than a peer.

use std::time::Duration;

use alloy::transports::http::reqwest::{Client, Url};
use pedals_core::Cid;

/// Downloads `cid` from `gateway`, refusing more than `max_bytes`. The bytes are not yet
/// checked against `cid`: the caller does that.
pub async fn fetch(
    http: &Client,
    gateway: &Url,
    cid: &Cid,
    max_bytes: u64,
) -> Result<Vec<u8>, String> {
    let url = format!(
        "{}/ipfs/{cid}?format=raw",
        gateway.as_str().trim_end_matches('/')
    );
    let mut response = http
        .get(&url)
        .header("Accept", "application/vnd.ipld.raw")
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .map_err(|e| format!("the gateway {gateway} did not answer: {e}"))?;
    if !response.status().is_success() {
        return Err(format!(
            "the gateway {gateway} answered {} for {cid}",
            response.status()
        ));
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("the download from {gateway} broke off: {e}"))?
    {
        bytes.extend_from_slice(&chunk);
        if bytes.len() as u64 > max_bytes {
            return Err(format!(
                "the gateway {gateway} sent more than {max_bytes} bytes for {cid}"
            ));
        }
    }
    Ok(bytes)
}
