//! Split inference's payments on a real anvil, deployed by the project's script: a client
//! deposits, signs cumulative vouchers in Rust, a server redeems them (each pays only what it
//! adds), a voucher for another server or with a changed field pays nothing, the withdrawal
//! waits its delay; every balance to the wei.

use alloy::{
    primitives::{U256, keccak256},
    providers::ext::AnvilApi,
};
use pedals_chain::{ChainError, Devnet, SpanPayments, Voucher};

use crate::{dispute::market, worker::provider};

const ETH: u128 = 1_000_000_000_000_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vouchers_signed_in_rust_are_redeemed_on_chain_to_the_wei() {
    let devnet = Devnet::start(pedals_chain::DevnetConfig::default())
        .await
        .expect("devnet");
    let client = market(&devnet, 3).await;
    let server = market(&devnet, 4).await;
    let other = market(&devnet, 5).await;
    let client_key = devnet.signer(3).expect("client key");
    let domain = client.voucher_domain();
    let outputs = keccak256(b"the span's outputs");
    let voucher = |amount: u128, session: u64, to: &pedals_chain::Market| Voucher {
        server: to.sender(),
        session,
        amount: U256::from(amount),
        outputs,
    };

    // The digest the contract computes is the one signed here.
    let v = voucher(ETH / 10, 1, &server);
    let on_chain = client
        .span_payments()
        .voucherDigest(v.server, v.session, v.amount, v.outputs)
        .call()
        .await
        .expect("digest");
    assert_eq!(on_chain, v.digest(&domain));
    let sig = v.sign(&domain, &client_key).expect("signs");
    assert_eq!(v.signer(&domain, &sig), Some(client.sender()));
    // The same signature with `s` flipped to the high half recovers the same account, but the
    // contract refuses it (OpenZeppelin's ECDSA), so it is refused in Rust too.
    let n = U256::from_str_radix(
        "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
        16,
    )
    .expect("the curve order");
    let high = alloy::primitives::Signature::new(sig.r(), n - sig.s(), !sig.v());
    assert_eq!(v.signer(&domain, &high), None);
    assert!(matches!(
        server.redeem_voucher(client.sender(), &v, &high).await,
        Err(ChainError::SpanPayments(
            SpanPayments::SpanPaymentsErrors::BadSignature(_)
        ))
    ));

    let deposit = U256::from(ETH);
    let before = client.balance(client.sender()).await.expect("balance");
    let fee = client
        .deposit_for_spans(deposit)
        .await
        .expect("deposit")
        .fee();
    assert_eq!(
        client.balance(client.sender()).await.expect("balance"),
        before - deposit - fee
    );

    // Two vouchers of one session: each redemption pays what it adds.
    let server_before = server.balance(server.sender()).await.expect("balance");
    let fee1 = server
        .redeem_voucher(client.sender(), &v, &sig)
        .await
        .expect("redeems")
        .fee();
    let v2 = voucher(ETH / 4, 1, &server);
    let sig2 = v2.sign(&domain, &client_key).expect("signs");
    let fee2 = server
        .redeem_voucher(client.sender(), &v2, &sig2)
        .await
        .expect("redeems")
        .fee();
    assert_eq!(
        server.balance(server.sender()).await.expect("balance"),
        server_before + U256::from(ETH / 4) - fee1 - fee2,
        "paid the latest voucher's amount in all"
    );
    assert_eq!(
        client
            .span_paid(client.sender(), server.sender(), 1)
            .await
            .expect("paid"),
        U256::from(ETH / 4)
    );
    let account = client.span_account(client.sender()).await.expect("account");
    assert_eq!(account.balance, deposit - U256::from(ETH / 4));

    // The same voucher again, the older one, one for another server, a changed amount: refused.
    let refused = |r: Result<pedals_chain::TxOutcome, ChainError>| match r {
        Err(ChainError::SpanPayments(e)) => e,
        other => panic!("not refused by SpanPayments: {other:?}"),
    };
    assert!(matches!(
        refused(server.redeem_voucher(client.sender(), &v2, &sig2).await),
        SpanPayments::SpanPaymentsErrors::NothingToRedeem(_)
    ));
    assert!(matches!(
        refused(server.redeem_voucher(client.sender(), &v, &sig).await),
        SpanPayments::SpanPaymentsErrors::NothingToRedeem(_)
    ));
    assert!(matches!(
        refused(other.redeem_voucher(client.sender(), &v2, &sig2).await),
        SpanPayments::SpanPaymentsErrors::BadSignature(_)
    ));
    let mut forged = v2.clone();
    forged.amount = U256::from(ETH);
    assert!(matches!(
        refused(server.redeem_voucher(client.sender(), &forged, &sig2).await),
        SpanPayments::SpanPaymentsErrors::BadSignature(_)
    ));

    // A withdrawal waits the delay; the server redeems a later voucher meanwhile.
    client
        .request_span_withdrawal(account.balance)
        .await
        .expect("requests");
    assert!(matches!(
        refused(client.withdraw_span_deposit().await),
        SpanPayments::SpanPaymentsErrors::Locked(_)
    ));
    let v3 = voucher(ETH / 2, 1, &server);
    let sig3 = v3.sign(&domain, &client_key).expect("signs");
    server
        .redeem_voucher(client.sender(), &v3, &sig3)
        .await
        .expect("redeems");
    let p = provider(&devnet);
    p.anvil_increase_time(86_400 + 1).await.expect("warp");
    p.anvil_mine(Some(1), None).await.expect("mine");
    let before = client.balance(client.sender()).await.expect("balance");
    let fee = client
        .withdraw_span_deposit()
        .await
        .expect("withdraws")
        .fee();
    assert_eq!(
        client.balance(client.sender()).await.expect("balance"),
        before + U256::from(ETH / 2) - fee,
        "what was left after the server's redemptions"
    );
    let account = client.span_account(client.sender()).await.expect("account");
    assert_eq!((account.balance, account.unlock_at), (U256::ZERO, 0));
    assert_eq!(
        client
            .balance(client.deployment().span_payments)
            .await
            .expect("balance"),
        U256::ZERO,
        "the contract holds nothing"
    );
}
