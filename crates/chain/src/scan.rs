//! Which jobs a validator must look at, read from the market's events block range by block
//! range: every job with a submitted result that has not been finalized or expired. The cost
//! of a scan is one `eth_getLogs` per log range ([`Market::with_log_range`], [`SCAN_RANGE`] by
//! default) of blocks, whatever the number of jobs the
//! market ever had, so a validator started after a thousand settled jobs does not read them
//! one by one.

use std::collections::BTreeSet;

use alloy::{
    primitives::U256,
    providers::Provider,
    rpc::types::Filter,
    sol_types::{SolEvent, SolEventInterface},
};

use crate::{ChainError, JobMarket, Market};

/// Blocks per `eth_getLogs` request by default: of a scan, a game's reads, the event follower
/// and the web app's index (`--log-range` sets another for a provider that serves fewer).
pub const SCAN_RANGE: u64 = 2_000;

/// What a scan of blocks `from..=to` found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Submissions {
    /// Jobs whose result was submitted in the range.
    pub submitted: BTreeSet<u64>,
    /// Jobs finalized or expired in the range: settled for good.
    pub settled: BTreeSet<u64>,
    /// The last block read.
    pub to: u64,
}

impl Market {
    /// The submissions and settlements of blocks `from` to the head, in ranges of
    /// [`Market::log_range`] blocks.
    pub async fn scan_submissions(&self, from: u64) -> Result<Submissions, ChainError> {
        let head = self.provider().get_block_number().await?;
        let mut found = Submissions {
            to: head,
            ..Submissions::default()
        };
        let mut start = from;
        while start <= head {
            let end = (start + self.log_range - 1).min(head);
            let filter = Filter::new()
                .address(self.deployment().job_market)
                .event_signature(vec![
                    JobMarket::ResultSubmitted::SIGNATURE_HASH,
                    JobMarket::JobFinalized::SIGNATURE_HASH,
                    JobMarket::JobExpired::SIGNATURE_HASH,
                ])
                .from_block(start)
                .to_block(end);
            for log in self.provider().get_logs(&filter).await? {
                let id = |job: U256| u64::try_from(job).ok();
                match JobMarket::JobMarketEvents::decode_log(&log.inner).map(|e| e.data) {
                    Ok(JobMarket::JobMarketEvents::ResultSubmitted(e)) => {
                        found.submitted.extend(id(e.jobId));
                    }
                    Ok(JobMarket::JobMarketEvents::JobFinalized(e)) => {
                        found.settled.extend(id(e.jobId));
                    }
                    Ok(JobMarket::JobMarketEvents::JobExpired(e)) => {
                        found.settled.extend(id(e.jobId));
                    }
                    _ => {}
                }
            }
            start = end + 1;
        }
        Ok(found)
    }
}
