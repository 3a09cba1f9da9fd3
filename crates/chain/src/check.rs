//! Reading a deployment back from the chain: code at every address, the wiring between the
//! contracts, who holds each role (rebuilt from the `RoleGranted`/`RoleRevoked` events since
//! the deployment block, so a holder nobody recorded in the file shows up too), and the
//! market's parameters. `pedals deploy check` prints it; an operator runs it after a
//! deployment and after every change of roles.

use std::collections::{BTreeMap, BTreeSet};

use alloy::{
    primitives::{Address, B256, U256},
    providers::{DynProvider, Provider},
    rpc::types::Filter,
    sol_types::SolEvent,
};

use crate::{ChainError, Deployment, DisputeGame, IJobMarket, JobMarket, StakeManager};

/// The chain id of a local devnet (anvil), where the deployer may keep every role.
pub const DEVNET_CHAIN_ID: u64 = 31337;

/// One property of a deployment and whether it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What is checked, in a few words.
    pub name: String,
    /// Whether it holds.
    pub ok: bool,
    /// What was found.
    pub detail: String,
}

/// A deployment as read from the chain.
#[derive(Debug, Clone)]
pub struct DeploymentReport {
    /// Every check, in order.
    pub checks: Vec<Check>,
    /// The holders of each role, by contract and role name.
    pub holders: BTreeMap<String, BTreeSet<Address>>,
    /// The market's parameters now.
    pub parameters: IJobMarket::MarketParams,
    /// The stake manager's unbonding delay, in seconds.
    pub unbonding_delay: U256,
    /// The span payments' withdrawal delay, in seconds.
    pub span_withdraw_delay: U256,
    /// The span dispute game's terms.
    pub span_dispute: SpanDisputeTerms,
    /// Whether the market is paused.
    pub paused: bool,
}

/// The terms `SpanDisputeGame` was deployed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanDisputeTerms {
    /// A challenger's bond, wei.
    pub bond: U256,
    /// The most a conviction slashes, wei.
    pub slash: U256,
    /// Seconds on each side's clock.
    pub clock: u32,
    /// Seconds a receipt can be disputed after it was issued.
    pub receipt_window: u32,
}

impl DeploymentReport {
    /// Whether every check holds.
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }
}

fn check(name: &str, ok: bool, detail: impl Into<String>) -> Check {
    Check {
        name: name.to_string(),
        ok,
        detail: detail.into(),
    }
}

fn list(set: &BTreeSet<Address>) -> String {
    if set.is_empty() {
        return "nobody".into();
    }
    set.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Who holds each role of the AccessControl contract at `contract`, replaying its grants and
/// revocations since block `from`.
async fn role_holders(
    provider: &DynProvider,
    contract: Address,
    from: u64,
) -> Result<BTreeMap<B256, BTreeSet<Address>>, ChainError> {
    // Both contracts inherit OpenZeppelin's AccessControl: the events are the same.
    let filter = Filter::new()
        .address(contract)
        .event_signature(vec![
            JobMarket::RoleGranted::SIGNATURE_HASH,
            JobMarket::RoleRevoked::SIGNATURE_HASH,
        ])
        .from_block(from);
    let mut holders: BTreeMap<B256, BTreeSet<Address>> = BTreeMap::new();
    for log in provider.get_logs(&filter).await? {
        if let Ok(granted) = JobMarket::RoleGranted::decode_log(&log.inner) {
            holders
                .entry(granted.role)
                .or_default()
                .insert(granted.account);
        } else if let Ok(revoked) = JobMarket::RoleRevoked::decode_log(&log.inner) {
            holders
                .entry(revoked.role)
                .or_default()
                .remove(&revoked.account);
        }
    }
    Ok(holders)
}

/// Reads deployment `d` back through `provider` and checks it against the file and the
/// documented role assignments (docs/operations.md): the admin of both contracts and the
/// pauser are the file's and nobody else; the span dispute game is the only account that may
/// slash stakes directly (job disputes seize collateral through the market); off a devnet, the
/// admin is a contract (a timelock or a multisig) and the pauser another account.
pub async fn check_deployment(
    provider: &DynProvider,
    d: &Deployment,
) -> Result<DeploymentReport, ChainError> {
    let mut checks = Vec::new();
    let chain_id = provider.get_chain_id().await?;
    checks.push(check(
        "chain",
        chain_id == d.chain_id,
        format!(
            "the endpoint is on chain {chain_id}, the file is for {}",
            d.chain_id
        ),
    ));
    for (name, address) in [
        ("StakeManager", d.stake_manager),
        ("JobMarket", d.job_market),
        ("GameRouter", d.game_router),
        ("DisputeGame", d.dispute_game),
        ("Referee", d.referee),
        ("LmDisputeGame", d.lm_dispute_game),
        ("LmProgramReferee", d.lm_program_referee),
        ("LmFullProgramReferee", d.lm_full_program_referee),
        ("LmElementReferee", d.lm_element_referee),
        ("DataAvailability", d.data_availability),
        ("AuditPool", d.audit_pool),
        ("SpanPayments", d.span_payments),
        ("SpanDisputeGame", d.span_dispute_game),
        ("LmSpanReferee", d.lm_span_referee),
    ] {
        let code = provider.get_code_at(address).await?;
        checks.push(check(
            &format!("{name} deployed"),
            !code.is_empty(),
            format!("{} bytes of code at {address}", code.len()),
        ));
    }
    let market = JobMarket::new(d.job_market, provider.clone());
    let stake = StakeManager::new(d.stake_manager, provider.clone());
    let game = DisputeGame::new(d.dispute_game, provider.clone());
    let router = crate::GameRouter::new(d.game_router, provider.clone());
    let lm_game = crate::lm::LmDisputeGame::new(d.lm_dispute_game, provider.clone());
    let availability = crate::DataAvailability::new(d.data_availability, provider.clone());
    let span_game = crate::span::SpanDisputeGame::new(d.span_dispute_game, provider.clone());
    let call = ChainError::from_contract;
    let games = router.games().call().await.map_err(call)?;
    let game_at = |i: usize| games.get(i).copied().unwrap_or_default();
    let wiring = [
        (
            "stake manager bound to the market",
            stake.market().call().await.map_err(call)?,
            d.job_market,
        ),
        (
            "market uses the stake manager",
            market.stakeManager().call().await.map_err(call)?,
            d.stake_manager,
        ),
        (
            "market's resolver is the game router",
            market.resolver().call().await.map_err(call)?,
            d.game_router,
        ),
        (
            "game router serves the market",
            router.market().call().await.map_err(call)?,
            d.job_market,
        ),
        (
            "router's first game is the dispute game",
            game_at(0),
            d.dispute_game,
        ),
        (
            "router's second game is the fine-tuning game",
            game_at(1),
            d.lm_dispute_game,
        ),
        (
            "dispute game reports to the router",
            game.market().call().await.map_err(call)?,
            d.game_router,
        ),
        (
            "fine-tuning game reports to the router",
            lm_game.market().call().await.map_err(call)?,
            d.game_router,
        ),
        (
            "fine-tuning game uses the program referee",
            lm_game.program().call().await.map_err(call)?,
            d.lm_program_referee,
        ),
        (
            "fine-tuning game uses the full program referee",
            lm_game.fullProgram().call().await.map_err(call)?,
            d.lm_full_program_referee,
        ),
        (
            "fine-tuning game uses the element referee",
            lm_game.elements().call().await.map_err(call)?,
            d.lm_element_referee,
        ),
        (
            "dispute game uses the referee",
            game.referee().call().await.map_err(call)?,
            d.referee,
        ),
        (
            "market's publisher is the data-availability contract",
            market.publisher().call().await.map_err(call)?,
            d.data_availability,
        ),
        (
            "data-availability contract serves the market",
            availability.market().call().await.map_err(call)?,
            d.job_market,
        ),
        (
            "market's auditor is the audit pool",
            market.auditor().call().await.map_err(call)?,
            d.audit_pool,
        ),
        (
            "audit pool serves the market",
            crate::AuditPool::new(d.audit_pool, provider.clone())
                .market()
                .call()
                .await
                .map_err(call)?,
            d.job_market,
        ),
        (
            "fee recipient",
            market.feeRecipient().call().await.map_err(call)?,
            d.fee_recipient,
        ),
        (
            "span game slashes through the stake manager",
            span_game.stakes().call().await.map_err(call)?,
            d.stake_manager,
        ),
        (
            "span game uses the span referee",
            span_game.spans().call().await.map_err(call)?,
            d.lm_span_referee,
        ),
        (
            "span game uses the element referee",
            span_game.elements().call().await.map_err(call)?,
            d.lm_element_referee,
        ),
        (
            "span game pays the fee recipient",
            span_game.treasury().call().await.map_err(call)?,
            d.fee_recipient,
        ),
    ];
    for (name, found, want) in wiring {
        checks.push(check(
            name,
            found == want,
            format!("{found} (the file says {want})"),
        ));
    }

    let from = d.deployment_block.saturating_sub(1);
    let market_roles = role_holders(provider, d.job_market, from).await?;
    let stake_roles = role_holders(provider, d.stake_manager, from).await?;
    let admin_role = B256::ZERO;
    let pauser_role = market.PAUSER_ROLE().call().await.map_err(call)?;
    let slasher_role = stake.SLASHER_ROLE().call().await.map_err(call)?;
    let of = |roles: &BTreeMap<B256, BTreeSet<Address>>, role: B256| {
        roles.get(&role).cloned().unwrap_or_default()
    };
    let holders = BTreeMap::from([
        ("JobMarket admin".to_string(), of(&market_roles, admin_role)),
        (
            "JobMarket pauser".to_string(),
            of(&market_roles, pauser_role),
        ),
        (
            "StakeManager admin".to_string(),
            of(&stake_roles, admin_role),
        ),
        (
            "StakeManager slasher".to_string(),
            of(&stake_roles, slasher_role),
        ),
    ]);
    let only = |who: Address| BTreeSet::from([who]);
    for (name, want) in [
        ("JobMarket admin", only(d.admin)),
        ("JobMarket pauser", only(d.pauser)),
        ("StakeManager admin", only(d.admin)),
        ("StakeManager slasher", only(d.span_dispute_game)),
    ] {
        let found = &holders[name];
        checks.push(check(
            &format!("{name} role"),
            *found == want,
            format!("held by {} (expected {})", list(found), list(&want)),
        ));
    }
    let devnet = d.chain_id == DEVNET_CHAIN_ID;
    let admin_code = provider.get_code_at(d.admin).await?;
    checks.push(check(
        "admin is a contract (timelock or multisig)",
        devnet || !admin_code.is_empty(),
        if admin_code.is_empty() {
            format!(
                "{} is an account with no code{}",
                d.admin,
                if devnet { " (allowed on a devnet)" } else { "" }
            )
        } else {
            format!("{} bytes of code at {}", admin_code.len(), d.admin)
        },
    ));
    checks.push(check(
        "pauser separate from the admin",
        devnet || d.pauser != d.admin,
        format!("pauser {}, admin {}", d.pauser, d.admin),
    ));
    Ok(DeploymentReport {
        checks,
        holders,
        parameters: market.getParameters().call().await.map_err(call)?,
        unbonding_delay: stake.unbondingDelay().call().await.map_err(call)?,
        span_withdraw_delay: crate::SpanPayments::new(d.span_payments, provider.clone())
            .withdrawDelay()
            .call()
            .await
            .map_err(call)?,
        span_dispute: SpanDisputeTerms {
            bond: span_game.bond().call().await.map_err(call)?,
            slash: span_game.slashAmount().call().await.map_err(call)?,
            clock: span_game.clock().call().await.map_err(call)?,
            receipt_window: span_game.receiptWindow().call().await.map_err(call)?,
        },
        paused: market.paused().call().await.map_err(call)?,
    })
}
