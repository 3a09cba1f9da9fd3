//! Gossip topics and their messages: job announcements, provider capacity and training
//! progress.
//!
//! Announcements are hints that help workers and requesters find each other quickly; the
//! chain stays the source of truth, so a node checks a job on-chain before acting on it.
//! Every message is validated before gossipsub forwards it: a message that does not decode or
//! breaks a rule is rejected, which costs its sender peer score; a stale one is ignored.

use std::time::{SystemTime, UNIX_EPOCH};

use alloy_primitives::{Address, B256, Signature, U256, keccak256};
use libp2p::gossipsub::{IdentTopic, MessageAcceptance};
use pedals_core::parse_cid;
use serde::{Deserialize, Serialize};

/// The topic of job announcements.
pub const JOBS_TOPIC: &str = "pedals/jobs/1";
/// The topic of provider capacity announcements.
pub const CAPACITY_TOPIC: &str = "pedals/capacity/1";
/// The topic of workers' training progress.
pub const PROGRESS_TOPIC: &str = "pedals/progress/1";
/// The topic of span servers' announcements (split-model inference).
pub const SPANS_TOPIC: &str = "pedals/spans/1";
/// The largest gossip message, in bytes.
pub const MAX_GOSSIP_BYTES: usize = 4 * 1024;
/// Announcements older than this are ignored, in seconds.
pub(crate) const MAX_AGE_SECS: u64 = 3600;
/// Announcements dated further than this in the future are rejected, in seconds.
pub(crate) const MAX_CLOCK_SKEW_SECS: u64 = 300;

/// A requester's announcement that a job is open on-chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobAnnouncement {
    /// The chain the job lives on.
    pub chain_id: u64,
    /// The JobMarket contract.
    pub market: Address,
    /// The job id on-chain.
    pub job_id: u64,
    /// The job spec's CID.
    pub spec_cid: String,
    /// The dataset's CID.
    pub dataset_cid: String,
    /// The initial model's CID.
    pub model_cid: String,
    /// Steps paid for.
    pub steps: u64,
    /// The escrowed payment, in wei.
    pub payment_wei: U256,
    /// When it was announced, in Unix seconds.
    pub announced_at: u64,
}

/// A provider's announcement of what it can take on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CapacityAnnouncement {
    /// The chain it works on.
    pub chain_id: u64,
    /// Its account.
    pub worker: Address,
    /// The backends it trains on, such as `cpu-avx512-vnni` or `wgpu`.
    pub backends: Vec<String>,
    /// Its measured training speed on the reference model, in steps per second.
    pub steps_per_second: f64,
    /// The lowest payment per step it accepts, in wei.
    pub min_wei_per_step: U256,
    /// How many more jobs it would take now.
    pub free_slots: u32,
    /// When it was announced, in Unix seconds.
    pub announced_at: u64,
}

/// A worker's report of how far it has got with a job it claimed, signed with the worker's
/// account key so that a watcher can check it against the job's worker on-chain (the peer id
/// that gossip authenticates is not bound to any account).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProgressAnnouncement {
    /// The chain the job lives on.
    pub chain_id: u64,
    /// The JobMarket contract.
    pub market: Address,
    /// The job id on-chain.
    pub job_id: u64,
    /// The worker's account, which signed it.
    pub worker: Address,
    /// Steps done (chunks, for batch inference).
    pub steps_done: u64,
    /// Steps in the job.
    pub steps: u64,
    /// When it was announced, in Unix seconds.
    pub announced_at: u64,
    /// The training loss the worker measured at its last checkpoint, in millionths (the mean
    /// cross-entropy of that step's batch). The worker's word, for people to look at: nothing
    /// is paid or disputed on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_micro: Option<u64>,
    /// The worker's EIP-191 signature of [`ProgressAnnouncement::message`] (65 bytes, r‖s‖v).
    pub signature: Signature,
}

impl ProgressAnnouncement {
    /// The message the worker signs (EIP-191 `personal_sign`):
    /// `keccak256("pedals.progress.1" ‖ chain_id ‖ market ‖ job_id ‖ steps_done ‖ steps ‖
    /// announced_at)`, integers as 8 big-endian bytes; with a loss, `"pedals.progress.2"` and
    /// `loss_micro` after `announced_at`.
    pub fn message(
        chain_id: u64,
        market: Address,
        job_id: u64,
        (steps_done, steps): (u64, u64),
        announced_at: u64,
        loss_micro: Option<u64>,
    ) -> B256 {
        let mut buf = Vec::with_capacity(17 + 20 + 6 * 8);
        buf.extend_from_slice(match loss_micro {
            None => b"pedals.progress.1",
            Some(_) => b"pedals.progress.2",
        });
        buf.extend_from_slice(&chain_id.to_be_bytes());
        buf.extend_from_slice(market.as_slice());
        for n in [job_id, steps_done, steps, announced_at] {
            buf.extend_from_slice(&n.to_be_bytes());
        }
        if let Some(loss) = loss_micro {
            buf.extend_from_slice(&loss.to_be_bytes());
        }
        keccak256(buf)
    }

    /// The account whose key signed it, if the signature is valid.
    pub fn signer(&self) -> Option<Address> {
        let message = Self::message(
            self.chain_id,
            self.market,
            self.job_id,
            (self.steps_done, self.steps),
            self.announced_at,
            self.loss_micro,
        );
        self.signature.recover_address_from_msg(message).ok()
    }
}

/// A server's announcement that it serves a span of a model's blocks
/// (docs/split-inference.md). The peer that gossip authenticates as its source is the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SpanAnnouncement {
    /// The model's CID.
    pub model_cid: String,
    /// The first block served.
    pub start: u32,
    /// One past the last block served.
    pub end: u32,
    /// The model's blocks in all.
    pub blocks: u32,
    /// Measured: tokens per second through the span, one token at a time (decoding).
    pub tokens_per_second: f64,
    /// The price of one token through the span, in wei.
    pub wei_per_token: U256,
    /// Sessions it would take now.
    pub free_sessions: u32,
    /// The account vouchers must pay (none: it serves for free).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payee: Option<Address>,
    /// Where to dial it (multiaddrs ending in its peer id; at most 8): a client that learned of
    /// it through gossip is not connected to it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addrs: Vec<String>,
    /// When it was announced, in Unix seconds.
    pub announced_at: u64,
}

/// A message on one of the topics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Announcement {
    /// On [`JOBS_TOPIC`].
    Job(JobAnnouncement),
    /// On [`CAPACITY_TOPIC`].
    Capacity(CapacityAnnouncement),
    /// On [`PROGRESS_TOPIC`].
    Progress(ProgressAnnouncement),
    /// On [`SPANS_TOPIC`].
    Span(SpanAnnouncement),
}

impl Announcement {
    /// The topic it is published on.
    pub fn topic(&self) -> IdentTopic {
        IdentTopic::new(match self {
            Self::Job(_) => JOBS_TOPIC,
            Self::Capacity(_) => CAPACITY_TOPIC,
            Self::Progress(_) => PROGRESS_TOPIC,
            Self::Span(_) => SPANS_TOPIC,
        })
    }

    fn announced_at(&self) -> u64 {
        match self {
            Self::Job(j) => j.announced_at,
            Self::Capacity(c) => c.announced_at,
            Self::Progress(p) => p.announced_at,
            Self::Span(s) => s.announced_at,
        }
    }

    /// The rules a message must follow, beyond decoding.
    fn check(&self) -> Result<(), String> {
        match self {
            Self::Job(job) => {
                for (what, cid) in [
                    ("spec", &job.spec_cid),
                    ("dataset", &job.dataset_cid),
                    ("model", &job.model_cid),
                ] {
                    parse_cid(cid).map_err(|e| format!("its {what} CID: {e}"))?;
                }
                if job.steps == 0 {
                    return Err("a job of zero steps".into());
                }
            }
            Self::Capacity(cap) => {
                if cap.backends.len() > 8 || cap.backends.iter().any(|b| b.len() > 32) {
                    return Err("more than 8 backends or a name over 32 bytes".into());
                }
                if !cap.steps_per_second.is_finite() || cap.steps_per_second < 0.0 {
                    return Err("a speed that is not a finite non-negative number".into());
                }
            }
            Self::Progress(p) => {
                if p.steps == 0 || p.steps_done > p.steps {
                    return Err(format!("{} of {} steps done", p.steps_done, p.steps));
                }
                if p.signer() != Some(p.worker) {
                    return Err(format!("not signed by the worker {}", p.worker));
                }
            }
            Self::Span(s) => {
                parse_cid(&s.model_cid).map_err(|e| format!("its model CID: {e}"))?;
                if s.start >= s.end || s.end > s.blocks || s.blocks > 4096 {
                    return Err(format!(
                        "blocks {}..{} of {}: not a span",
                        s.start, s.end, s.blocks
                    ));
                }
                if !s.tokens_per_second.is_finite() || s.tokens_per_second < 0.0 {
                    return Err("a speed that is not a finite non-negative number".into());
                }
                if s.addrs.len() > 8 || s.addrs.iter().any(|a| a.len() > 256) {
                    return Err("more than 8 addresses or one over 256 bytes".into());
                }
            }
        }
        Ok(())
    }

    /// Encodes it for publishing.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("announcements serialize")
    }
}

/// Unix seconds now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Decodes and judges a message that arrived on `topic`: `Accept` with the announcement,
/// `Reject` (the sender is penalized) with a reason, or `Ignore` for a stale one.
pub(crate) fn validate(
    topic: &str,
    data: &[u8],
    now: u64,
) -> (MessageAcceptance, Result<Announcement, String>) {
    let reject = |reason: String| (MessageAcceptance::Reject, Err(reason));
    if data.len() > MAX_GOSSIP_BYTES {
        return reject(format!("{} bytes, over {MAX_GOSSIP_BYTES}", data.len()));
    }
    let announcement: Announcement = match serde_json::from_slice(data) {
        Ok(a) => a,
        Err(e) => return reject(format!("does not decode: {e}")),
    };
    if announcement.topic().hash().as_str() != topic {
        return reject(format!("published on the wrong topic {topic}"));
    }
    if let Err(reason) = announcement.check() {
        return reject(reason);
    }
    let at = announcement.announced_at();
    if at > now + MAX_CLOCK_SKEW_SECS {
        return reject(format!("dated {} s in the future", at - now));
    }
    if at + MAX_AGE_SECS < now {
        return (
            MessageAcceptance::Ignore,
            Err(format!("{} s old", now - at)),
        );
    }
    (MessageAcceptance::Accept, Ok(announcement))
}

#[cfg(test)]
mod tests {
    use pedals_core::cid_of;

    use super::*;

    fn job(now: u64) -> Announcement {
        let cid = cid_of(b"x").to_string();
        Announcement::Job(JobAnnouncement {
            chain_id: 31337,
            market: Address::repeat_byte(1),
            job_id: 7,
            spec_cid: cid.clone(),
            dataset_cid: cid.clone(),
            model_cid: cid,
            steps: 300,
            payment_wei: U256::from(10u64).pow(U256::from(18u64)),
            announced_at: now,
        })
    }

    #[test]
    fn a_valid_announcement_is_accepted() {
        let a = job(1000);
        let (acc, got) = validate(JOBS_TOPIC, &a.encode(), 1000);
        assert_eq!(acc, MessageAcceptance::Accept);
        assert_eq!(got.expect("valid"), a);
    }

    #[test]
    fn bad_messages_are_rejected_and_stale_ones_ignored() {
        let now = 100_000;
        let cases: Vec<(&str, Vec<u8>, MessageAcceptance)> = vec![
            (JOBS_TOPIC, b"not json".to_vec(), MessageAcceptance::Reject),
            (CAPACITY_TOPIC, job(now).encode(), MessageAcceptance::Reject),
            (
                JOBS_TOPIC,
                vec![b' '; MAX_GOSSIP_BYTES + 1],
                MessageAcceptance::Reject,
            ),
            (
                JOBS_TOPIC,
                job(now + 3600).encode(),
                MessageAcceptance::Reject,
            ),
            (
                JOBS_TOPIC,
                job(now - 2 * 3600).encode(),
                MessageAcceptance::Ignore,
            ),
            (
                JOBS_TOPIC,
                {
                    let Announcement::Job(mut j) = job(now) else {
                        unreachable!()
                    };
                    j.dataset_cid = "not-a-cid".into();
                    Announcement::Job(j).encode()
                },
                MessageAcceptance::Reject,
            ),
        ];
        for (topic, data, expected) in cases {
            let (acc, got) = validate(topic, &data, now);
            assert_eq!(acc, expected, "{got:?}");
            assert!(got.is_err());
        }
    }

    fn progress(
        signer: &alloy::signers::local::PrivateKeySigner,
        done: u64,
        now: u64,
    ) -> Announcement {
        progress_with_loss(signer, done, now, None)
    }

    fn progress_with_loss(
        signer: &alloy::signers::local::PrivateKeySigner,
        done: u64,
        now: u64,
        loss_micro: Option<u64>,
    ) -> Announcement {
        use alloy::signers::SignerSync;
        let market = Address::repeat_byte(1);
        let message = ProgressAnnouncement::message(31337, market, 7, (done, 300), now, loss_micro);
        Announcement::Progress(ProgressAnnouncement {
            chain_id: 31337,
            market,
            job_id: 7,
            worker: signer.address(),
            steps_done: done,
            steps: 300,
            announced_at: now,
            loss_micro,
            signature: signer.sign_message_sync(message.as_slice()).expect("signs"),
        })
    }

    #[test]
    fn a_reported_loss_is_signed_too() {
        let now = 100_000;
        let worker = alloy::signers::local::PrivateKeySigner::random();
        let good = progress_with_loss(&worker, 150, now, Some(1_386_294));
        let (acc, got) = validate(PROGRESS_TOPIC, &good.encode(), now);
        assert_eq!(acc, MessageAcceptance::Accept, "{got:?}");
        assert_eq!(got.expect("valid"), good);
        let Announcement::Progress(p) = good else {
            unreachable!()
        };
        // A changed loss, or one dropped or added, no longer recovers the worker.
        let mut lower = p.clone();
        lower.loss_micro = Some(1);
        let mut dropped = p.clone();
        dropped.loss_micro = None;
        let Announcement::Progress(mut added) = progress(&worker, 150, now) else {
            unreachable!()
        };
        added.loss_micro = Some(5);
        for bad in [lower, dropped, added] {
            let (acc, _) = validate(PROGRESS_TOPIC, &Announcement::Progress(bad).encode(), now);
            assert_eq!(acc, MessageAcceptance::Reject);
        }
    }

    #[test]
    fn progress_must_be_signed_by_its_worker() {
        let now = 100_000;
        let worker = alloy::signers::local::PrivateKeySigner::random();
        let good = progress(&worker, 150, now);
        let (acc, got) = validate(PROGRESS_TOPIC, &good.encode(), now);
        assert_eq!(acc, MessageAcceptance::Accept, "{got:?}");
        assert_eq!(got.expect("valid"), good);

        let Announcement::Progress(p) = good else {
            unreachable!()
        };
        // Each field is covered by the signature: a changed one no longer recovers the worker.
        let mut more = p.clone();
        more.steps_done = 299;
        let mut other_job = p.clone();
        other_job.job_id = 8;
        let mut later = p.clone();
        later.announced_at += 1;
        // A valid signature by another key, claiming to be the worker.
        let forger = alloy::signers::local::PrivateKeySigner::random();
        let Announcement::Progress(mut forged) = progress(&forger, 150, now) else {
            unreachable!()
        };
        forged.worker = worker.address();
        // More steps done than the job has.
        let over = progress(&worker, 301, now);
        for bad in [more, other_job, later, forged] {
            let (acc, got) = validate(PROGRESS_TOPIC, &Announcement::Progress(bad).encode(), now);
            assert_eq!(acc, MessageAcceptance::Reject);
            assert!(
                got.expect_err("rejected")
                    .contains("not signed by the worker")
            );
        }
        let (acc, got) = validate(PROGRESS_TOPIC, &over.encode(), now);
        assert_eq!(acc, MessageAcceptance::Reject);
        assert!(got.expect_err("rejected").contains("301 of 300"));
        // Published on another topic.
        let (acc, _) = validate(JOBS_TOPIC, &progress(&worker, 1, now).encode(), now);
        assert_eq!(acc, MessageAcceptance::Reject);
    }
}
