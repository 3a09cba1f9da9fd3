//! The market as the page shows it, folded from the job market's and the stake manager's
//! events: every job with its status and amounts, the transactions that moved it, and the
//! accounts that staked. Read block range by block range from the deployment block and then
//! from where the last read stopped, so a page over a thousand jobs costs one `eth_getLogs`
//! per 2 000 new blocks, not a call per job.

use std::collections::{BTreeMap, BTreeSet};

use alloy::{
    primitives::{Address, B256, U256},
    providers::Provider,
    rpc::types::{Filter, Log},
    sol_types::SolEventInterface,
};
use pedals_chain::{JobMarket::JobMarketEvents as Jm, Market, StakeManager};
use serde::Serialize;

use crate::UiError;

/// A job's place in its life, as the page names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Posted, not claimed.
    Open,
    /// Claimed by a worker, training.
    Claimed,
    /// Result submitted, its challenge window running.
    Submitted,
    /// Under dispute.
    Disputed,
    /// Paid to the worker.
    Finalized,
    /// Not delivered in time.
    Expired,
    /// Cancelled before any claim.
    Cancelled,
    /// The worker lost a dispute.
    Convicted,
}

impl Status {
    fn settled(self) -> bool {
        matches!(
            self,
            Self::Finalized | Self::Expired | Self::Cancelled | Self::Convicted
        )
    }
}

/// Wei as a decimal string (JSON numbers lose precision past 2^53).
fn wei(v: U256) -> String {
    v.to_string()
}

/// Wei as ETH for people, e.g. "0.1 ETH".
fn eth_text(v: U256) -> String {
    let s = alloy::primitives::utils::format_ether(v);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s} ETH")
}

/// One job.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    /// Its id.
    pub id: u64,
    /// Where it is.
    pub status: Status,
    /// Who posted it.
    pub requester: Address,
    /// Who claimed it.
    pub worker: Option<Address>,
    /// The escrowed payment, wei.
    pub payment_wei: String,
    /// The worker's locked collateral, wei.
    pub collateral_wei: Option<String>,
    /// What the worker was paid, wei.
    pub payout_wei: Option<String>,
    /// The protocol's fee, wei.
    pub fee_wei: Option<String>,
    /// The block it was posted in.
    pub posted_block: u64,
    /// When its challenge window ends (chain time, Unix seconds), once submitted.
    pub challenge_ends_at: Option<u64>,
}

/// One dispute of a job, as the market saw it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DisputeView {
    /// The disputed job.
    pub job: u64,
    /// The challenged step.
    pub step: u64,
    /// Who challenged.
    pub challenger: Address,
    /// The block it opened in.
    pub opened_block: u64,
    /// `open`, `worker lost` or `worker won`.
    pub outcome: &'static str,
    /// Whether a clock decided it.
    pub by_timeout: bool,
}

/// One transaction that moved a job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventView {
    /// The event's name.
    pub name: &'static str,
    /// Its block.
    pub block: u64,
    /// Its log's index in the block (orders events of one block).
    pub log: u64,
    /// Its transaction.
    pub tx: B256,
    /// What it said, in words.
    pub detail: String,
}

/// Everything read so far.
#[derive(Debug, Default)]
pub struct Index {
    /// The next block to read.
    next: Option<u64>,
    jobs: BTreeMap<u64, JobView>,
    events: BTreeMap<u64, Vec<EventView>>,
    stakers: BTreeSet<Address>,
    disputes: Vec<DisputeView>,
    payments: BTreeMap<u64, (U256, U256)>,
    /// The head read last, and its timestamp.
    pub head: u64,
    /// The head's timestamp (chain time).
    pub head_time: u64,
}

impl Index {
    /// The jobs, by id.
    pub fn jobs(&self) -> impl Iterator<Item = &JobView> {
        self.jobs.values()
    }

    /// Job `id` and its transactions.
    pub fn job(&self, id: u64) -> Option<(&JobView, &[EventView])> {
        let j = self.jobs.get(&id)?;
        Some((j, self.events.get(&id).map_or(&[][..], Vec::as_slice)))
    }

    /// Every dispute, oldest first.
    pub fn disputes(&self) -> &[DisputeView] {
        &self.disputes
    }

    /// Every account that ever staked or claimed a job.
    pub fn providers(&self) -> impl Iterator<Item = &Address> {
        self.stakers.iter()
    }

    /// Volume (every payment escrowed) and fees taken, wei.
    pub fn totals(&self) -> (U256, U256) {
        self.payments
            .values()
            .fold((U256::ZERO, U256::ZERO), |(v, f), (p, fee)| {
                (v + p, f + fee)
            })
    }

    /// How many jobs are open, running (claimed to disputed) and settled.
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut c = (0, 0, 0);
        for j in self.jobs.values() {
            match j.status {
                Status::Open => c.0 += 1,
                s if s.settled() => c.2 += 1,
                _ => c.1 += 1,
            }
        }
        c
    }

    /// Reads the events of the blocks after the last read, up to the head.
    pub async fn refresh(&mut self, market: &Market) -> Result<(), UiError> {
        let p = market.provider();
        let head = p.get_block_number().await.map_err(UiError::rpc)?;
        let d = market.deployment();
        let mut from = self.next.unwrap_or(d.deployment_block);
        if from > head + 1 {
            // The chain went back (a devnet restarted from a snapshot): read it again.
            *self = Self::default();
            from = d.deployment_block;
        }
        while from <= head {
            let to = (from + market.log_range() - 1).min(head);
            let filter = Filter::new()
                .address(vec![d.job_market, d.stake_manager])
                .from_block(from)
                .to_block(to);
            let logs = p.get_logs(&filter).await.map_err(UiError::rpc)?;
            for log in &logs {
                self.apply(log, d.job_market);
            }
            from = to + 1;
            self.next = Some(from);
        }
        if let Some(block) = p
            .get_block_by_number(head.into())
            .await
            .map_err(UiError::rpc)?
        {
            self.head_time = block.header.timestamp;
        }
        self.head = head;
        Ok(())
    }

    fn apply(&mut self, log: &Log, job_market: Address) {
        let (Some(block), Some(tx)) = (log.block_number, log.transaction_hash) else {
            return;
        };
        if log.address() != job_market {
            if let Ok(StakeManager::StakeManagerEvents::Staked(e)) =
                StakeManager::StakeManagerEvents::decode_log(&log.inner).map(|e| e.data)
            {
                self.stakers.insert(e.account);
            }
            return;
        }
        let Ok(event) = Jm::decode_log(&log.inner).map(|e| e.data) else {
            return;
        };
        self.fold(event, (block, log.log_index.unwrap_or_default()), tx);
    }

    /// Applies one job-market event, emitted at `(block, log index)`.
    pub fn fold(&mut self, event: Jm, (block, log): (u64, u64), tx: B256) {
        let id = |v: U256| u64::try_from(v).unwrap_or(u64::MAX);
        let (job, name, detail) = match event {
            Jm::JobPosted(e) => {
                let j = id(e.jobId);
                self.jobs.insert(
                    j,
                    JobView {
                        id: j,
                        status: Status::Open,
                        requester: e.requester,
                        worker: None,
                        payment_wei: wei(e.payment),
                        collateral_wei: None,
                        payout_wei: None,
                        fee_wei: None,
                        posted_block: block,
                        challenge_ends_at: None,
                    },
                );
                self.payments.insert(j, (e.payment, U256::ZERO));
                (j, "JobPosted", format!("{} escrowed", eth_text(e.payment)))
            }
            Jm::JobCancelled(e) => {
                let j = id(e.jobId);
                self.set(j, |v| v.status = Status::Cancelled);
                (
                    j,
                    "JobCancelled",
                    format!("{} refunded", eth_text(e.refund)),
                )
            }
            Jm::JobClaimed(e) => {
                let j = id(e.jobId);
                self.stakers.insert(e.worker);
                self.set(j, |v| {
                    v.status = Status::Claimed;
                    v.worker = Some(e.worker);
                    v.collateral_wei = Some(wei(e.collateral));
                });
                (
                    j,
                    "JobClaimed",
                    format!("{} collateral locked", eth_text(e.collateral)),
                )
            }
            Jm::ResultSubmitted(e) => {
                let j = id(e.jobId);
                let end = u64::try_from(e.windowEnd).ok();
                self.set(j, |v| {
                    v.status = Status::Submitted;
                    v.challenge_ends_at = end;
                });
                (j, "ResultSubmitted", format!("{} steps", e.steps))
            }
            Jm::ChallengeOpened(e) => {
                let j = id(e.jobId);
                self.set(j, |v| v.status = Status::Disputed);
                self.disputes.push(DisputeView {
                    job: j,
                    step: id(e.step),
                    challenger: e.challenger,
                    opened_block: block,
                    outcome: "open",
                    by_timeout: false,
                });
                (j, "ChallengeOpened", format!("step {} challenged", e.step))
            }
            Jm::DisputeResolved(e) => {
                let j = id(e.jobId);
                let end = u64::try_from(e.windowEnd).ok();
                self.set(j, |v| {
                    if e.workerLost {
                        v.status = Status::Convicted;
                    } else {
                        v.status = Status::Submitted;
                        v.challenge_ends_at = end;
                    }
                });
                let who = if e.workerLost {
                    "worker lost"
                } else {
                    "worker won"
                };
                if let Some(d) = self.disputes.iter_mut().rev().find(|d| d.job == j) {
                    d.outcome = who;
                    d.by_timeout = e.timedOut;
                }
                let how = if e.timedOut { " (a clock ran out)" } else { "" };
                let paid = if e.workerLost {
                    format!(
                        ": the challenger is credited {}, the requester {}",
                        eth_text(e.challengerPayout),
                        eth_text(e.requesterPayout)
                    )
                } else {
                    ": the worker takes the challenger's bond".into()
                };
                (j, "DisputeResolved", format!("{who}{how}{paid}"))
            }
            Jm::JobFinalized(e) => {
                let j = id(e.jobId);
                self.set(j, |v| {
                    v.status = Status::Finalized;
                    v.payout_wei = Some(wei(e.workerPayout));
                    v.fee_wei = Some(wei(e.fee));
                });
                if let Some(p) = self.payments.get_mut(&j) {
                    p.1 = e.fee;
                }
                (
                    j,
                    "JobFinalized",
                    format!("{} to the worker", eth_text(e.workerPayout)),
                )
            }
            Jm::JobExpired(e) => {
                let j = id(e.jobId);
                self.set(j, |v| v.status = Status::Expired);
                (j, "JobExpired", format!("{} penalty", eth_text(e.penalty)))
            }
            _ => return,
        };
        self.events.entry(job).or_default().push(EventView {
            name,
            block,
            log,
            tx,
            detail,
        });
    }

    fn set(&mut self, id: u64, f: impl FnOnce(&mut JobView)) {
        if let Some(v) = self.jobs.get_mut(&id) {
            f(v);
        }
    }
}

/// What `who` was paid for its finalized jobs, as a running total after each payment:
/// `(block, job, cumulative wei)`, oldest first.
pub fn earnings_over_time(index: &Index, who: Address) -> Vec<(u64, u64, U256)> {
    let mut paid: Vec<(u64, u64, U256)> = index
        .jobs()
        .filter(|j| j.worker == Some(who))
        .filter_map(|j| {
            let wei = j.payout_wei.as_deref()?.parse::<U256>().ok()?;
            let (_, events) = index.job(j.id)?;
            let block = events.iter().find(|e| e.name == "JobFinalized")?.block;
            Some((block, j.id, wei))
        })
        .collect();
    paid.sort();
    let mut total = U256::ZERO;
    for p in &mut paid {
        total += p.2;
        p.2 = total;
    }
    paid
}

/// The market's volume (payments escrowed) and fees (paid to the protocol) over time: one
/// `(block, volume so far, fees so far)` per block where either moved.
pub fn market_over_time(index: &Index) -> Vec<(u64, U256, U256)> {
    let mut moves: BTreeMap<u64, (U256, U256)> = BTreeMap::new();
    for (id, (payment, fee)) in &index.payments {
        if let Some((job, events)) = index.job(*id) {
            moves.entry(job.posted_block).or_default().0 += *payment;
            if let Some(e) = events.iter().find(|e| e.name == "JobFinalized") {
                moves.entry(e.block).or_default().1 += *fee;
            }
        }
    }
    let (mut volume, mut fees) = (U256::ZERO, U256::ZERO);
    moves
        .into_iter()
        .map(|(block, (v, f))| {
            volume += v;
            fees += f;
            (block, volume, fees)
        })
        .collect()
}

/// A provider's earnings from the jobs it finalized, and how many it claimed.
pub fn earnings(index: &Index, who: Address) -> (usize, U256) {
    index
        .jobs()
        .filter(|j| j.worker == Some(who))
        .fold((0, U256::ZERO), |(n, e), j| {
            let paid = j
                .payout_wei
                .as_deref()
                .and_then(|w| w.parse::<U256>().ok())
                .unwrap_or_default();
            (n + 1, e + paid)
        })
}

#[cfg(test)]
mod tests {
    use pedals_chain::JobMarket;

    use super::*;

    fn eth(milli: u64) -> U256 {
        U256::from(milli) * U256::from(10u64.pow(15))
    }

    #[test]
    fn events_move_jobs_through_their_lives_and_add_up() {
        let (req, worker) = (Address::repeat_byte(1), Address::repeat_byte(2));
        let mut ix = Index::default();
        let tx = B256::repeat_byte(9);
        let id = U256::from;
        for j in [1u64, 2, 3] {
            ix.fold(
                Jm::JobPosted(JobMarket::JobPosted {
                    jobId: id(j),
                    requester: req,
                    payment: eth(100 * j),
                    request: pedals_chain::JobRequest {
                        specHash: B256::ZERO,
                        modelCid: Default::default(),
                        datasetCid: Default::default(),
                        steps: 4,
                        verification: 0,
                        claimDeadline: Default::default(),
                        deliveryDeadline: Default::default(),
                        challengeWindow: 60,
                    },
                }),
                (j, 0),
                tx,
            );
        }
        assert_eq!(ix.counts(), (3, 0, 0));
        ix.fold(
            Jm::JobCancelled(JobMarket::JobCancelled {
                jobId: id(3),
                refund: eth(300),
            }),
            (4, 0),
            tx,
        );
        for j in [1u64, 2] {
            ix.fold(
                Jm::JobClaimed(JobMarket::JobClaimed {
                    jobId: id(j),
                    worker,
                    collateral: eth(10),
                }),
                (5, 0),
                tx,
            );
        }
        ix.fold(
            Jm::ResultSubmitted(JobMarket::ResultSubmitted {
                jobId: id(1),
                worker,
                steps: U256::from(4),
                traceRoot: B256::ZERO,
                finalStateHash: B256::ZERO,
                resultCid: Default::default(),
                windowEnd: U256::from(1_000),
            }),
            (6, 0),
            tx,
        );
        assert_eq!(ix.job(1).expect("job").0.challenge_ends_at, Some(1_000));
        ix.fold(
            Jm::ChallengeOpened(JobMarket::ChallengeOpened {
                jobId: id(1),
                challenger: req,
                step: U256::from(2),
                claimedStateHash: B256::ZERO,
                bond: eth(1),
                resolver: Address::ZERO,
                deadline: U256::ZERO,
            }),
            (7, 0),
            tx,
        );
        assert_eq!(ix.job(1).expect("job").0.status, Status::Disputed);
        // The worker wins: back to submitted, with the new window.
        ix.fold(
            Jm::DisputeResolved(JobMarket::DisputeResolved {
                jobId: id(1),
                workerLost: false,
                timedOut: false,
                challengerPayout: U256::ZERO,
                requesterPayout: U256::ZERO,
                windowEnd: U256::from(2_000),
            }),
            (8, 0),
            tx,
        );
        let j = ix.job(1).expect("job").0.clone();
        assert_eq!(
            (j.status, j.challenge_ends_at),
            (Status::Submitted, Some(2_000))
        );
        ix.fold(
            Jm::JobFinalized(JobMarket::JobFinalized {
                jobId: id(1),
                worker,
                workerPayout: eth(98),
                fee: eth(2),
            }),
            (9, 0),
            tx,
        );
        // Job 2 lost its dispute.
        ix.fold(
            Jm::DisputeResolved(JobMarket::DisputeResolved {
                jobId: id(2),
                workerLost: true,
                timedOut: true,
                challengerPayout: eth(1),
                requesterPayout: eth(200),
                windowEnd: U256::ZERO,
            }),
            (10, 0),
            tx,
        );
        assert_eq!(ix.job(2).expect("job").0.status, Status::Convicted);
        assert_eq!(ix.counts(), (0, 0, 3));
        assert_eq!(
            ix.totals(),
            (eth(600), eth(2)),
            "volume and fees, to the wei"
        );
        assert_eq!(earnings(&ix, worker), (2, eth(98)));
        assert_eq!(earnings_over_time(&ix, worker), vec![(9, 1, eth(98))]);
        let names: Vec<&str> = ix.job(1).expect("job").1.iter().map(|e| e.name).collect();
        assert_eq!(
            names,
            [
                "JobPosted",
                "JobClaimed",
                "ResultSubmitted",
                "ChallengeOpened",
                "DisputeResolved",
                "JobFinalized"
            ]
        );
        // An event of a job the index never saw posted changes nothing but its history.
        ix.fold(
            Jm::JobExpired(JobMarket::JobExpired {
                jobId: id(77),
                worker,
                refund: U256::ZERO,
                penalty: U256::ZERO,
            }),
            (11, 0),
            tx,
        );
        assert!(ix.job(77).is_none());
        assert_eq!(ix.job(1).expect("job").1[0].detail, "0.1 ETH escrowed");
        assert_eq!(eth_text(U256::ZERO), "0 ETH");
        assert_eq!(eth_text(eth(1000)), "1 ETH");
    }
}
