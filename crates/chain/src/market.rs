//! A client for the job market and the stake manager, signing with one account.

use alloy::{
    contract::SolCallBuilder,
    network::EthereumWallet,
    primitives::{Address, B256, Bytes, U256},
    providers::{DynProvider, Provider, ProviderBuilder},
    rpc::{
        client::{ClientBuilder, RpcClient},
        types::TransactionReceipt,
    },
    signers::local::PrivateKeySigner,
    sol_types::SolCall,
    transports::{http::reqwest::Url, layers::RetryBackoffLayer},
};
use pedals_core::JobId;
use tracing::debug;

use pedals_store::Action;

use crate::{ChainError, Deployment, IJobMarket, IStakeManager, JobMarket, StakeManager};

/// What a requester posts (the binding of `IJobMarket.JobRequest`).
pub type JobRequest = IJobMarket::JobRequest;

/// The receipt facts of a mined transaction that callers report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxOutcome {
    /// Transaction hash.
    pub hash: B256,
    /// Block it was mined in.
    pub block_number: u64,
    /// Gas it used.
    pub gas_used: u64,
    /// Price paid per unit of gas, in wei.
    pub effective_gas_price: u128,
}

impl TxOutcome {
    /// Wei the sender paid for gas.
    pub fn fee(&self) -> U256 {
        U256::from(self.gas_used) * U256::from(self.effective_gas_price)
    }

    /// The facts of a successful receipt; a reverted one is [`ChainError::TxReverted`].
    pub fn from_receipt(receipt: &TransactionReceipt) -> Result<Self, ChainError> {
        if !receipt.status() {
            return Err(ChainError::TxReverted(receipt.transaction_hash));
        }
        Ok(Self {
            hash: receipt.transaction_hash,
            block_number: receipt.block_number.unwrap_or_default(),
            gas_used: receipt.gas_used,
            effective_gas_price: receipt.effective_gas_price,
        })
    }
}

/// The chain's time: the timestamp of its latest block, which deadlines are measured against.
pub async fn chain_time(provider: &DynProvider) -> Result<u64, ChainError> {
    let block = provider
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await?
        .ok_or(ChainError::MissingBlock(0))?;
    Ok(block.header.timestamp)
}

/// The Pedals contracts of one deployment, as seen by one signing account.
#[derive(Debug, Clone)]
pub struct Market {
    provider: DynProvider,
    deployment: Deployment,
    sender: Address,
    /// The signing account's wallet, for a crash-safe sender made later
    /// ([`Market::journaled`]).
    pub(crate) wallet: EthereumWallet,
    /// When set, every transaction of a daemon's role goes through this sender's write-ahead
    /// intents (see [`Market::with_sender`]).
    pub(crate) journal: Option<std::sync::Arc<crate::TxSender>>,
    /// The game whose shared moves (rows, clock, `gameOf`) this client plays: see
    /// [`Market::playing`].
    pub(crate) game: crate::GameKind,
    /// Blocks per log query of a game's events ([`Market::with_log_range`]).
    pub(crate) log_range: u64,
}

/// How long one JSON-RPC request may take: an endpoint that accepts the connection and never
/// answers (a frozen node) fails a command after this instead of hanging it.
pub const RPC_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A provider for `rpc_url` (no wallet) whose every request may take [`RPC_TIMEOUT`]: what a
/// daemon or a command reads the chain through.
pub fn rpc_provider(rpc_url: Url) -> Result<DynProvider, ChainError> {
    Ok(ProviderBuilder::new()
        .connect_client(rpc_client(rpc_url, RPC_TIMEOUT)?)
        .erased())
}

/// Times a request the endpoint answers with a rate limit or a passing server error (HTTP 429
/// or 503, a null response, a JSON-RPC "rate limited") is sent again, with a growing pause,
/// before the error is the caller's. A timeout is not retried: it already took its time.
pub const RPC_RETRIES: u32 = 4;

/// The JSON-RPC client of every provider: requests limited to `timeout`, retried as
/// [`RPC_RETRIES`] says.
fn rpc_client(rpc_url: Url, timeout: std::time::Duration) -> Result<RpcClient, ChainError> {
    let http = alloy::transports::http::reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|e| ChainError::Unreachable {
            endpoint: rpc_url.to_string(),
            reason: e.to_string(),
        })?;
    // 500 ms before the first retry; a compute budget high enough never to queue requests.
    let retry = RetryBackoffLayer::new(RPC_RETRIES, 500, u64::MAX / 2);
    Ok(ClientBuilder::default()
        .layer(retry)
        .http_with_client(http, rpc_url))
}

impl Market {
    /// Connects to `rpc_url` as `signer` and checks that the endpoint is on the deployment's
    /// chain and that the deployment's contracts are there; every request may take
    /// [`RPC_TIMEOUT`].
    pub async fn connect(
        rpc_url: Url,
        signer: PrivateKeySigner,
        deployment: Deployment,
    ) -> Result<Self, ChainError> {
        Self::connect_within(rpc_url, signer, deployment, RPC_TIMEOUT).await
    }

    /// [`Market::connect`] with every request limited to `timeout`.
    pub async fn connect_within(
        rpc_url: Url,
        signer: PrivateKeySigner,
        deployment: Deployment,
        timeout: std::time::Duration,
    ) -> Result<Self, ChainError> {
        let endpoint = rpc_url.to_string();
        let client = rpc_client(rpc_url, timeout)?;
        let sender = signer.address();
        // Nonces come from the node's pending count on every send. alloy's default cached
        // nonce manager counts a nonce as used even when gas estimation rejects the call, so
        // the next transaction would wait forever behind a gap. (The crash-safe sender with
        // its own stored nonces is pedals-node's concern.)
        let wallet = EthereumWallet::from(signer);
        let provider = ProviderBuilder::new()
            .disable_recommended_fillers()
            .with_gas_estimation()
            .with_simple_nonce_management()
            .fetch_chain_id()
            .wallet(wallet.clone())
            .connect_client(client)
            .erased();
        let actual = provider
            .get_chain_id()
            .await
            .map_err(|e| ChainError::Unreachable {
                endpoint,
                reason: format!("{e} (after at most {} s)", timeout.as_secs_f64()),
            })?;
        if actual != deployment.chain_id {
            return Err(ChainError::ChainIdMismatch {
                expected: deployment.chain_id,
                actual,
            });
        }
        let market = Self {
            provider,
            deployment,
            sender,
            wallet,
            journal: None,
            game: crate::GameKind::Mlp,
            log_range: crate::SCAN_RANGE,
        };
        market.check_contracts().await?;
        Ok(market)
    }

    /// Checks that the deployment's market and stake manager have code on the chain: a
    /// payment sent to an address without code would be a plain transfer, lost.
    pub async fn check_contracts(&self) -> Result<(), ChainError> {
        let d = &self.deployment;
        for (contract, address) in [
            ("JobMarket", d.job_market),
            ("StakeManager", d.stake_manager),
        ] {
            if self.provider.get_code_at(address).await?.is_empty() {
                return Err(ChainError::NoContract {
                    contract,
                    address,
                    chain_id: d.chain_id,
                });
            }
        }
        Ok(())
    }

    /// A client over an existing connection (`provider`, which need not sign), signing as
    /// `signer`; the chain id is taken from the deployment.
    pub fn over(provider: DynProvider, signer: PrivateKeySigner, deployment: Deployment) -> Self {
        let sender = signer.address();
        let wallet = EthereumWallet::from(signer);
        let provider = ProviderBuilder::new()
            .disable_recommended_fillers()
            .with_gas_estimation()
            .with_simple_nonce_management()
            .with_chain_id(deployment.chain_id)
            .wallet(wallet.clone())
            .connect_provider(provider)
            .erased();
        Self {
            provider,
            deployment,
            sender,
            wallet,
            journal: None,
            game: crate::GameKind::Mlp,
            log_range: crate::SCAN_RANGE,
        }
    }

    /// The signing account.
    pub fn sender(&self) -> Address {
        self.sender
    }

    /// The provider, for reads this client does not wrap.
    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    /// The deployment this client talks to.
    pub fn deployment(&self) -> &Deployment {
        &self.deployment
    }

    /// The job market binding.
    pub fn job_market(&self) -> JobMarket::JobMarketInstance<DynProvider> {
        JobMarket::new(self.deployment.job_market, self.provider.clone())
    }

    /// The stake manager binding.
    pub fn stake_manager(&self) -> StakeManager::StakeManagerInstance<DynProvider> {
        StakeManager::new(self.deployment.stake_manager, self.provider.clone())
    }

    /// ETH balance of `account`.
    pub async fn balance(&self, account: Address) -> Result<U256, ChainError> {
        Ok(self.provider.get_balance(account).await?)
    }

    /// Adds `amount` to the sender's stake.
    pub async fn stake(&self, amount: U256) -> Result<TxOutcome, ChainError> {
        let stakes = self.stake_manager();
        self.transact(U256::ZERO, Action::Stake, stakes.stake().value(amount))
            .await
    }

    /// Moves `amount` of the sender's free stake into unbonding.
    pub async fn request_unstake(&self, amount: U256) -> Result<TxOutcome, ChainError> {
        let stakes = self.stake_manager();
        self.transact(U256::ZERO, Action::Unstake, stakes.requestUnstake(amount))
            .await
    }

    /// Withdraws the sender's unbonded stake once its unbonding delay is over.
    pub async fn withdraw_stake(&self) -> Result<TxOutcome, ChainError> {
        let stakes = self.stake_manager();
        self.transact(U256::ZERO, Action::Withdraw, stakes.withdrawStake())
            .await
    }

    /// Posts a job escrowing `payment`; returns its id.
    pub async fn post_job(
        &self,
        request: JobRequest,
        payment: U256,
    ) -> Result<(JobId, TxOutcome), ChainError> {
        let market = self.job_market();
        let receipt = send_receipt(market.postJob(request).value(payment)).await?;
        let outcome = TxOutcome::from_receipt(&receipt)?;
        let job_id = receipt
            .decoded_log::<JobMarket::JobPosted>()
            .map(|log| log.data.jobId)
            .ok_or(ChainError::MissingEvent(outcome.hash, "JobPosted"))?;
        let job_id = JobId::try_from(job_id).map_err(|_| ChainError::JobIdTooLarge(job_id))?;
        Ok((job_id, outcome))
    }

    /// Posts a zk job for `circuit` escrowing `payment` (`request.specHash` is the job
    /// commitment); returns its id.
    pub async fn post_zk_job(
        &self,
        request: JobRequest,
        circuit: u8,
        payment: U256,
    ) -> Result<(JobId, TxOutcome), ChainError> {
        let market = self.job_market();
        let receipt = send_receipt(market.postZkJob(request, circuit).value(payment)).await?;
        let outcome = TxOutcome::from_receipt(&receipt)?;
        let job_id = receipt
            .decoded_log::<JobMarket::JobPosted>()
            .map(|log| log.data.jobId)
            .ok_or(ChainError::MissingEvent(outcome.hash, "JobPosted"))?;
        let job_id = JobId::try_from(job_id).map_err(|_| ChainError::JobIdTooLarge(job_id))?;
        Ok((job_id, outcome))
    }

    /// The accepted proof of zk job `job_id` (its `ZkResultAccepted` event), if any: the
    /// worker, the output commitment and the logits' CID.
    pub async fn zk_result(
        &self,
        job_id: JobId,
    ) -> Result<Option<crate::JobMarket::ZkResultAccepted>, ChainError> {
        let job_id = job_id.to_u256();
        let events = self
            .job_market()
            .ZkResultAccepted_filter()
            .topic1(job_id)
            .from_block(self.deployment.deployment_block)
            .query()
            .await
            .map_err(ChainError::from_contract)?;
        Ok(events.into_iter().last().map(|(event, _)| event))
    }

    /// The verifier registered as zk circuit `circuit` (zero when none).
    pub async fn zk_verifier(&self, circuit: u8) -> Result<Address, ChainError> {
        self.job_market()
            .zkVerifierOf(circuit)
            .call()
            .await
            .map_err(ChainError::from_contract)
    }

    /// Cancels an unclaimed job of the sender's.
    pub async fn cancel_job(&self, job_id: JobId) -> Result<TxOutcome, ChainError> {
        let job_id = job_id.to_u256();
        let market = self.job_market();
        send(market.cancelJob(job_id)).await
    }

    /// Claims a job for the sender.
    pub async fn claim_job(&self, job_id: JobId) -> Result<TxOutcome, ChainError> {
        let job_id = job_id.to_u256();
        let market = self.job_market();
        self.transact(job_id, Action::Claim, market.claimJob(job_id))
            .await
    }

    /// Submits the sender's result for a claimed job; `final_proof` proves `final_state_hash`
    /// as the trace's last leaf; `audit_root` commits to every step's audit leaf (zero: the
    /// job is not audited; docs/commitments.md §8).
    #[allow(clippy::too_many_arguments)]
    pub async fn submit_result(
        &self,
        job_id: JobId,
        steps: u64,
        trace_root: B256,
        audit_root: B256,
        final_state_hash: B256,
        final_proof: Vec<B256>,
        result_cid: Bytes,
    ) -> Result<TxOutcome, ChainError> {
        let job_id = job_id.to_u256();
        let market = self.job_market();
        let call = market.submitResult(
            job_id,
            U256::from(steps),
            trace_root,
            audit_root,
            final_state_hash,
            final_proof,
            result_cid,
        );
        self.transact(job_id, Action::Submit, call).await
    }

    /// Finalizes a job whose challenge window has ended.
    pub async fn finalize(&self, job_id: JobId) -> Result<TxOutcome, ChainError> {
        let job_id = job_id.to_u256();
        let market = self.job_market();
        self.transact(job_id, Action::Finalize, market.finalize(job_id))
            .await
    }

    /// Refunds a job whose worker missed the delivery deadline.
    pub async fn expire(&self, job_id: JobId) -> Result<TxOutcome, ChainError> {
        let job_id = job_id.to_u256();
        let market = self.job_market();
        self.transact(job_id, Action::Expire, market.expire(job_id))
            .await
    }

    /// Withdraws the sender's credit.
    pub async fn withdraw(&self) -> Result<TxOutcome, ChainError> {
        let market = self.job_market();
        send(market.withdraw()).await
    }

    /// Withdraws the accrued protocol fees (the sender must be the fee recipient).
    pub async fn withdraw_fees(&self) -> Result<TxOutcome, ChainError> {
        let market = self.job_market();
        send(market.withdrawFees()).await
    }

    /// The stored job.
    pub async fn job(&self, job_id: JobId) -> Result<IJobMarket::Job, ChainError> {
        let job_id = job_id.to_u256();
        self.job_market()
            .getJob(job_id)
            .call()
            .await
            .map_err(ChainError::from_contract)
    }

    /// The latest result submitted for `job_id` (its `ResultSubmitted` event), if any: the
    /// step count, trace root, final state hash and result CID the worker committed to.
    pub async fn submitted_result(
        &self,
        job_id: JobId,
    ) -> Result<Option<crate::JobMarket::ResultSubmitted>, ChainError> {
        let job_id = job_id.to_u256();
        let events = self
            .job_market()
            .ResultSubmitted_filter()
            .topic1(job_id)
            .from_block(self.deployment.deployment_block)
            .query()
            .await
            .map_err(ChainError::from_contract)?;
        Ok(events.into_iter().last().map(|(event, _)| event))
    }

    /// Credit `account` can withdraw from the market.
    pub async fn credit_of(&self, account: Address) -> Result<U256, ChainError> {
        self.job_market()
            .creditOf(account)
            .call()
            .await
            .map_err(ChainError::from_contract)
    }

    /// Fees accrued in the market.
    pub async fn fees_accrued(&self) -> Result<U256, ChainError> {
        self.job_market()
            .feesAccrued()
            .call()
            .await
            .map_err(ChainError::from_contract)
    }

    /// The market parameters.
    pub async fn parameters(&self) -> Result<IJobMarket::MarketParams, ChainError> {
        self.job_market()
            .getParameters()
            .call()
            .await
            .map_err(ChainError::from_contract)
    }

    /// The stake a provider needs to claim a job paying `payment`: the collateral the claim
    /// locks (`payment × collateralBps / 10 000`), and at least the minimum provider stake.
    pub async fn stake_to_claim(&self, payment: U256) -> Result<U256, ChainError> {
        let params = self.parameters().await?;
        let collateral = payment * U256::from(params.collateralBps) / U256::from(10_000u64);
        Ok(collateral.max(U256::from(params.minProviderStake)))
    }

    /// The stake balances of `account`.
    pub async fn stake_of(&self, account: Address) -> Result<IStakeManager::Account, ChainError> {
        self.stake_manager()
            .accountOf(account)
            .call()
            .await
            .map_err(ChainError::from_contract)
    }
}

pub(crate) async fn send_receipt<C: SolCall>(
    call: SolCallBuilder<&DynProvider, C>,
) -> Result<TransactionReceipt, ChainError> {
    let pending = call.send().await.map_err(ChainError::from_contract)?;
    debug!(target: "pedals::chain", tx = %pending.tx_hash(), call = C::SIGNATURE, "sent");
    Ok(pending.get_receipt().await?)
}

pub(crate) async fn send<C: SolCall>(
    call: SolCallBuilder<&DynProvider, C>,
) -> Result<TxOutcome, ChainError> {
    TxOutcome::from_receipt(&send_receipt(call).await?)
}
