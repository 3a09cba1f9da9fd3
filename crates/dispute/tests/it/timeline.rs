//! The web app's view of a dispute (docs/web-app.md): after a whole game on anvil, a worker
//! that falsified a step against an honest validator, the node's index and
//! `pedals_ui::disputes::timeline` give every move in chain order with its side, how the
//! referee decided, and what the market paid; headless Chromium shows the same timeline on the
//! dispute page (when the browser is installed; under CI it must be).

use std::path::Path;

use pedals_ui::{disputes::timeline, index::Index};
use serde_json::json;

use crate::{
    World,
    game::{open, play, validator_side, worker_side},
    job, post_and_run,
};

const MOVES: [(&str, &str); 7] = [
    ("GameStarted", "challenger"),
    ("OpTraceCommitted", "worker"),
    ("OpDisputed", "challenger"),
    ("RowHashesRevealed", "worker"),
    ("RowPicked", "challenger"),
    ("RowRevealed", "worker"),
    ("GameDecided", "referee"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_app_shows_every_move_of_a_dispute() {
    let w = World::start().await;
    let job = job();
    let step = 3;
    let (id, run) = post_and_run(&w, &job, Some(step)).await;
    let (ws, vs) = (
        worker_side(&job, &run, step),
        validator_side(&job, step, false),
    );
    open(&w, id, step, *vs.trace.leaves.last().expect("leaves")).await;
    play(&w, id, &ws, &run, &vs).await;

    let mut index = Index::default();
    index.refresh(&w.requester).await.expect("index");
    let d = index.disputes();
    assert_eq!(d.len(), 1);
    assert_eq!((d[0].job, d[0].step), (id.0, step));
    assert_eq!((d[0].outcome, d[0].by_timeout), ("worker lost", false));
    assert_eq!(d[0].challenger, w.validator.sender());
    let (_, events) = index.job(id.0).expect("job");
    let moves = timeline(&w.requester, id.0, events)
        .await
        .expect("timeline");
    let game: Vec<(&str, &str)> = moves
        .iter()
        .filter(|m| m.side != "market")
        .map(|m| (m.name, m.side))
        .collect();
    assert_eq!(game, MOVES, "{moves:#?}");
    let decided = moves
        .iter()
        .find(|m| m.name == "GameDecided")
        .expect("decided");
    assert!(
        decided
            .detail
            .contains("the worker lost: the contract recomputed"),
        "{decided:?}"
    );
    let at = |name: &str| moves.iter().position(|m| m.name == name).expect(name);
    assert!(at("ChallengeOpened") < at("OpTraceCommitted"));
    assert!(at("DisputeResolved") > at("RowRevealed"));
    assert!(
        moves[at("DisputeResolved")]
            .detail
            .contains("the challenger is credited")
    );
    let blocks: Vec<(u64, u64)> = moves.iter().map(|m| (m.block, m.log)).collect();
    assert!(
        blocks.windows(2).all(|b| b[0] < b[1]),
        "chain order: {blocks:?}"
    );

    // The same in a browser.
    let ui = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ui");
    let chromium = std::env::var("PEDALS_CHROMIUM")
        .unwrap_or_else(|_| "/usr/bin/chromium-headless-shell".into());
    if !Path::new(&chromium).exists() || !ui.join("node_modules/puppeteer-core").exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "the browser check needs {chromium} (scripts/system-deps.sh) and ui/node_modules \
             (scripts/ui.sh)"
        );
        eprintln!("browser check skipped: no {chromium} or ui/node_modules");
        return;
    }
    let (addr, token, _task) = pedals_ui::serve(
        w.requester.clone(),
        Default::default(),
        "127.0.0.1:0".parse().expect("addr"),
        std::future::pending(),
    )
    .await
    .expect("serves");
    let want = json!({
        "jobs": {id.0.to_string(): "convicted"},
        "dispute": {"job": id.0, "moves": MOVES.map(|m| m.0)},
        "validator": {"address": w.validator.sender().to_string(), "job": id.0, "outcome": "worker lost"},
    });
    // Beside the browser test's screenshots, not over them (both have a market page).
    let shots =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/ui-screenshots/dispute-demo");
    let url = format!("http://{addr}/#token={token}");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg(ui.join("test/browser.mjs"))
            .arg(url)
            .arg(shots)
            .arg(want.to_string())
            .output()
            .expect("node runs")
    })
    .await
    .expect("joins");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
