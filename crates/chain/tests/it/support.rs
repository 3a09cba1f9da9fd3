//! Shared helpers: a devnet per test, job requests, time travel.

use alloy::{
    primitives::{B256, Bytes, U256, aliases::U40, keccak256},
    providers::{Provider, ext::AnvilApi},
};
use pedals_chain::{Devnet, DevnetConfig, DisputeGame, JobRequest, Market};

pub(crate) const PAYMENT: u128 = 200_000_000_000_000_000; // 0.2 ETH
pub(crate) const STEPS: u32 = 50;
pub(crate) const WINDOW: u32 = 10;

pub(crate) async fn devnet() -> Devnet {
    Devnet::start(DevnetConfig::default())
        .await
        .expect("devnet starts: run `make setup` first if the toolchain is missing")
}

pub(crate) async fn market(devnet: &Devnet, account: usize) -> Market {
    let signer = devnet.signer(account).expect("anvil has this dev account");
    Market::connect(devnet.endpoint(), signer, devnet.deployment().clone())
        .await
        .expect("connects")
}

/// The binary CIDv1 (raw codec, sha2-256) of `tag`.
pub(crate) fn cid(tag: &str) -> Bytes {
    pedals_core::cid_of(tag.as_bytes()).to_bytes().into()
}

/// A request for a training job of `STEPS` steps whose spec (a small MLP) the dispute game
/// admitted: the market posts no other training job.
pub(crate) async fn request(market: &Market) -> JobRequest {
    let spec = DisputeGame::Spec {
        layers: vec![4, 3, 2],
        batch: 2,
        lrQ12: 410,
        momentumQ12: 0,
        seed: 7,
        checkpointEvery: 1,
        datasetCid: "dataset".into(),
        modelCid: "model".into(),
        samples: 16,
        dataRoot: keccak256("pedals test data"),
        initHash: keccak256("pedals test model"),
    };
    let (spec_hash, _) = market
        .admit_spec(spec, u64::from(STEPS))
        .await
        .expect("the game admits a small MLP");
    let now = now(market).await;
    JobRequest {
        specHash: spec_hash,
        modelCid: cid("model"),
        datasetCid: cid("dataset"),
        steps: STEPS,
        verification: pedals_core::Verification::Optimistic.to_u8(),
        claimDeadline: U40::from(now + 600),
        deliveryDeadline: U40::from(now + 3600),
        challengeWindow: WINDOW,
    }
}

pub(crate) async fn now(market: &Market) -> u64 {
    market
        .provider()
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await
        .expect("rpc")
        .expect("latest block")
        .header
        .timestamp
}

pub(crate) async fn advance(market: &Market, seconds: u64) {
    market
        .provider()
        .anvil_increase_time(seconds)
        .await
        .expect("increase time");
    market.provider().evm_mine(None).await.expect("mine");
}

/// A trace of `STEPS + 1` made-up state hashes whose last leaf is [`final_hash`].
pub(crate) fn trace() -> pedals_core::TraceCommitment {
    let mut hashes: Vec<B256> = (0..=STEPS)
        .map(|i| keccak256(format!("state {i}")))
        .collect();
    hashes[STEPS as usize] = final_hash();
    pedals_core::TraceCommitment::new(hashes).expect("trace")
}

pub(crate) fn trace_root() -> B256 {
    trace().root()
}

/// The proof of [`final_hash`] as the trace's last leaf.
pub(crate) fn final_proof() -> Vec<B256> {
    trace().proof(u64::from(STEPS)).expect("proof").siblings
}

pub(crate) fn final_hash() -> B256 {
    keccak256("final state")
}

pub(crate) fn eth(wei: u128) -> U256 {
    U256::from(wei)
}
