//! A span server that moves ([`SpanServer::move_to`]): the sessions of its old span end (a
//! request for them is refused, and one for blocks both spans hold must start again from
//! position 0), and the new span, read alone from the stored bytes, computes what the whole
//! model computes through those blocks.

use pedals_core::cid_of;
use pedals_infer::{
    SpanServer,
    wire::{Refusal, Reply},
};
use pedals_lm::{Activations, ExactModel, KvCache};
use pedals_p2p::PeerId;

use crate::{
    bad::{code as refusal, forward_rows as forward},
    swarm::model,
};

#[test]
fn a_moved_server_ends_its_old_sessions_and_computes_its_new_blocks() {
    let m = model();
    let bytes = m.to_bytes().expect("bytes");
    let cid = cid_of(&bytes);
    let s = SpanServer::new(
        ExactModel::span_from_bytes(&bytes, 1..3).expect("span"),
        cid,
        1..3,
        64 << 20,
    )
    .expect("server");
    let peer = PeerId::random();
    let d = m.config.hidden;
    let rows = |start: usize, n: usize| Activations {
        start,
        rows: (0..n * d).map(|i| (i % 89) as i32 - 44).collect(),
    };
    assert!(matches!(
        forward(&s, peer, 1, (1, 3), &rows(0, 3)).0,
        Reply::Output { cached: 3, .. }
    ));
    assert!(matches!(
        forward(&s, peer, 2, (2, 3), &rows(0, 2)).0,
        Reply::Output { cached: 2, .. }
    ));
    assert_eq!(s.live_sessions(), 2);

    s.move_to(
        ExactModel::span_from_bytes(&bytes, 2..4).expect("span"),
        2..4,
    )
    .expect("moves");
    assert_eq!(s.span(), 2..4);
    let a = s.announcement();
    assert_eq!((a.start, a.end, a.blocks), (2, 4, 4));
    assert_eq!(s.live_sessions(), 0, "the old span's sessions ended");
    // Blocks the server no longer runs; blocks both spans hold, whose cache was the old
    // span's: start again from 0.
    assert_eq!(
        refusal(&forward(&s, peer, 1, (1, 3), &rows(3, 1)).0).0,
        Refusal::NotServed
    );
    assert_eq!(
        refusal(&forward(&s, peer, 2, (2, 3), &rows(2, 1)).0),
        (Refusal::Gap, Some(0))
    );
    // The new blocks compute what the whole model computes through them.
    let (reply, out) = forward(&s, peer, 3, (2, 4), &rows(0, 4));
    assert!(
        matches!(reply, Reply::Output { cached: 4, .. }),
        "{reply:?}"
    );
    let mut cache = KvCache::for_blocks(2..4);
    assert_eq!(
        out.expect("rows"),
        m.run_span(&mut cache, &rows(0, 4)).expect("local")
    );

    // Not a span of this model, or another model: refused, and the span stays.
    assert!(s.move_to(m.clone(), 3..5).is_err());
    let mut other = m.clone();
    other.config.layers += 1;
    assert!(s.move_to(other, 0..1).is_err());
    assert_eq!(s.span(), 2..4);
}
