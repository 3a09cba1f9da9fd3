//! Paying span servers (docs/split-inference.md, "Payment"): the client attaches to every
//! request it sends a paid server a voucher for everything the server computed in the session
//! before it (the price times the rows, and the head of the hash chain of the outputs), and a
//! last one when it closes the session; the server checks each against its own count and
//! chain, keeps the latest, and hands it over for redemption when the session ends. What
//! signs, recovers and redeems (EIP-712 over the chain's `SpanPayments`) is behind the two
//! traits here, so that this crate needs no chain client.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use alloy_primitives::{Address, B256, U256, keccak256};
use pedals_lm::Activations;
use pedals_p2p::PeerId;
use serde::{Deserialize, Serialize};

use crate::wire::{Refusal, Reply, refused};

/// A voucher as it travels with a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WireVoucher {
    /// Everything the session owes the server, in wei.
    pub amount: U256,
    /// The head of the hash chain of the outputs that `amount` pays for.
    pub outputs: B256,
    /// The client's signature (65 bytes, r‖s‖v).
    pub signature: alloy_primitives::Bytes,
}

/// The next head of an outputs chain: `keccak256(head ‖ Activations::hash(output))`.
pub fn chain_outputs(head: B256, output: &Activations) -> B256 {
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(head.as_slice());
    buf[32..].copy_from_slice(output.hash().as_slice());
    keccak256(buf)
}

/// The client's side: signs vouchers with its account.
pub trait VoucherSigner: Send + Sync {
    /// The paying account.
    fn account(&self) -> Address;
    /// Signs `Voucher(server, session, amount, outputs)`.
    fn sign(
        &self,
        server: Address,
        session: u64,
        amount: U256,
        outputs: B256,
    ) -> Result<Vec<u8>, String>;
}

/// The server's side: checks vouchers and deposits, and redeems.
pub trait VoucherBook: Send + Sync {
    /// The server's own paying-in account (vouchers must name it).
    fn account(&self) -> Address;
    /// The account that signed `v` for this server and `session`, if the signature is valid.
    fn signer(&self, session: u64, v: &WireVoucher) -> Option<Address>;
    /// Whether `client` can pay `owed` wei in all for its sessions with this server now: its
    /// deposit covers it and no withdrawal is pending. The error says what to do.
    fn can_pay(&self, client: Address, owed: U256) -> Result<(), String>;
    /// A session ended: redeem its last voucher (queued; the redemption is a transaction).
    fn settle(&self, client: Address, session: u64, v: WireVoucher);
}

/// What one paid session with one server has come to, as both sides count it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tab {
    /// Rows the server computed.
    pub rows: u64,
    /// The head of the chain of its outputs.
    pub outputs: B256,
}

impl Tab {
    /// What it owes at `price` wei per row.
    pub fn owed(&self, price: U256) -> U256 {
        price * U256::from(self.rows)
    }

    /// Adds an output of `rows` rows.
    pub fn add(&mut self, output: &Activations, rows: u64) {
        self.rows += rows;
        self.outputs = chain_outputs(self.outputs, output);
    }
}

/// A paid session as the server keeps it.
struct Ledger {
    client: Address,
    tab: Tab,
    best: Option<WireVoucher>,
    used: Instant,
}

/// The server's till: its price, what checks and redeems vouchers, and every paid session.
pub(crate) struct Till {
    price: U256,
    book: Arc<dyn VoucherBook>,
    ledgers: Mutex<HashMap<(PeerId, u64), Ledger>>,
}

fn unpaid(reason: String) -> Reply {
    refused(Refusal::Unpaid, reason, None)
}

impl Till {
    pub(crate) fn new(price: U256, book: Arc<dyn VoucherBook>) -> Self {
        Self {
            price,
            book,
            ledgers: Mutex::default(),
        }
    }

    pub(crate) fn account(&self) -> Address {
        self.book.account()
    }

    /// Checks the voucher of a request that will compute `rows` more rows of session `key`.
    pub(crate) fn admit(
        &self,
        key: (PeerId, u64),
        voucher: Option<&WireVoucher>,
        rows: u64,
    ) -> Result<(), Reply> {
        let v = voucher.ok_or_else(|| {
            unpaid(format!(
                "this server charges {} wei per token: attach a voucher to every request \
                 (give the gateway a keystore with a deposit)",
                self.price
            ))
        })?;
        let client = self
            .book
            .signer(key.1, v)
            .ok_or_else(|| unpaid("the voucher is not signed for this server".into()))?;
        let mut ledgers = self
            .ledgers
            .lock()
            .map_err(|_| unpaid("the ledger is poisoned".into()))?;
        let l = ledgers.entry(key).or_insert_with(|| Ledger {
            client,
            tab: Tab::default(),
            best: None,
            used: Instant::now(),
        });
        if l.client != client {
            return Err(unpaid(format!(
                "the session is paid by {}, not {client}",
                l.client
            )));
        }
        let owed = l.tab.owed(self.price);
        if v.amount != owed || v.outputs != l.tab.outputs {
            return Err(unpaid(format!(
                "the voucher pays {} wei for outputs {}; the session owes {owed} for {}",
                v.amount, v.outputs, l.tab.outputs
            )));
        }
        self.book
            .can_pay(client, owed + self.price * U256::from(rows))
            .map_err(unpaid)?;
        if v.amount > U256::ZERO {
            l.best = Some(v.clone());
        }
        l.used = Instant::now();
        Ok(())
    }

    /// Counts an output the server computed for session `key`.
    pub(crate) fn record(&self, key: (PeerId, u64), out: &Activations, rows: u64) {
        if let Ok(mut ledgers) = self.ledgers.lock()
            && let Some(l) = ledgers.get_mut(&key)
        {
            l.tab.add(out, rows);
        }
    }

    /// Session `key` ended: its last voucher (if it pays the whole tab) and then the best one
    /// go to redemption.
    pub(crate) fn close(&self, key: (PeerId, u64), voucher: Option<WireVoucher>) {
        let Some(mut l) = self.ledgers.lock().ok().and_then(|mut m| m.remove(&key)) else {
            return;
        };
        if let Some(v) = voucher
            && v.amount == l.tab.owed(self.price)
            && v.outputs == l.tab.outputs
            && self.book.signer(key.1, &v) == Some(l.client)
        {
            l.best = Some(v);
        }
        if let Some(best) = l.best.filter(|v| v.amount > U256::ZERO) {
            self.book.settle(l.client, key.1, best);
        }
    }

    /// Settles every session idle for `idle` or longer (its client went away without closing).
    pub(crate) fn settle_idle(&self, idle: Duration) {
        let stale: Vec<(PeerId, u64)> = self.ledgers.lock().map_or_else(
            |_| Vec::new(),
            |m| {
                m.iter()
                    .filter(|(_, l)| l.used.elapsed() >= idle)
                    .map(|(k, _)| *k)
                    .collect()
            },
        );
        for key in stale {
            self.close(key, None);
        }
    }
}
