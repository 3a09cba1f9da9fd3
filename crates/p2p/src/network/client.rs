//! The handle every caller holds: commands to the event loop, and the fetches built on them.

use super::*;

impl Client {
    pub(super) async fn call<T>(
        &self,
        make: impl FnOnce(Reply1<T>) -> Command,
    ) -> Result<T, P2pError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .await
            .map_err(|_| P2pError::Stopped)?;
        rx.await.map_err(|_| P2pError::Stopped)
    }

    /// This node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// Counters of what this node served and received.
    pub fn stats(&self) -> &Arc<NetStats> {
        &self.stats
    }

    /// The addresses this node listens on, each ending in `/p2p/<peer id>` so that another
    /// node can use it as a bootstrap address.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, P2pError> {
        self.call(Command::ListenAddrs).await
    }

    /// Dials a peer (an address with `/p2p/<peer id>` also enters the routing table).
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), P2pError> {
        self.call(|r| Command::Dial(addr, r)).await?
    }

    /// Announces on the DHT that this node serves `cid` (its [`ContentSource`] must have
    /// it). The announcement is repeated when new peers join.
    pub async fn provide(&self, cid: Cid) -> Result<(), P2pError> {
        self.call(|r| Command::Provide(cid, r)).await
    }

    /// The peers that announce `cid`, this node excluded.
    pub async fn find_providers(&self, cid: Cid) -> Result<Vec<PeerId>, P2pError> {
        self.call(|r| Command::FindProviders(cid, r)).await
    }

    /// The peers connected now, with their ping round trips.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, P2pError> {
        self.call(Command::Peers).await
    }

    /// Sends one request on `/pedals/blob-range/1` to `peer` and waits for its answer.
    pub(crate) async fn range(
        &self,
        peer: PeerId,
        request: RangeRequest,
    ) -> Result<RangeReply, P2pError> {
        self.call(|reply| Command::Range {
            peer,
            request,
            reply,
        })
        .await?
    }

    /// Downloads blob `cid` from `peer` and verifies it against the CID.
    pub async fn fetch_blob_from(&self, peer: PeerId, cid: Cid) -> Result<Vec<u8>, P2pError> {
        let reply = self
            .call(|reply| Command::Blob { peer, cid, reply })
            .await??;
        let what = || format!("blob {cid}");
        let bytes = match reply {
            Reply::Found(bytes) => bytes,
            Reply::NotFound => {
                return Err(P2pError::NotFound {
                    peer: peer.to_string(),
                    what: what(),
                });
            }
            Reply::Busy => {
                return Err(P2pError::Busy {
                    peer: peer.to_string(),
                });
            }
            Reply::Failed => {
                return Err(P2pError::PeerFailed {
                    peer: peer.to_string(),
                    what: what(),
                });
            }
        };
        let checked = tokio::task::spawn_blocking(move || {
            let result = verify_cid(&cid, &bytes).map_err(|e| e.to_string());
            (bytes, result)
        })
        .await
        .map_err(|_| P2pError::Stopped)?;
        match checked {
            (bytes, Ok(())) => Ok(bytes),
            (_, Err(reason)) => {
                self.stats.count_bad_content();
                warn!(target: "pedals::p2p", %peer, %cid, %reason, "a peer sent a blob that does not match its CID");
                Err(P2pError::BadBlob {
                    peer: peer.to_string(),
                    cid: cid.to_string(),
                    reason,
                })
            }
        }
    }

    /// Finds the providers of `cid` and downloads it from the first that delivers bytes
    /// matching it, trying the nearest (by ping) first; returns the bytes and who sent them.
    pub async fn fetch_blob(&self, cid: Cid) -> Result<(Vec<u8>, PeerId), P2pError> {
        let providers = self.nearest_providers(cid).await?;
        let mut errors = Vec::new();
        let mut bad = 0;
        for peer in providers {
            // A connection lost on the way (not a refusal or bad bytes) is retried once, on a
            // fresh connection, before the next provider.
            for attempt in 0..2 {
                match self.fetch_blob_from(peer, cid).await {
                    Ok(bytes) => return Ok((bytes, peer)),
                    Err(e) => {
                        let transient = matches!(e, P2pError::Request { .. });
                        bad += usize::from(matches!(e, P2pError::BadBlob { .. }));
                        debug!(target: "pedals::p2p", %peer, %cid, attempt, error = %e, "provider failed");
                        errors.push(e.to_string());
                        if !transient {
                            break;
                        }
                    }
                }
            }
        }
        Err(P2pError::AllProvidersFailed {
            cid: cid.to_string(),
            errors,
            bad,
        })
    }

    /// Downloads the state of `job` after `step` steps from `peer` and verifies its openings
    /// against `claim` (the trace root and step count the worker posted on-chain).
    pub async fn fetch_checkpoint(
        &self,
        peer: PeerId,
        job: u64,
        step: u64,
        claim: TraceClaim,
    ) -> Result<VerifiedCheckpoint, P2pError> {
        let request = CheckpointRequest { job, step };
        let reply = self
            .call(|reply| Command::Checkpoint {
                peer,
                request,
                reply,
            })
            .await??;
        let what = || format!("checkpoint {step} of job {job}");
        let opening = match reply {
            Reply::Found(opening) => opening,
            Reply::NotFound => {
                return Err(P2pError::NotFound {
                    peer: peer.to_string(),
                    what: what(),
                });
            }
            Reply::Busy => {
                return Err(P2pError::Busy {
                    peer: peer.to_string(),
                });
            }
            Reply::Failed => {
                return Err(P2pError::PeerFailed {
                    peer: peer.to_string(),
                    what: what(),
                });
            }
        };
        match verify_opening(&claim, step, &opening) {
            Ok((hash, next_hash)) => Ok(VerifiedCheckpoint {
                state: opening.state,
                hash,
                next_hash,
                audit: opening.audit,
            }),
            Err(reason) => {
                self.stats.count_bad_content();
                warn!(target: "pedals::p2p", %peer, job, step, %reason, "a peer sent a checkpoint that does not verify");
                Err(P2pError::BadCheckpoint {
                    peer: peer.to_string(),
                    job,
                    step,
                    reason,
                })
            }
        }
    }

    /// Publishes an announcement on its topic.
    pub async fn publish(&self, announcement: &Announcement) -> Result<(), P2pError> {
        self.publish_raw(announcement.topic(), announcement.encode())
            .await
    }

    /// Publishes raw bytes on `topic`. Peers validate them like any message, so this is for
    /// tools and tests that need to send what [`Client::publish`] would not.
    pub async fn publish_raw(
        &self,
        topic: gossipsub::IdentTopic,
        data: Vec<u8>,
    ) -> Result<(), P2pError> {
        self.call(|reply| Command::Publish { topic, data, reply })
            .await?
    }

    /// Stops the event loop; every connection closes.
    pub async fn shutdown(&self) {
        let _ = self.commands.send(Command::Shutdown).await;
    }

    /// The providers of `cid`, nearest (by ping) first; [`P2pError::NoProviders`] when there
    /// is none.
    pub(crate) async fn nearest_providers(&self, cid: Cid) -> Result<Vec<PeerId>, P2pError> {
        let mut providers = self.find_providers(cid).await?;
        if providers.is_empty() {
            return Err(P2pError::NoProviders {
                cid: cid.to_string(),
            });
        }
        let rtt: HashMap<PeerId, Duration> = self
            .peers()
            .await?
            .into_iter()
            .filter_map(|p| p.rtt.map(|r| (p.peer, r)))
            .collect();
        providers.sort_by_key(|p| rtt.get(p).copied().unwrap_or(Duration::MAX));
        Ok(providers)
    }
}
