//! Paying span servers (docs/split-inference.md, "Payment"): prepaid vouchers. Every request
//! to a paid server carries a voucher for everything the session will owe once the server
//! has computed it (the price times every row, this request's included), committing to the
//! hash chain of the outputs received before it; the `close` carries one that commits to the
//! last output too. The server checks each against its own count and chain before it
//! computes, keeps the latest, and hands it over for redemption when the session ends. What
//! signs, recovers and redeems (EIP-712 over the chain's `SpanPayments`) is behind the two
//! traits here, so that this crate needs no chain client.

use std::{
    collections::{HashMap, HashSet},
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
    /// The account that signed `v` for this server and `session`, if the signature is valid
    /// and one the chain accepts.
    fn signer(&self, session: u64, v: &WireVoucher) -> Option<Address>;
    /// What `session` of `client` with this server was paid on-chain already: a session
    /// number serves one session, so a new one must have been paid nothing.
    fn paid(&self, client: Address, session: u64) -> Result<U256, String>;
    /// Whether `client` can pay `owed` wei in all for its sessions with this server now: its
    /// deposit covers it and no withdrawal is pending. The error says what to do.
    fn can_pay(&self, client: Address, owed: U256) -> Result<(), String>;
    /// A session ended: redeem its last voucher (queued; the redemption is a transaction).
    fn settle(&self, client: Address, session: u64, v: WireVoucher);
    /// `v` is now the best voucher of `session` of `client` for work done: a book that keeps
    /// it where a crash does not lose it can redeem it after a restart.
    fn earned(&self, client: Address, session: u64, v: &WireVoucher) {
        let _ = (client, session, v);
    }
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
        price.saturating_mul(U256::from(self.rows))
    }

    /// What it will owe once `rows` more rows are computed.
    pub fn owed_after(&self, price: U256, rows: u64) -> U256 {
        self.owed(price)
            .saturating_add(price.saturating_mul(U256::from(rows)))
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
    /// The latest voucher for work done.
    best: Option<WireVoucher>,
    /// The voucher of the request being computed (it becomes `best` when the output exists).
    pending: Option<WireVoucher>,
    used: Instant,
}

/// The server's till: its price, what checks and redeems vouchers, every paid session, and
/// the session numbers already used.
pub(crate) struct Till {
    price: U256,
    book: Arc<dyn VoucherBook>,
    ledgers: Mutex<HashMap<(PeerId, u64), Ledger>>,
    closed: Mutex<HashSet<(Address, u64)>>,
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
            closed: Mutex::default(),
        }
    }

    pub(crate) fn account(&self) -> Address {
        self.book.account()
    }

    /// Checks the voucher of a request that will compute `rows` more rows of session `key`:
    /// it must pay everything the session will owe after them, for the outputs before them,
    /// signed by the session's client, whose deposit must cover it. One request at a time per
    /// session. Admitted, the server must call [`Till::record`] or [`Till::release`].
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
        let poisoned = || unpaid("the ledger is poisoned".into());
        // What the session has come to, without holding the lock over the chain's answers.
        let known = {
            let ledgers = self.ledgers.lock().map_err(|_| poisoned())?;
            match ledgers.get(&key) {
                Some(l) if l.client != client => {
                    return Err(unpaid(format!(
                        "the session is paid by {}, not {client}",
                        l.client
                    )));
                }
                Some(l) if l.pending.is_some() => {
                    return Err(unpaid("one request at a time per session".into()));
                }
                Some(l) => Some(l.tab.clone()),
                None => None,
            }
        };
        let tab = match known {
            Some(tab) => tab,
            None => {
                let used = self
                    .closed
                    .lock()
                    .map_err(|_| poisoned())?
                    .contains(&(client, key.1));
                let paid = self.book.paid(client, key.1).map_err(unpaid)?;
                if used || paid > U256::ZERO {
                    return Err(unpaid(format!(
                        "session {} was already used with this server: start a new session",
                        key.1
                    )));
                }
                Tab::default()
            }
        };
        let due = tab.owed_after(self.price, rows);
        if v.amount != due || v.outputs != tab.outputs {
            return Err(unpaid(format!(
                "the voucher pays {} wei for outputs {}; this request needs {due} wei for {}",
                v.amount, v.outputs, tab.outputs
            )));
        }
        if let Err(reason) = self.book.can_pay(client, due) {
            // Whatever it holds for this session is redeemed now, before a withdrawal can
            // take the deposit.
            self.close(key, None);
            return Err(unpaid(reason));
        }
        let mut ledgers = self.ledgers.lock().map_err(|_| poisoned())?;
        let l = ledgers.entry(key).or_insert_with(|| Ledger {
            client,
            tab: Tab::default(),
            best: None,
            pending: None,
            used: Instant::now(),
        });
        if l.pending.is_some() || l.tab != tab {
            return Err(unpaid("one request at a time per session".into()));
        }
        l.pending = Some(v.clone());
        l.used = Instant::now();
        Ok(())
    }

    /// The admitted request of session `key` computed `out` (`rows` rows): its voucher is
    /// now for work done.
    pub(crate) fn record(&self, key: (PeerId, u64), out: &Activations, rows: u64) {
        let mut earned = None;
        if let Ok(mut ledgers) = self.ledgers.lock()
            && let Some(l) = ledgers.get_mut(&key)
        {
            l.tab.add(out, rows);
            if let Some(v) = l.pending.take() {
                earned = Some((l.client, v.clone()));
                l.best = Some(v);
            }
        }
        if let Some((client, v)) = earned {
            self.book.earned(client, key.1, &v);
        }
    }

    /// The admitted request of session `key` computed nothing: its voucher is dropped.
    pub(crate) fn release(&self, key: (PeerId, u64)) {
        if let Ok(mut ledgers) = self.ledgers.lock()
            && let Some(l) = ledgers.get_mut(&key)
        {
            l.pending = None;
        }
    }

    /// Session `key` ended: a last voucher that pays the whole tab and commits to the last
    /// output replaces the best one, which goes to redemption; the session number is spent.
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
        if let Ok(mut closed) = self.closed.lock() {
            closed.insert((l.client, key.1));
        }
        if let Some(best) = l.best.filter(|v| v.amount > U256::ZERO) {
            self.book.settle(l.client, key.1, best);
        }
    }

    /// Settles every session idle for `idle` or longer (its client went away without closing
    /// it), and returns them, so that their caches go too.
    pub(crate) fn settle_idle(&self, idle: Duration) -> Vec<(PeerId, u64)> {
        let stale: Vec<(PeerId, u64)> = self.ledgers.lock().map_or_else(
            |_| Vec::new(),
            |m| {
                m.iter()
                    .filter(|(_, l)| l.pending.is_none() && l.used.elapsed() >= idle)
                    .map(|(k, _)| *k)
                    .collect()
            },
        );
        for key in &stale {
            self.close(*key, None);
        }
        stale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A book whose "signature" is the client's address, with deposits and paid sessions set
    /// by the test, that records what it is asked to settle.
    #[derive(Default)]
    struct Book {
        deposit: U256,
        paid: HashMap<u64, U256>,
        settled: Mutex<Vec<(Address, u64, U256)>>,
    }

    impl VoucherBook for Book {
        fn account(&self) -> Address {
            Address::repeat_byte(0x5e)
        }
        fn signer(&self, _: u64, v: &WireVoucher) -> Option<Address> {
            (v.signature.len() == 20).then(|| Address::from_slice(&v.signature))
        }
        fn paid(&self, _: Address, session: u64) -> Result<U256, String> {
            Ok(self.paid.get(&session).copied().unwrap_or_default())
        }
        fn can_pay(&self, _: Address, owed: U256) -> Result<(), String> {
            (owed <= self.deposit)
                .then_some(())
                .ok_or("deposit too small".into())
        }
        fn settle(&self, client: Address, session: u64, v: WireVoucher) {
            self.settled
                .lock()
                .expect("lock")
                .push((client, session, v.amount));
        }
    }

    const PRICE: u64 = 10;

    fn voucher(client: Address, amount: u64, outputs: B256) -> WireVoucher {
        WireVoucher {
            amount: U256::from(amount),
            outputs,
            signature: client.to_vec().into(),
        }
    }

    fn out(v: i32) -> Activations {
        Activations {
            start: 0,
            rows: vec![v; 4],
        }
    }

    fn code(r: Result<(), Reply>) -> Option<Refusal> {
        match r {
            Ok(()) => None,
            Err(Reply::Refused { code, .. }) => Some(code),
            Err(other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_row_is_paid_before_it_is_computed_and_a_session_number_serves_once() {
        let book = Arc::new(Book {
            deposit: U256::from(1000),
            paid: HashMap::from([(9, U256::from(5))]),
            ..Book::default()
        });
        let till = Till::new(U256::from(PRICE), book.clone());
        let (client, peer) = (Address::repeat_byte(1), PeerId::random());
        let key = (peer, 1);
        // No voucher, a voucher for nothing (free work), one not paying this request: refused.
        assert_eq!(code(till.admit(key, None, 3)), Some(Refusal::Unpaid));
        let nothing = voucher(client, 0, B256::ZERO);
        assert_eq!(
            code(till.admit(key, Some(&nothing), 3)),
            Some(Refusal::Unpaid)
        );
        let short = voucher(client, 20, B256::ZERO);
        assert_eq!(
            code(till.admit(key, Some(&short), 3)),
            Some(Refusal::Unpaid)
        );
        // Prepaid: 3 rows at 10 wei.
        assert_eq!(
            code(till.admit(key, Some(&voucher(client, 30, B256::ZERO)), 3)),
            None
        );
        // One request at a time.
        let again = voucher(client, 30, B256::ZERO);
        assert_eq!(
            code(till.admit(key, Some(&again), 0)),
            Some(Refusal::Unpaid)
        );
        till.record(key, &out(1), 3);
        let head = chain_outputs(B256::ZERO, &out(1));
        // The next must commit to the output received and pay what the session will owe.
        let stale = voucher(client, 40, B256::ZERO);
        assert_eq!(
            code(till.admit(key, Some(&stale), 1)),
            Some(Refusal::Unpaid)
        );
        let other = voucher(Address::repeat_byte(2), 40, head);
        assert_eq!(
            code(till.admit(key, Some(&other), 1)),
            Some(Refusal::Unpaid)
        );
        assert_eq!(
            code(till.admit(key, Some(&voucher(client, 40, head)), 1)),
            None
        );
        // The server failed to compute it: the voucher is dropped, the tab unchanged.
        till.release(key);
        assert_eq!(
            code(till.admit(key, Some(&voucher(client, 40, head)), 1)),
            None
        );
        till.record(key, &out(2), 1);
        let last = chain_outputs(head, &out(2));
        // More than the deposit covers: refused, and what is held is redeemed at once.
        let big = voucher(client, 40 + 200 * 10, last);
        assert_eq!(
            code(till.admit(key, Some(&big), 200)),
            Some(Refusal::Unpaid)
        );
        assert_eq!(
            *book.settled.lock().expect("lock"),
            vec![(client, 1, U256::from(40))]
        );
        // The session number is spent, here and for a session the chain says was paid.
        let reuse = voucher(client, 10, B256::ZERO);
        assert_eq!(
            code(till.admit(key, Some(&reuse), 1)),
            Some(Refusal::Unpaid)
        );
        assert_eq!(
            code(till.admit((peer, 9), Some(&reuse), 1)),
            Some(Refusal::Unpaid)
        );
    }

    #[test]
    fn a_closed_session_settles_its_last_voucher_and_an_idle_one_is_settled() {
        let book = Arc::new(Book {
            deposit: U256::from(1000),
            ..Book::default()
        });
        let till = Till::new(U256::from(PRICE), book.clone());
        let client = Address::repeat_byte(3);
        let (a, b) = ((PeerId::random(), 1), (PeerId::random(), 2));
        for key in [a, b] {
            assert_eq!(
                code(till.admit(key, Some(&voucher(client, 20, B256::ZERO)), 2)),
                None
            );
            till.record(key, &out(7), 2);
        }
        let head = chain_outputs(B256::ZERO, &out(7));
        // Closing with a voucher that commits to the last output (same amount).
        till.close(a, Some(voucher(client, 20, head)));
        // One that pays more than the tab is ignored; the best one held is settled.
        till.close(b, Some(voucher(client, 999, head)));
        assert_eq!(
            *book.settled.lock().expect("lock"),
            vec![(client, 1, U256::from(20)), (client, 2, U256::from(20))]
        );
        let c = (PeerId::random(), 3);
        assert_eq!(
            code(till.admit(c, Some(&voucher(client, 10, B256::ZERO)), 1)),
            None
        );
        assert!(
            till.settle_idle(Duration::ZERO).is_empty(),
            "computing: not idle"
        );
        till.record(c, &out(1), 1);
        assert_eq!(till.settle_idle(Duration::ZERO), vec![c]);
        assert_eq!(book.settled.lock().expect("lock").len(), 3);
    }
}
