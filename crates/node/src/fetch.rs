//! Getting a job's inputs: the spec, dataset and model fetched by CID from peers (or a
//! gateway), verified and stored, loaded back and checked against the posted job; and
//! providing what this node holds.

use super::*;
#[allow(clippy::wildcard_imports)]
use pedals_lm::CanonicalSpec as _;

impl Worker {
    /// Announces on the network every blob this node holds for its jobs (after a restart the
    /// DHT has forgotten them).
    pub(crate) async fn provide_known(&self) -> Result<(), NodeError> {
        let Some(net) = &self.net else {
            return Ok(());
        };
        net.provide(pedals_p2p::account_key(self.address())).await?;
        for record in self.store.jobs()? {
            if matches!(record.phase, JobPhase::Abandoned { .. }) {
                continue;
            }
            let mut cids: Vec<Cid> = [&record.spec_cid, &record.dataset_cid, &record.model_cid]
                .into_iter()
                .flatten()
                .filter_map(|c| pedals_core::parse_cid(c).ok())
                .collect();
            if let Some(result) = &record.result_cid
                && let Ok(cid) = pedals_core::parse_cid(result)
            {
                cids.push(cid);
            }
            for cid in cids {
                if self.store.has_blob(&cid)? {
                    net.provide(cid).await?;
                }
            }
        }
        Ok(())
    }

    /// Downloads whichever of the job's spec, dataset and model the store lacks, each verified
    /// against its CID, and provides them once stored. `Err` means the job cannot be used.
    pub(crate) async fn fetch_inputs(&self, job: &IJobMarket::Job) -> Result<Fetched, String> {
        let spec_cid = JobSpec::cid_for_hash(&job.specHash);
        if let Some(waiting) = self.fetch(spec_cid, "spec").await? {
            return Ok(waiting);
        }
        let spec_bytes = self
            .store
            .blob(&spec_cid)
            .map_err(|e| e.to_string())?
            .ok_or("the spec vanished from the store")?;
        let inputs = if pedals_lm::FinetuneSpec::is_finetune(&spec_bytes) {
            let spec = pedals_lm::FinetuneSpec::from_canonical_bytes(&spec_bytes)
                .map_err(|e| e.to_string())?;
            [
                (spec.dataset_cid().map_err(|e| e.to_string())?, "dataset"),
                (spec.model_cid().map_err(|e| e.to_string())?, "model"),
            ]
        } else if lm_job::is_lm(&spec_bytes) {
            let spec = pedals_lm::LmJobSpec::from_canonical_bytes(&spec_bytes)
                .map_err(|e| e.to_string())?;
            [
                (spec.prompts_cid().map_err(|e| e.to_string())?, "prompts"),
                (spec.model_cid().map_err(|e| e.to_string())?, "model"),
            ]
        } else {
            let spec = JobSpec::from_canonical_bytes(&spec_bytes).map_err(|e| e.to_string())?;
            [
                (spec.dataset_cid().map_err(|e| e.to_string())?, "dataset"),
                (spec.model_cid().map_err(|e| e.to_string())?, "model"),
            ]
        };
        for (cid, what) in inputs {
            if let Some(waiting) = self.fetch(cid, what).await? {
                return Ok(waiting);
            }
        }
        Ok(Fetched::All)
    }

    /// Makes sure blob `cid` is in the store: `Ok(None)` when it is, `Ok(Some(waiting))` when
    /// it cannot be had yet, `Err` when every provider sent bytes that do not match it.
    pub(crate) async fn fetch(&self, cid: Cid, what: &str) -> Result<Option<Fetched>, String> {
        if self.store.has_blob(&cid).map_err(|e| e.to_string())? {
            // Held already (put there by hand, or kept from an earlier job): still provide it,
            // so validators can fetch the job's inputs from this worker.
            if let Some(net) = &self.net
                && let Err(e) = net.provide(cid).await
            {
                warn!(target: "pedals::node", %cid, error = %e, "cannot announce a held blob");
            }
            return Ok(None);
        }
        let mut waiting = Vec::new();
        if let Some(net) = &self.net {
            // In verified chunks first (a large dataset over a slow link, resumed after a
            // restart); a peer that serves no chunks is asked for the whole blob, whose
            // answer also tells a liar from a peer that is only away.
            let whole = match download(net, self.store.dir(), cid).await {
                Ok((bytes, from)) => {
                    self.keep(cid, &bytes, &from, what).await?;
                    return Ok(None);
                }
                Err(e @ pedals_p2p::P2pError::NoProviders { .. }) => {
                    waiting.push(format!("from peers: {e}"));
                    None
                }
                Err(e) => {
                    debug!(target: "pedals::node", %cid, error = %e, "no chunked download; asking for the whole blob");
                    Some(net.fetch_blob(cid).await)
                }
            };
            match whole {
                None => {}
                Some(Ok((bytes, from))) => {
                    self.keep(cid, &bytes, &from.to_string(), what).await?;
                    return Ok(None);
                }
                Some(Err(pedals_p2p::P2pError::AllProvidersFailed { errors, bad, .. }))
                    if bad == errors.len() && self.config.gateway.is_none() =>
                {
                    return Err(format!(
                        "every provider of its {what} {cid} sent bytes that do not match the CID"
                    ));
                }
                Some(Err(e)) => waiting.push(format!("from peers: {e}")),
            }
        }
        if let Some(gateway) = &self.config.gateway {
            match gateway::fetch(&self.http, gateway, &cid, self.config.max_blob_bytes).await {
                Ok(bytes) => {
                    if let Err(e) = pedals_core::verify_cid(&cid, &bytes) {
                        return Err(format!(
                            "the gateway {gateway} sent bytes for its {what} {cid} that do not \
                             match the CID ({e})"
                        ));
                    }
                    self.keep(cid, &bytes, gateway.as_str(), what).await?;
                    return Ok(None);
                }
                Err(e) => waiting.push(e),
            }
        }
        if waiting.is_empty() {
            waiting.push("this node has no network and no gateway".into());
        }
        Ok(Some(Fetched::Waiting(format!(
            "the {what} {cid}: {}",
            waiting.join("; ")
        ))))
    }

    /// Stores a verified blob and provides it.
    pub(crate) async fn keep(
        &self,
        cid: Cid,
        bytes: &[u8],
        from: &str,
        what: &str,
    ) -> Result<(), String> {
        self.store
            .put_blob_expecting(&cid, bytes)
            .map_err(|e| e.to_string())?;
        info!(target: "pedals::node", %cid, from, bytes = bytes.len(), what, "fetched and verified");
        if let Some(net) = &self.net
            && let Err(e) = net.provide(cid).await
        {
            warn!(target: "pedals::node", %cid, error = %e, "cannot announce a fetched blob");
        }
        Ok(())
    }

    /// The spec, dataset and initial model of a job, from the store, each verified against
    /// its CID and against the job's on-chain commitments.
    pub(crate) fn load_inputs(
        &self,
        job: &IJobMarket::Job,
        record: &JobRecord,
    ) -> Result<Option<(JobSpec, Dataset, MlpState)>, String> {
        let spec_cid = JobSpec::cid_for_hash(&job.specHash);
        let Some(spec_bytes) = self.store.blob(&spec_cid).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let spec = JobSpec::from_canonical_bytes(&spec_bytes).map_err(|e| e.to_string())?;
        if spec.train.steps != u64::from(job.steps) {
            return Err(format!(
                "the spec trains {} steps but the job pays for {}",
                spec.train.steps, job.steps
            ));
        }
        // The market lets only a batch-inference job meet a data demand with a blob, so the
        // posted kind must be the spec's (docs/protocol.md §7).
        let inference = spec.inference.is_some();
        if !ZK.is(job.verification)
            && inference != Verification::OptimisticInference.is(job.verification)
        {
            return Err(format!(
                "the spec is a {} job but it was posted as {}",
                if inference {
                    "batch-inference"
                } else {
                    "training"
                },
                if inference {
                    "a training job"
                } else {
                    "a batch-inference job"
                }
            ));
        }
        // A demanded chunk's outputs go on-chain in one transaction: refuse chunks too large.
        if let Some(inf) = &spec.inference {
            let width = spec.train.model.layers.last().copied().unwrap_or(0);
            let bytes = inf.chunk.saturating_mul(width as u64).saturating_mul(4);
            if bytes > MAX_BLOB_BYTES {
                return Err(format!(
                    "its chunks' outputs are {bytes} bytes, more than the {MAX_BLOB_BYTES} that \
                     one transaction can publish if a chunk is demanded; ask for smaller chunks"
                ));
            }
        }
        let dataset_cid = spec.dataset_cid().map_err(|e| e.to_string())?;
        let model_cid = spec.model_cid().map_err(|e| e.to_string())?;
        if record.dataset_cid.as_deref() != Some(dataset_cid.to_string().as_str())
            || record.model_cid.as_deref() != Some(model_cid.to_string().as_str())
        {
            return Err("the posted dataset or model CID differs from the spec's".into());
        }
        let (Some(data), Some(model)) = (
            self.store.blob(&dataset_cid).map_err(|e| e.to_string())?,
            self.store.blob(&model_cid).map_err(|e| e.to_string())?,
        ) else {
            return Ok(None);
        };
        let dataset = Dataset::from_canonical_bytes(&data).map_err(|e| e.to_string())?;
        spec.train
            .model
            .check_dataset(&dataset)
            .map_err(|e| e.to_string())?;
        if let Some(inference) = &spec.inference {
            let chunks = inference::chunk_count(dataset.len() as u64, inference.chunk);
            if chunks != spec.train.steps {
                return Err(format!(
                    "the spec runs {} chunks but {} samples make {chunks}",
                    spec.train.steps,
                    dataset.len()
                ));
            }
        }
        let init = MlpState::from_bytes(&spec.train.model, &model).map_err(|e| e.to_string())?;
        spec.check_commitments(&dataset, &init)
            .map_err(|e| e.to_string())?;
        Ok(Some((spec, dataset, init)))
    }
}

/// Downloads blob `cid` in verified chunks into `<dir>/downloads/<cid>` (a `.part` file there
/// survives a restart and is resumed), then reads it and removes the file; returns the bytes,
/// checked against the CID, and the peer that sent most of them.
pub(crate) async fn download(
    net: &pedals_p2p::Client,
    dir: &std::path::Path,
    cid: Cid,
) -> Result<(Vec<u8>, String), pedals_p2p::P2pError> {
    let dir = dir.join("downloads");
    let io = |path: &std::path::Path, e: std::io::Error| pedals_p2p::P2pError::PartFile {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
    let dest = dir.join(cid.to_string());
    let done = net
        .download_blob(cid, &dest, &pedals_p2p::DownloadOptions::default())
        .await?;
    let read = dest.clone();
    let bytes = tokio::task::spawn_blocking(move || {
        let bytes = std::fs::read(&read);
        let _ = std::fs::remove_file(&read);
        bytes
    })
    .await
    .map_err(|e| io(&dest, std::io::Error::other(e)))?
    .map_err(|e| io(&dest, e))?;
    let from = done
        .providers
        .first()
        .map_or_else(|| "peers".to_string(), ToString::to_string);
    Ok((bytes, from))
}
