//! The requester's side of a job: store and serve its files, post it with its payment in
//! escrow, watch it, and fetch and check the result.
//!
//! ```text
//!  JobFiles ─► store + provide over libp2p ─► JobMarket.postJob (escrow) ─► announce on gossip
//!  … worker fetches, claims, trains, submits …
//!  ResultSubmitted ─► fetch the result by CID ─► keccak == finalStateHash ─► evaluate
//! ```

use std::{sync::Arc, time::Duration};

use alloy::{
    primitives::{B256, U256, aliases::U40},
    providers::Provider,
};
use pedals_chain::{IJobMarket, JobMarket, JobRequest, JobStatus, Market, TxOutcome, chain_time};
use pedals_core::{Cid, TraceCommitment, cid_from_bytes, cid_of};
use pedals_ml::{Dataset, JobSpec, MlpState, Trainer, exact::CpuOps, inference};
use pedals_p2p::{Announcement, Client, JobAnnouncement, P2pError, unix_now};
use pedals_store::Store;
use tracing::{debug, info};

use crate::NodeError;

/// Gas that posting a training job may take: the spec's admission (about 105k for the demo's
/// spec, once per spec) and the post (about 125k), with room for longer CIDs and specs.
const POST_GAS_BUDGET: u64 = 400_000;

/// The three files of a training job, as the requester has them.
#[derive(Debug, Clone)]
pub struct JobFiles {
    /// The spec (its hash goes on-chain).
    pub spec: JobSpec,
    /// The canonical dataset bytes.
    pub dataset: Vec<u8>,
    /// The initial model state bytes.
    pub model: Vec<u8>,
}

impl JobFiles {
    /// Checks that the files are what the spec names and that the model fits the data.
    pub fn validate(&self) -> Result<(), NodeError> {
        let bad = |m: String| NodeError::Job(m);
        self.spec.validate()?;
        if self.spec.dataset_cid()? != cid_of(&self.dataset) {
            return Err(bad(
                "the dataset bytes are not the ones the spec names".into()
            ));
        }
        if self.spec.model_cid()? != cid_of(&self.model) {
            return Err(bad("the model bytes are not the ones the spec names".into()));
        }
        let dataset = Dataset::from_canonical_bytes(&self.dataset)?;
        self.spec.train.model.check_dataset(&dataset)?;
        if let Some(inf) = &self.spec.inference
            && inference::chunk_count(dataset.len() as u64, inf.chunk) != self.spec.train.steps
        {
            return Err(bad(format!(
                "the spec runs {} chunks but the dataset's {} samples make a different number",
                self.spec.train.steps,
                dataset.len()
            )));
        }
        let init = MlpState::from_bytes(&self.spec.train.model, &self.model)?;
        self.spec.check_commitments(&dataset, &init)?;
        Ok(())
    }
}

/// A job's files as they are posted: the spec's canonical bytes and hash, the dataset (or
/// prompts) and the model, the steps and how the result is verified.
pub(crate) struct Posting<'a> {
    pub(crate) spec_hash: B256,
    pub(crate) spec: Vec<u8>,
    pub(crate) dataset: &'a [u8],
    pub(crate) model: &'a [u8],
    pub(crate) steps: u64,
    pub(crate) verification: pedals_core::Verification,
}

/// The terms a job is posted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostTerms {
    /// The payment escrowed, in wei.
    pub payment: U256,
    /// Seconds from posting by which a worker must claim.
    pub claim_within: u64,
    /// Seconds from posting by which the result must be in.
    pub deliver_within: u64,
    /// The challenge window after the result, in seconds.
    pub challenge_window: u32,
}

/// A submitted result, fetched and checked against the worker's on-chain commitment.
#[derive(Debug, Clone)]
pub struct JobResult {
    /// The job's spec.
    pub spec: JobSpec,
    /// What the worker committed: steps, trace root, final state hash, result CID.
    pub submitted: JobMarket::ResultSubmitted,
    /// The trained model's state bytes.
    pub state: Vec<u8>,
}

impl JobResult {
    /// For training, the trained model's accuracy on `data`; for batch inference, the share
    /// of the outputs that match the labels of `data` (the job's dataset).
    pub fn accuracy(&self, data: &Dataset) -> Result<f64, NodeError> {
        if self.spec.inference.is_some() {
            let predicted = inference::predictions(&self.state, data.classes as usize);
            if predicted.len() != data.len() {
                return Err(NodeError::Job(format!(
                    "the result has {} outputs but the dataset {} samples",
                    predicted.len(),
                    data.len()
                )));
            }
            let correct = predicted.iter().zip(&data.labels).filter(|(p, y)| p == y);
            return Ok(correct.count() as f64 / data.len().max(1) as f64);
        }
        let trained = MlpState::from_bytes(&self.spec.train.model, &self.state)?;
        Ok(Trainer::new(CpuOps::default(), self.spec.train.clone())?.accuracy(&trained, data)?)
    }
}

/// The files of a zk job: a model of a known circuit's architecture and an input batch of its
/// size. Their commitment `c_job` is the job's on-chain spec hash.
#[derive(Debug, Clone)]
pub struct ZkFiles {
    /// The circuit that proves the job.
    pub circuit: &'static pedals_zk::Circuit,
    /// The model state bytes (a checkpoint of an MLP of the circuit's layers).
    pub model: Vec<u8>,
    /// The canonical dataset bytes: exactly the circuit's batch of samples.
    pub dataset: Vec<u8>,
}

impl ZkFiles {
    /// Checks the files against the circuit and returns the job commitment `c_job`.
    pub fn commitment(&self) -> Result<B256, NodeError> {
        let dataset = Dataset::from_canonical_bytes(&self.dataset)?;
        let job = pedals_zk::ZkJob::from_files(self.circuit, &self.model, &dataset)?;
        Ok(crate::zk::word(job.commitment()?))
    }
}

/// An accepted zk result, fetched and checked against the proven output commitment.
#[derive(Debug, Clone)]
pub struct ZkResult {
    /// What the market accepted: the worker, `c_out` and the logits' CID.
    pub accepted: JobMarket::ZkResultAccepted,
    /// The logits, `batch × classes`, Q8.
    pub logits: pedals_ml::exact::Mat,
    /// The predicted class of every sample (the largest logit, the lowest index on a tie).
    pub predictions: Vec<u32>,
}

/// A requester: its market client, its store, and (to serve its files) its network node.
#[derive(Debug)]
pub struct Requester {
    market: Market,
    store: Arc<Store>,
    pub(crate) net: Option<Client>,
}

impl Requester {
    /// A requester signing with `market`'s account, keeping its files in `store`, serving
    /// them over `net`.
    pub fn new(market: Market, store: Arc<Store>, net: Option<Client>) -> Self {
        Self { market, store, net }
    }

    /// The market client.
    pub fn market(&self) -> &Market {
        &self.market
    }

    /// The store its files and results are kept in.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The job on-chain and its status.
    pub async fn job(&self, id: u64) -> Result<(IJobMarket::Job, JobStatus), NodeError> {
        let job = self.market.job(pedals_core::JobId(id)).await?;
        let status = JobStatus::try_from(job.status).unwrap_or(JobStatus::None);
        Ok((job, status))
    }

    /// Has the dispute game admit a training job's spec (the market posts no training job the
    /// game could not adjudicate); a spec admitted before costs no transaction, so the
    /// admission [`Self::post`] makes is then a no-op. Returns the admission's transaction.
    pub async fn admit(&self, files: &JobFiles) -> Result<Option<TxOutcome>, NodeError> {
        let (args, admitted) = self.spec_args(files).await?;
        if admitted {
            return Ok(None);
        }
        let tx = self
            .market
            .send_admission(args, files.spec.train.steps)
            .await?;
        info!(target: "pedals::requester", tx = %tx.hash, spec = %files.spec.spec_hash(), "spec admitted by the dispute game");
        Ok(Some(tx))
    }

    /// The dispute game's form of a training job's spec, checked to hash as the spec does,
    /// and whether the game has admitted it for its steps.
    pub(crate) async fn spec_args(
        &self,
        files: &JobFiles,
    ) -> Result<(pedals_chain::DisputeGame::Spec, bool), NodeError> {
        let args = pedals_dispute::game::spec_args(&files.spec).map_err(|e| {
            NodeError::Job(format!(
                "{e}; the market posts only training jobs whose every step the on-chain dispute \
                 game can check (an MLP of 1 to 10 layers; docs/protocol.md §8)"
            ))
        })?;
        let steps = files.spec.train.steps;
        // Checked before any transaction: a spec the game rebuilds otherwise cannot be posted.
        let (hash, admitted) = self.market.spec_admission(&args, steps).await?;
        if hash != files.spec.spec_hash() {
            return Err(NodeError::Job(format!(
                "the dispute game rebuilds the spec as {hash}, not {}: the spec cannot be \
                 disputed as written",
                files.spec.spec_hash()
            )));
        }
        Ok((args, admitted))
    }

    /// Stores and provides the files, then posts the job with `terms.payment` in escrow and
    /// announces it on gossip. Every check that can fail runs before the transaction.
    pub async fn post(
        &self,
        files: &JobFiles,
        terms: &PostTerms,
    ) -> Result<(u64, TxOutcome), NodeError> {
        files.validate()?;
        self.check_funds(terms).await?;
        let inference = files.spec.inference.is_some();
        let posting = Posting {
            spec_hash: files.spec.spec_hash(),
            spec: files.spec.to_canonical_bytes(),
            dataset: &files.dataset,
            model: &files.model,
            steps: files.spec.train.steps,
            verification: if inference {
                pedals_core::Verification::OptimisticInference
            } else {
                pedals_core::Verification::Optimistic
            },
        };
        let request = self.store_files(&posting).await?;
        if !inference {
            self.admit(files).await?;
        }
        self.post_request(request, &posting, terms).await
    }

    /// Refuses a post this account cannot pay for: the payment and the gas of the spec's
    /// admission and the post, at today's price.
    /// Posts a language-model batch job: checks the funds, stores and provides the files,
    /// then posts it with `terms.payment` in escrow, as a job without a dispute game
    /// (`OptimisticInference`). The caller has checked the files.
    pub(crate) async fn post_lm_kind(
        &self,
        (spec_hash, spec): (B256, Vec<u8>),
        (dataset, model): (&[u8], &[u8]),
        steps: u64,
        terms: &PostTerms,
    ) -> Result<(u64, pedals_chain::TxOutcome), NodeError> {
        self.check_funds(terms).await?;
        let posting = Posting {
            spec_hash,
            spec,
            dataset,
            model,
            steps,
            verification: pedals_core::Verification::OptimisticInference,
        };
        let request = self.store_files(&posting).await?;
        self.post_request(request, &posting, terms).await
    }

    pub(crate) async fn check_funds(&self, terms: &PostTerms) -> Result<(), NodeError> {
        let balance = self.market.balance(self.market.sender()).await?;
        let gas_price = self
            .market
            .provider()
            .get_gas_price()
            .await
            .map_err(pedals_chain::ChainError::from)?;
        let gas = U256::from(gas_price) * U256::from(POST_GAS_BUDGET);
        if balance < terms.payment + gas {
            return Err(NodeError::Underfunded {
                account: self.market.sender(),
                balance,
                escrow: terms.payment,
                gas,
            });
        }
        Ok(())
    }

    /// Stores and provides a job's three files; returns the request to post (its deadlines
    /// still to be set).
    pub(crate) async fn store_files(&self, p: &Posting<'_>) -> Result<JobRequest, NodeError> {
        let steps = u32::try_from(p.steps)
            .map_err(|_| NodeError::Job("a job has at most 2^32 - 1 steps".into()))?;
        let mut cids = Vec::new();
        for bytes in [p.spec.as_slice(), p.dataset, p.model] {
            cids.push(self.store.put_blob(bytes)?);
        }
        if let Some(net) = &self.net {
            for cid in &cids {
                net.provide(*cid).await?;
            }
        }
        Ok(JobRequest {
            specHash: p.spec_hash,
            modelCid: cids[2].to_bytes().into(),
            datasetCid: cids[1].to_bytes().into(),
            steps,
            verification: p.verification.to_u8(),
            claimDeadline: U40::ZERO,
            deliveryDeadline: U40::ZERO,
            challengeWindow: 0,
        })
    }

    /// Posts `request` on `terms` (deadlines from the chain's clock now) and announces it.
    pub(crate) async fn post_request(
        &self,
        mut request: JobRequest,
        p: &Posting<'_>,
        terms: &PostTerms,
    ) -> Result<(u64, TxOutcome), NodeError> {
        let now = chain_time(self.market.provider()).await?;
        request.claimDeadline = U40::from(now + terms.claim_within);
        request.deliveryDeadline = U40::from(now + terms.deliver_within);
        request.challengeWindow = terms.challenge_window;
        let (id, outcome) = self.market.post_job(request, terms.payment).await?;
        let id = id.get();
        info!(target: "pedals::requester", job = id, tx = %outcome.hash, payment = %terms.payment, "job posted");
        if let Some(net) = &self.net {
            let announcement = Announcement::Job(JobAnnouncement {
                chain_id: self.market.deployment().chain_id,
                market: self.market.deployment().job_market,
                job_id: id,
                spec_cid: cid_of(&p.spec).to_string(),
                dataset_cid: cid_of(p.dataset).to_string(),
                model_cid: cid_of(p.model).to_string(),
                steps: p.steps,
                payment_wei: terms.payment,
                announced_at: unix_now(),
            });
            // Gossip is a hint (workers follow the chain); with no peers yet there is no one
            // to tell.
            if let Err(e) = net.publish(&announcement).await {
                debug!(target: "pedals::requester", job = id, error = %e, "job not announced on gossip");
            }
        }
        Ok((id, outcome))
    }

    /// Stores and provides a zk job's files, then posts it for their circuit with
    /// `terms.payment` in escrow (no challenge window: the first valid proof is paid at once).
    /// Every check that can fail runs before the transaction.
    pub async fn post_zk(
        &self,
        files: &ZkFiles,
        terms: &PostTerms,
    ) -> Result<(u64, TxOutcome), NodeError> {
        let commitment = files.commitment()?;
        let circuit = files.circuit;
        if self.market.zk_verifier(circuit.id).await?.is_zero() {
            return Err(NodeError::Job(format!(
                "this market has no verifier for zk circuit {} ({}): ask its admin to register \
                 one, or post an optimistic job",
                circuit.id, circuit.name
            )));
        }
        let balance = self.market.balance(self.market.sender()).await?;
        if balance < terms.payment {
            return Err(NodeError::Underfunded {
                account: self.market.sender(),
                balance,
                escrow: terms.payment,
                gas: U256::ZERO,
            });
        }
        let dataset = self.store.put_blob(&files.dataset)?;
        let model = self.store.put_blob(&files.model)?;
        if let Some(net) = &self.net {
            net.provide(dataset).await?;
            net.provide(model).await?;
        }
        let now = chain_time(self.market.provider()).await?;
        let request = JobRequest {
            specHash: commitment,
            modelCid: model.to_bytes().into(),
            datasetCid: dataset.to_bytes().into(),
            steps: circuit.batch as u32,
            verification: pedals_core::Verification::Zk.to_u8(),
            claimDeadline: U40::from(now + terms.claim_within),
            deliveryDeadline: U40::from(now + terms.deliver_within),
            challengeWindow: 0,
        };
        let (id, outcome) = self
            .market
            .post_zk_job(request, circuit.id, terms.payment)
            .await?;
        let id = id.get();
        info!(target: "pedals::requester", job = id, tx = %outcome.hash, circuit = circuit.name, job_commitment = %commitment, "zk job posted");
        Ok((id, outcome))
    }

    /// The accepted result of zk job `id`: the logits fetched by CID (from the store or the
    /// network, waiting up to `patience`) and checked against the output commitment the proof
    /// was verified with on-chain.
    pub async fn zk_result(&self, id: u64, patience: Duration) -> Result<ZkResult, NodeError> {
        let (job, status) = self.job(id).await?;
        if !pedals_core::Verification::Zk.is(job.verification) {
            return Err(NodeError::Job(format!("job {id} is not a zk job")));
        }
        let circuit = pedals_zk::circuit(job.zkCircuit).ok_or_else(|| {
            NodeError::Job(format!(
                "job {id} uses zk circuit {}, which this build does not know",
                job.zkCircuit
            ))
        })?;
        let accepted = self
            .market
            .zk_result(pedals_core::JobId(id))
            .await?
            .ok_or_else(|| {
                NodeError::Job(format!(
                    "job {id} has no proven result yet (it is {status:?})"
                ))
            })?;
        let cid = cid_from_bytes(&accepted.resultCid)
            .map_err(|e| NodeError::Job(format!("the posted result CID is invalid: {e}")))?;
        let bytes = self.blob(cid, "result", patience).await?;
        let classes = *circuit.layers.last().unwrap_or(&0);
        let (logits, c_out) = pedals_zk::logits_from_bytes(&bytes, circuit.batch, classes)?;
        if crate::zk::word(c_out) != accepted.outputCommitment {
            return Err(NodeError::Job(format!(
                "the logits {cid} do not match the output commitment {} the proof was verified \
                 with",
                accepted.outputCommitment
            )));
        }
        // The blob has the encoding of a batch-inference result.
        let predictions = inference::predictions(&bytes, classes);
        Ok(ZkResult {
            accepted,
            logits,
            predictions,
        })
    }

    /// Polls every `poll` until the job leaves `Posted` (claimed or cancelled), or until its
    /// claim deadline passes with nobody claiming (then it returns `Posted`: the requester
    /// should cancel it to take the escrow back).
    pub async fn wait_until_taken(&self, id: u64, poll: Duration) -> Result<JobStatus, NodeError> {
        loop {
            let (job, status) = self.job(id).await?;
            if status != JobStatus::Posted {
                return Ok(status);
            }
            if chain_time(self.market.provider()).await? > job.claimDeadline.to::<u64>() {
                return Ok(status);
            }
            tokio::time::sleep(poll).await;
        }
    }

    /// Blob `cid` from the store, else from the network (stored once verified).
    /// Demands, with the market's challenge bond, that the worker of submitted job `id`
    /// publish the state after `step` (the result when `step` is the job's step count)
    /// on-chain (docs/protocol.md §7). Returns the demand's deadline.
    pub async fn demand(&self, id: u64, step: u64) -> Result<u64, NodeError> {
        let bond = self
            .market
            .challenge_bond_of(pedals_core::JobId(id))
            .await?;
        self.market
            .demand_data(pedals_core::JobId(id), step, bond)
            .await?;
        let demand = self.market.demand(pedals_core::JobId(id)).await?;
        Ok(demand.deadline.to::<u64>())
    }

    /// The result of job `id` as published on-chain to meet a demand of its last step, if it
    /// was: the canonical state bytes, rebuilt from the rows in the events.
    async fn published_result(
        &self,
        id: u64,
        spec: &JobSpec,
        steps: u64,
    ) -> Result<Option<Vec<u8>>, NodeError> {
        let Some(published) = self
            .market
            .published_state(pedals_core::JobId(id), steps)
            .await?
        else {
            return Ok(None);
        };
        if !published.complete {
            return Ok(None);
        }
        let model = self
            .blob(spec.model_cid()?, "model", Duration::from_secs(10))
            .await?;
        let template = pedals_core::ModelState::from_canonical_bytes(&model)
            .map_err(|e| NodeError::Job(format!("the initial model: {e}")))?;
        let state = pedals_core::state_from_runs(
            &template,
            published
                .runs
                .iter()
                .map(|(t, first, rows)| (*t, *first, rows.as_slice())),
        )
        .map_err(|e| NodeError::Job(e.to_string()))?;
        info!(target: "pedals::requester", job = id, "the result comes from its on-chain publication");
        let bytes = state
            .to_canonical_bytes()
            .map_err(|e| NodeError::Job(e.to_string()))?;
        Ok(Some(bytes))
    }

    pub(crate) async fn blob(
        &self,
        cid: Cid,
        what: &str,
        patience: Duration,
    ) -> Result<Vec<u8>, NodeError> {
        if let Some(bytes) = self.store.blob(&cid)? {
            return Ok(bytes);
        }
        let net = self.net.as_ref().ok_or_else(|| {
            NodeError::Job(format!(
                "the {what} {cid} is not in this node's store and it has no network to fetch it"
            ))
        })?;
        let deadline = tokio::time::Instant::now() + patience;
        let bytes = loop {
            // In verified chunks (resumed by the next call after an interruption), else the
            // whole blob from a peer that serves no chunks.
            let fetched = match crate::fetch::download(net, self.store.dir(), cid).await {
                Ok(done) => Ok(done),
                Err(e @ P2pError::NoProviders { .. }) => Err(e),
                Err(e) => {
                    debug!(target: "pedals::requester", %cid, error = %e, "no chunked download; asking for the whole blob");
                    net.fetch_blob(cid)
                        .await
                        .map(|(bytes, from)| (bytes, from.to_string()))
                }
            };
            match fetched {
                Ok((bytes, from)) => {
                    info!(target: "pedals::requester", %cid, %from, what, "fetched and verified");
                    break bytes;
                }
                // The DHT may not have the provider record yet, or the peer is reconnecting.
                Err(P2pError::NoProviders { .. } | P2pError::AllProvidersFailed { .. })
                    if tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => return Err(e.into()),
            }
        };
        self.store.put_blob_expecting(&cid, &bytes)?;
        Ok(bytes)
    }

    /// The submitted result of job `id`: fetched (from the store or the network, waiting up
    /// to `patience` for a provider) and checked against the worker's on-chain commitment.
    pub async fn result(&self, id: u64, patience: Duration) -> Result<JobResult, NodeError> {
        let (job, status) = self.job(id).await?;
        let submitted = self
            .market
            .submitted_result(pedals_core::JobId(id))
            .await?
            .ok_or_else(|| {
                NodeError::Job(format!("job {id} has no result yet (it is {status:?})"))
            })?;
        let spec_bytes = self
            .blob(JobSpec::cid_for_hash(&job.specHash), "spec", patience)
            .await?;
        let spec = JobSpec::from_canonical_bytes(&spec_bytes)?;
        let result_cid = cid_from_bytes(&submitted.resultCid)
            .map_err(|e| NodeError::Job(format!("the posted result CID is invalid: {e}")))?;
        let state = match self.blob(result_cid, "result", patience).await {
            Ok(state) => state,
            Err(e) if spec.inference.is_none() => self
                .published_result(id, &spec, u64::from(job.steps))
                .await?
                .ok_or_else(|| {
                    NodeError::Job(format!(
                        "{e}; the worker does not serve its result: `pedals job demand {id}` \
                         makes it publish the result on-chain within the demand's deadline or \
                         lose its collateral"
                    ))
                })?,
            Err(e) => return Err(e),
        };
        if let Some(inf) = spec.inference {
            // The blob must rebuild the posted trace: h_0 from the model, one hash per chunk.
            let model = self.blob(spec.model_cid()?, "model", patience).await?;
            let data = Dataset::from_canonical_bytes(
                &self.blob(spec.dataset_cid()?, "dataset", patience).await?,
            )?;
            let hashes = inference::result_trace(
                &state,
                &model,
                data.len() as u64,
                u64::from(data.classes),
                inf.chunk,
            )?;
            let trace = TraceCommitment::new(hashes)
                .map_err(|e| NodeError::Job(format!("the result's trace: {e}")))?;
            if trace.root() != submitted.traceRoot || trace.final_hash() != submitted.finalStateHash
            {
                return Err(NodeError::Job(format!(
                    "the result {result_cid} does not rebuild the trace the worker posted"
                )));
            }
            return Ok(JobResult {
                spec,
                submitted,
                state,
            });
        }
        if pedals_core::checkpoint_hash(&state) != submitted.finalStateHash {
            return Err(NodeError::Job(format!(
                "the result {result_cid} does not hash to the final state hash the worker posted"
            )));
        }
        MlpState::from_bytes(&spec.train.model, &state)?;
        Ok(JobResult {
            spec,
            submitted,
            state,
        })
    }
}
