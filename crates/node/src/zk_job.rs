//! zk jobs on the worker: fetching a zk job's model and batch, and proving and submitting.

#[allow(clippy::wildcard_imports)]
use super::*;

impl Worker {
    /// Downloads a zk job's model and input batch (it has no spec file).
    pub(crate) async fn fetch_zk(
        &self,
        job: &IJobMarket::Job,
        record: &JobRecord,
    ) -> Result<Fetched, String> {
        zk::circuit_of(job.zkCircuit)?;
        for (cid, what) in [(&record.dataset_cid, "input"), (&record.model_cid, "model")] {
            let cid = cid
                .as_deref()
                .and_then(|c| pedals_core::parse_cid(c).ok())
                .ok_or_else(|| format!("its {what} CID is not a valid CID"))?;
            if let Some(waiting) = self.fetch(cid, what).await? {
                return Ok(waiting);
            }
        }
        Ok(Fetched::All)
    }

    /// A zk job's circuit and statement inputs, from the store, checked against its job
    /// commitment; `Ok(None)` while a file is missing.
    pub(crate) fn load_zk(
        &self,
        job: &IJobMarket::Job,
        record: &JobRecord,
    ) -> Result<Option<(&'static pedals_zk::Circuit, pedals_zk::ZkJob)>, String> {
        let circuit = zk::circuit_of(job.zkCircuit)?;
        let blob = |cid: &Option<String>| -> Result<Option<Vec<u8>>, String> {
            let cid = cid
                .as_deref()
                .and_then(|c| pedals_core::parse_cid(c).ok())
                .ok_or("a posted CID is not valid")?;
            self.store.blob(&cid).map_err(|e| e.to_string())
        };
        let (Some(model), Some(dataset)) = (blob(&record.model_cid)?, blob(&record.dataset_cid)?)
        else {
            return Ok(None);
        };
        Ok(Some((
            circuit,
            zk::load(circuit, &model, &dataset, job.specHash)?,
        )))
    }

    /// Proves a zk job on the blocking pool, stores and provides the logits, and submits the
    /// proof (its intent stored first, like every transaction). A submission that cannot
    /// succeed (another worker's proof won, the job was cancelled, or this worker's keys do not
    /// match the registered verifier) abandons the job.
    pub(crate) async fn prove_and_submit(
        &self,
        id: u64,
        job: &IJobMarket::Job,
        record: &JobRecord,
    ) -> Result<(), NodeError> {
        let per_sample = U256::from(job.payment) / U256::from(job.steps.max(1));
        if per_sample < self.config.min_wei_per_step {
            return self.abandon(
                id,
                format!(
                    "it pays {per_sample} wei per sample, below this worker's minimum of {}",
                    self.config.min_wei_per_step
                ),
            );
        }
        if self.now().await? > job.deliveryDeadline.to::<u64>() {
            return self.abandon(id, "its delivery deadline passed".into());
        }
        let (circuit, statement) = match self.load_zk(job, record) {
            Ok(Some(loaded)) => loaded,
            Ok(None) => return self.abandon(id, "its data is no longer in the store".into()),
            Err(reason) => return self.abandon(id, reason),
        };
        let keyring = self.zk.clone();
        let store = self.store.clone();
        // The proof is worth something for this job of this market on this chain only.
        let binding = pedals_zk::Binding {
            chain_id: self.deployment.chain_id,
            market: self.deployment.job_market.into_array(),
            job_id: id,
            worker: self.address().into_array(),
        };
        let started = std::time::Instant::now();
        let proven = tokio::task::spawn_blocking(move || -> Result<zk::Proven, NodeError> {
            let keys = keyring.keys(circuit)?;
            zk::prove(&store, &keys, &statement, binding)
        })
        .await??;
        info!(target: "pedals::node", job = id, circuit = circuit.name, output_commitment = %proven.output_commitment, seconds = started.elapsed().as_secs_f64(), "proven");
        self.store
            .update_job(id, |r| r.result_cid = Some(proven.result.to_string()))?;
        if let Some(net) = &self.net {
            net.provide(proven.result).await?;
        }
        let tx = call(
            self.deployment.job_market,
            JobMarket::submitZkResultCall {
                jobId: U256::from(id),
                outputCommitment: proven.output_commitment,
                resultCid: zk::cid_bytes(&proven.result),
                proof: proven.proof,
            }
            .abi_encode(),
        );
        // Signing estimates the gas, so a submission bound to revert fails here, unsent.
        let intent = match self.sender.sign(id, Action::Submit, tx).await {
            Ok(intent) => intent,
            Err(e) => return self.abandon(id, format!("its proof cannot be submitted: {e}")),
        };
        self.store
            .advance_with_intent(id, JobPhase::Submitting, &intent)?;
        self.settle(id, Action::Submit, JobPhase::Submitted, JobPhase::Ready)
            .await
    }
}
