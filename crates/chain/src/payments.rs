//! Split inference's payments (`SpanPayments`, docs/split-inference.md "Payment"): a client's
//! deposit, the EIP-712 vouchers it signs for a server's session, and their redemption.

use alloy::{
    primitives::{Address, B256, Signature, U256},
    signers::{SignerSync, local::PrivateKeySigner},
    sol_types::{Eip712Domain, SolStruct, eip712_domain},
};

use crate::{ChainError, Market, SpanPayments, TxOutcome, market::send};

alloy::sol! {
    /// A voucher, as `SpanPayments.VOUCHER_TYPEHASH` defines it: the `server` it pays, the
    /// client's `session` number with it, the cumulative `amount` in wei, and `outputs`, the
    /// head of the hash chain of the span outputs it pays for.
    #[derive(Debug, PartialEq, Eq)]
    struct Voucher {
        address server;
        uint64 session;
        uint256 amount;
        bytes32 outputs;
    }
}

/// A client's deposit (`SpanPayments.Account`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanAccount {
    /// What it holds, in wei.
    pub balance: U256,
    /// What it asked to withdraw.
    pub withdrawing: U256,
    /// When that withdrawal unlocks, Unix seconds (0: none requested).
    pub unlock_at: u64,
}

/// The EIP-712 domain of the `SpanPayments` at `contract` on chain `chain_id`.
pub fn voucher_domain(chain_id: u64, contract: Address) -> Eip712Domain {
    eip712_domain! {
        name: "Pedals SpanPayments",
        version: "1",
        chain_id: chain_id,
        verifying_contract: contract,
    }
}

impl Voucher {
    /// The digest the client signs.
    pub fn digest(&self, domain: &Eip712Domain) -> B256 {
        self.eip712_signing_hash(domain)
    }

    /// Signs it as `client`.
    pub fn sign(
        &self,
        domain: &Eip712Domain,
        client: &PrivateKeySigner,
    ) -> Result<Signature, ChainError> {
        sign_digest(&self.digest(domain), client)
    }

    /// The account that signed `signature` over it, if it is a valid signature that the
    /// contract accepts ([`digest_signer`]).
    pub fn signer(&self, domain: &Eip712Domain, signature: &Signature) -> Option<Address> {
        digest_signer(&self.digest(domain), signature)
    }
}

/// Signs an EIP-712 digest as `signer`.
pub(crate) fn sign_digest(
    digest: &B256,
    signer: &PrivateKeySigner,
) -> Result<Signature, ChainError> {
    signer.sign_hash_sync(digest).map_err(ChainError::sign)
}

/// The account that signed `digest`, if `signature` is one OpenZeppelin's ECDSA accepts: a
/// high-`s` signature recovers here but the contracts refuse it, so it is refused here too.
pub(crate) fn digest_signer(digest: &B256, signature: &Signature) -> Option<Address> {
    if signature.normalize_s().is_some() {
        return None;
    }
    signature.recover_address_from_prehash(digest).ok()
}

impl Market {
    /// The payments contract of split inference.
    pub fn span_payments(
        &self,
    ) -> SpanPayments::SpanPaymentsInstance<alloy::providers::DynProvider> {
        SpanPayments::new(self.deployment().span_payments, self.provider().clone())
    }

    /// The EIP-712 domain of this deployment's vouchers.
    pub fn voucher_domain(&self) -> Eip712Domain {
        voucher_domain(self.deployment().chain_id, self.deployment().span_payments)
    }

    /// Adds `amount` to the sender's deposit.
    pub async fn deposit_for_spans(&self, amount: U256) -> Result<TxOutcome, ChainError> {
        send(self.span_payments().deposit().value(amount)).await
    }

    /// Asks to withdraw `amount` of the sender's deposit after the contract's delay.
    pub async fn request_span_withdrawal(&self, amount: U256) -> Result<TxOutcome, ChainError> {
        send(self.span_payments().requestWithdrawal(amount)).await
    }

    /// Takes the sender's unlocked withdrawal.
    pub async fn withdraw_span_deposit(&self) -> Result<TxOutcome, ChainError> {
        send(self.span_payments().withdraw()).await
    }

    /// Redeems, as the server it names, a voucher `client` signed.
    pub async fn redeem_voucher(
        &self,
        client: Address,
        voucher: &Voucher,
        signature: &Signature,
    ) -> Result<TxOutcome, ChainError> {
        let contract = self.span_payments();
        let call = contract.redeem(
            client,
            voucher.session,
            voucher.amount,
            voucher.outputs,
            signature.as_bytes().to_vec().into(),
        );
        send(call).await
    }

    /// `client`'s deposit.
    pub async fn span_account(&self, client: Address) -> Result<SpanAccount, ChainError> {
        let a = self
            .span_payments()
            .accountOf(client)
            .call()
            .await
            .map_err(ChainError::from_contract)?;
        Ok(SpanAccount {
            balance: a.balance,
            withdrawing: a.withdrawing,
            unlock_at: a.unlockAt,
        })
    }

    /// What `server` has been paid for `session` of `client`.
    pub async fn span_paid(
        &self,
        client: Address,
        server: Address,
        session: u64,
    ) -> Result<U256, ChainError> {
        self.span_payments()
            .paidOf(client, server, session)
            .call()
            .await
            .map_err(ChainError::from_contract)
    }
}
