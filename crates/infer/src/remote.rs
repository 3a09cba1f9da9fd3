//! Generation through a chain of span servers: the client keeps the model's embeddings, final
//! norm and head (its blocks are dropped), embeds each token, sends the hidden states through
//! the chain, and samples from the logits exactly as local generation does, so the same
//! prompt and seed give the same tokens as one process.

use std::{
    cell::RefCell,
    sync::{Arc, Mutex},
    time::Duration,
};

use pedals_core::Cid;
use pedals_lm::{ExactModel, GenParams, Generation, Tokenizer, generate_with};
use pedals_p2p::{Client, NetEvent};
use tokio::{runtime::Handle, sync::mpsc};
use tracing::debug;

use crate::{
    InferError,
    chain::{Chain, Session},
    route::{Directory, Hop},
};

/// A model served by the swarm, as a client sees it.
#[derive(Clone)]
pub struct RemoteModel {
    /// The model's CID.
    pub cid: Cid,
    /// The model without its blocks: embeddings, final norm, head, tokenizer, config.
    pub head: Arc<ExactModel>,
    /// Its tokenizer, when it has one.
    pub tokenizer: Option<Arc<Tokenizer>>,
    /// The chain's view of the network.
    pub chain: Chain,
    /// How long a request waits for servers of blocks nobody serves yet.
    pub wait: Duration,
}

impl std::fmt::Debug for RemoteModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteModel")
            .field("cid", &self.cid.to_string())
            .finish_non_exhaustive()
    }
}

/// What a generation through the swarm did besides its tokens.
#[derive(Debug, Clone)]
pub struct RemoteGeneration {
    /// The completion.
    pub generation: Generation,
    /// Prompt tokens.
    pub prompt_tokens: usize,
    /// Servers replaced on the way, with why.
    pub failovers: Vec<(String, String)>,
    /// The chain at the end.
    pub chain: Vec<Hop>,
    /// Answers re-executed by the spot check.
    pub checks: u64,
}

impl RemoteModel {
    /// Keeps what a client needs of `model` and listens for its servers on `net`.
    pub fn new(
        mut model: ExactModel,
        cid: Cid,
        net: Client,
        stale_after: Duration,
        wait: Duration,
    ) -> Result<Self, InferError> {
        let blocks = model.blocks.len();
        model.blocks.clear();
        let tokenizer = model
            .tokenizer
            .as_deref()
            .map(Tokenizer::from_bytes)
            .transpose()?
            .map(Arc::new);
        let hidden = model.config.hidden;
        let directory = Directory::new(cid.to_string(), blocks, stale_after);
        Ok(Self {
            cid,
            head: Arc::new(model),
            tokenizer,
            chain: Chain {
                net,
                directory: Arc::new(Mutex::new(directory)),
                model: cid.to_string(),
                blocks,
                hidden,
                payer: None,
                checker: None,
                answer_timeout: crate::chain::ANSWER_TIMEOUT,
                receipts: None,
                disputer: None,
            },
            wait,
        })
    }

    /// Re-executes `fraction` of the servers' answers with `full`, the whole model, before
    /// using them (docs/split-inference.md, "Verification").
    pub fn with_spot_checks(mut self, full: Arc<ExactModel>, fraction: f64) -> Self {
        self.chain.checker = Some(crate::SpotCheck {
            model: full,
            fraction,
        });
        self
    }

    /// Asks every server for a signed receipt of each answer and checks it (`verifier`), and
    /// takes the receipt of an answer a spot check contradicts to `disputer`
    /// (docs/split-inference.md, "Disputes").
    pub fn with_disputes(
        mut self,
        verifier: Arc<dyn crate::ReceiptVerifier>,
        disputer: Arc<dyn crate::Disputer>,
    ) -> Self {
        self.chain.receipts = Some(verifier);
        self.chain.disputer = Some(disputer);
        self
    }

    /// Pays servers that charge at most `max_wei_per_token` with vouchers `payer` signs.
    pub fn with_payer(
        mut self,
        payer: Arc<dyn crate::VoucherSigner>,
        max_wei_per_token: alloy_primitives::U256,
    ) -> Self {
        self.chain.payer = Some(payer);
        if let Ok(mut d) = self.chain.directory.lock() {
            d.set_price_cap(max_wei_per_token);
        }
        self
    }

    /// Generates after `prompt` on the calling (blocking) thread, driving the network through
    /// `rt`; `on_token` sees the tokens so far and the chain after each one, and returns
    /// `false` to stop.
    pub fn generate(
        &self,
        rt: &Handle,
        prompt: &[u32],
        params: &GenParams,
        mut on_token: impl FnMut(&[u32], &[Hop]) -> bool,
    ) -> Result<RemoteGeneration, InferError> {
        let tok = self.tokenizer.as_deref();
        self.head.check_generation(prompt, params, tok)?;
        let session: Session = rt.block_on(self.chain.session(self.wait))?;
        let session = RefCell::new(session);
        let mut position = 0;
        let head = &self.head;
        let chain = &self.chain;
        let result = generate_with(
            prompt,
            params,
            tok,
            &head.eos_ids(),
            |tokens: &[u32]| -> Result<Vec<i32>, InferError> {
                let input = head.embed_tokens(tokens, position)?;
                let out = rt.block_on(chain.run(&mut session.borrow_mut(), input))?;
                position += tokens.len();
                Ok(head.span_logits(&out, false)?)
            },
            |tokens: &[u32]| on_token(tokens, &session.borrow().chain()),
        );
        let session = session.into_inner();
        let chain_now = session.chain();
        let checks = session.checks;
        let failovers = session
            .failovers
            .iter()
            .map(|(p, r)| (p.to_string(), r.clone()))
            .collect();
        rt.block_on(chain.close(session));
        Ok(RemoteGeneration {
            generation: result?,
            prompt_tokens: prompt.len(),
            failovers,
            chain: chain_now,
            checks,
        })
    }
}

/// Feeds span announcements from the network's events into `directory` until the network
/// stops, dialing each newly heard server at the addresses it announces (a client that heard
/// of it through gossip is not connected to it).
pub async fn follow(
    net: Client,
    mut events: mpsc::Receiver<NetEvent>,
    directory: Arc<Mutex<Directory>>,
) {
    let mut dialed = std::collections::HashSet::new();
    while let Some(event) = events.recv().await {
        let NetEvent::Announced {
            from: Some(peer),
            announcement: pedals_p2p::Announcement::Span(a),
        } = event
        else {
            continue;
        };
        debug!(target: "pedals::infer", %peer, start = a.start, end = a.end, "span server announced");
        if let Ok(mut d) = directory.lock() {
            d.observe(peer, &a);
        }
        if dialed.insert(peer) {
            for addr in a
                .addrs
                .iter()
                .filter_map(|s| s.parse::<pedals_p2p::Multiaddr>().ok())
            {
                let _ = net.dial(addr).await;
            }
        }
    }
}
