//! Which span a server should serve (docs/split-inference.md, "Choosing a span"): the blocks
//! the fewest other servers cover, and a move when coverage changes so that a block nobody
//! serves is picked up by a server whose blocks others also serve.

use std::{
    ops::Range,
    sync::{Arc, Mutex},
    time::Duration,
};

use pedals_lm::ExactModel;
use pedals_p2p::{Client, PeerId};
use tracing::{info, warn};

use crate::{Directory, InferError, SpanServer, serve::announce};

/// How many servers, other than `me`, cover each block of the directory's model now.
pub fn coverage(dir: &Directory, me: Option<PeerId>) -> Vec<usize> {
    let n = dir.blocks();
    let mut cover = vec![0usize; n];
    for s in dir.live().into_iter().filter(|s| Some(s.peer) != me) {
        for b in s.blocks.clone().filter(|&b| b < n) {
            cover[b] += 1;
        }
    }
    cover
}

/// The `n` consecutive blocks (at least 1, at most all) whose least covered block has the
/// fewest servers; ties go to the fewest servers in all, then to the lowest start.
pub fn least_served(cover: &[usize], n: usize) -> Range<usize> {
    let blocks = cover.len();
    if blocks == 0 {
        return 0..0;
    }
    let n = n.clamp(1, blocks);
    let start = (0..=blocks - n)
        .min_by_key(|&a| {
            let w = &cover[a..a + n];
            (w.iter().copied().min(), w.iter().sum::<usize>(), a)
        })
        .unwrap_or(0);
    start..start + n
}

/// Where a server now serving `current` should move, given `cover` by the other servers: to
/// [`least_served`] blocks of the same length when their least covered block has fewer
/// servers than the current span's would have without it. Every move raises the swarm's
/// least covered block or the number of blocks at that level, so servers that move one at a
/// time settle.
pub fn better_span(cover: &[usize], current: &Range<usize>) -> Option<Range<usize>> {
    if current.is_empty() || current.end > cover.len() {
        return None;
    }
    let target = least_served(cover, current.len());
    let min = |r: &Range<usize>| cover[r.clone()].iter().copied().min();
    (min(&target) < min(current)).then_some(target)
}

/// Reads a span of the served model (its stored bytes, from the node's store).
pub type SpanLoader = Arc<dyn Fn(Range<usize>) -> Result<ExactModel, InferError> + Send + Sync>;

/// Moves `server` (peer `me`) to a better span while the network's coverage calls for it
/// ([`better_span`]), checking at a random time in every `every`: it waits for its sessions
/// to end, or for `patience` checks in a row, before it moves, then announces its new span at
/// once. Runs until the network stops.
pub async fn rebalance(
    net: Client,
    server: Arc<SpanServer>,
    directory: Arc<Mutex<Directory>>,
    load: SpanLoader,
    every: Duration,
    patience: u32,
) {
    let me = net.peer_id();
    let mut wanted = 0u32;
    loop {
        // A random phase keeps servers that see the same gap from all moving to it at once.
        let jitter = rand::random::<f64>() + 0.5;
        tokio::time::sleep(every.mul_f64(jitter)).await;
        let cover = match directory.lock() {
            Ok(d) => coverage(&d, Some(me)),
            Err(_) => return,
        };
        let current = server.span();
        let Some(target) = better_span(&cover, &current) else {
            wanted = 0;
            continue;
        };
        wanted += 1;
        if server.live_sessions() > 0 && wanted < patience {
            continue;
        }
        info!(target: "pedals::infer", from = ?current, to = ?target, ?cover, "moving to blocks fewer servers cover");
        let (s, l, t) = (server.clone(), load.clone(), target.clone());
        let moved =
            tokio::task::spawn_blocking(move || l(t.clone()).and_then(|m| s.move_to(m, t))).await;
        match moved {
            Ok(Ok(())) => {
                wanted = 0;
                if announce(&net, &server).await.is_err() {
                    return;
                }
            }
            Ok(Err(e)) => warn!(target: "pedals::infer", error = %e, "cannot move to another span"),
            Err(e) => warn!(target: "pedals::infer", error = %e, "cannot move to another span"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_served_blocks_are_chosen() {
        assert_eq!(least_served(&[1, 1, 0, 0], 2), 2..4);
        assert_eq!(least_served(&[0, 0, 0, 0], 2), 0..2);
        assert_eq!(least_served(&[2, 0, 1, 1], 2), 1..3);
        assert_eq!(least_served(&[2, 1, 1], 9), 0..3);
        assert_eq!(least_served(&[2, 1, 1], 0), 1..2);
        assert_eq!(least_served(&[], 2), 0..0);
    }

    #[test]
    fn a_redundant_server_moves_to_an_unserved_gap_and_then_stays() {
        // Two servers on 0..2 of 4 blocks: each sees the other covering its blocks.
        assert_eq!(better_span(&[1, 1, 0, 0], &(0..2)), Some(2..4));
        // After one moved: neither wants to move again.
        assert_eq!(better_span(&[0, 0, 1, 1], &(0..2)), None);
        assert_eq!(better_span(&[1, 1, 0, 0], &(2..4)), None);
        // A third server on 0..2 when 0..2 and 2..4 are served once: no gain, no move.
        assert_eq!(better_span(&[1, 1, 1, 1], &(0..2)), None);
        // A server alone: nowhere better.
        assert_eq!(better_span(&[0, 0, 0, 0], &(1..3)), None);
        // Overlaps count: the server of 1..3 beside 0..2 and 2..4 moves to the thinner end.
        assert_eq!(better_span(&[1, 2, 2, 1, 0], &(1..3)), Some(3..5));
        // A span that is not of this model is left alone.
        assert_eq!(better_span(&[0, 0], &(1..3)), None);
    }

    #[test]
    fn servers_that_move_one_at_a_time_cover_every_block() {
        // Eight servers of 2 blocks all start on 0..2 of an 8-block model; each in turn
        // looks at the others and moves if it should. Coverage ends even, and stays.
        let mut spans = vec![0..2usize; 8];
        for _round in 0..4 {
            for i in 0..spans.len() {
                let mut cover = vec![0usize; 8];
                for (_, s) in spans.iter().enumerate().filter(|(j, _)| *j != i) {
                    for b in s.clone() {
                        cover[b] += 1;
                    }
                }
                if let Some(t) = better_span(&cover, &spans[i]) {
                    spans[i] = t;
                }
            }
        }
        let mut cover = vec![0usize; 8];
        for s in &spans {
            for b in s.clone() {
                cover[b] += 1;
            }
        }
        assert_eq!(cover, vec![2; 8], "{spans:?}");
    }
}
