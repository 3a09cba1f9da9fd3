//! Posting through someone else's signer: the transactions of a post, built here for a wallet
//! that the node does not hold (a browser's EIP-1193 wallet, through the web app), and the
//! record a requester keeps of each job it posted.

use std::path::{Path, PathBuf};

use alloy::{
    primitives::{Address, Bytes, U256, aliases::U40},
    sol_types::SolCall,
};
use pedals_chain::{DisputeGame, JobMarket, chain_time};
use serde::{Deserialize, Serialize};

use crate::{JobFiles, NodeError, PostTerms, Requester, requester::Posting};

/// One transaction for a wallet to sign and send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WalletCall {
    /// What it does, for the person who signs.
    pub what: String,
    /// The contract it calls.
    pub to: Address,
    /// The calldata.
    pub data: Bytes,
    /// The wei it sends.
    pub value: U256,
}

/// What a requester remembers of a job it posted, next to its store (`<dir>/jobs/<id>.json`):
/// what `pedals job serve` and `pedals job result` need.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PostedJob {
    /// The spec's CID.
    pub spec_cid: String,
    /// The dataset's CID.
    pub dataset_cid: String,
    /// The initial model's CID.
    pub model_cid: String,
    /// The held-out samples' CID, if some were kept back.
    pub holdout_cid: Option<String>,
}

impl PostedJob {
    /// Where job `id`'s record lives under the requester's folder `dir`.
    pub fn path(dir: &Path, id: u64) -> PathBuf {
        dir.join("jobs").join(format!("{id}.json"))
    }

    /// Writes the record of job `id`.
    pub fn save(&self, dir: &Path, id: u64) -> std::io::Result<()> {
        let path = Self::path(dir, id);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(path, text)
    }

    /// Reads the record of job `id`.
    pub fn load(dir: &Path, id: u64) -> std::io::Result<Self> {
        let text = std::fs::read(Self::path(dir, id))?;
        serde_json::from_slice(&text).map_err(std::io::Error::other)
    }
}

impl Requester {
    /// Stores and provides a training or batch-inference job's files, then returns the
    /// transactions that post it (a training spec's admission by the dispute game unless it
    /// was admitted, then the post with `terms.payment`), for a wallet to sign. Deadlines
    /// count from the chain's clock now.
    /// Every check that can fail runs here, before anything is signed.
    pub async fn wallet_calls(
        &self,
        files: &JobFiles,
        terms: &PostTerms,
    ) -> Result<Vec<WalletCall>, NodeError> {
        files.validate()?;
        let steps = files.spec.train.steps;
        let inference = files.spec.inference.is_some();
        // A batch-inference job has no dispute game to admit its spec.
        let admission = if inference {
            None
        } else {
            Some(self.spec_args(files).await?)
        };
        let posting = Posting {
            spec_hash: files.spec.spec_hash(),
            spec: files.spec.to_canonical_bytes(),
            dataset: &files.dataset,
            model: &files.model,
            steps,
            verification: if inference {
                pedals_core::Verification::OptimisticInference
            } else {
                pedals_core::Verification::Optimistic
            },
        };
        let mut request = self.store_files(&posting).await?;
        let market = self.market();
        let mut calls = Vec::new();
        if let Some((args, false)) = admission {
            calls.push(WalletCall {
                what: "admit the job's spec in the dispute game (once per spec)".into(),
                to: market.deployment().dispute_game,
                data: DisputeGame::admitSpecCall {
                    spec: args,
                    steps: U256::from(steps),
                }
                .abi_encode()
                .into(),
                value: U256::ZERO,
            });
        }
        let now = chain_time(market.provider()).await?;
        request.claimDeadline = U40::from(now + terms.claim_within);
        request.deliveryDeadline = U40::from(now + terms.deliver_within);
        request.challengeWindow = terms.challenge_window;
        calls.push(WalletCall {
            what: "post the job, escrowing its payment".into(),
            to: market.deployment().job_market,
            data: JobMarket::postJobCall { r: request }.abi_encode().into(),
            value: terms.payment,
        });
        Ok(calls)
    }
}
