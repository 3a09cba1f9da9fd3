//! A daemon's own page: `/api/me` says what it is, only a provider's daemon pauses and
//! resumes, and only the page with the token, from its own origin, can do it; only a web
//! address is linked as the block explorer.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use alloy::{primitives::Address, signers::local::PrivateKeySigner};
use pedals_chain::{Devnet, DevnetConfig, Market};
use pedals_ui::{Operator, Options, Role};
use serde_json::json;

use crate::api::request_with;

async fn serve(market: &Market, operator: Option<Operator>) -> (u16, String) {
    let (addr, token, _task) = pedals_ui::serve(
        market.clone(),
        Options {
            operator,
            ..Options::default()
        },
        "127.0.0.1:0".parse().expect("addr"),
        std::future::pending(),
    )
    .await
    .expect("serves");
    (addr.port(), token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_providers_own_page_pauses_and_resumes_it() {
    let devnet = Devnet::start(DevnetConfig::default())
        .await
        .expect("devnet");
    let market = Market::connect(
        devnet.endpoint(),
        PrivateKeySigner::random(),
        devnet.deployment().clone(),
    )
    .await
    .expect("market");
    let call = |port: u16, token: &str, method: &str, path: &str, origin: Option<&str>| {
        let mut headers = vec![("Authorization", format!("Bearer {token}"))];
        if let Some(o) = origin {
            headers.push(("Origin", o.to_owned()));
        }
        let (status, _, body) = request_with(port, method, path, &headers, &[]);
        (status, body)
    };

    // `pedals ui`: no daemon behind it.
    let (port, token) = serve(&market, None).await;
    assert_eq!(call(port, &token, "GET", "/api/me", None).0, 404);

    // A provider's daemon.
    let switch = Arc::new(AtomicBool::new(false));
    let who = Address::repeat_byte(5);
    let (port, token) = serve(
        &market,
        Some(Operator {
            role: Role::Provider,
            address: who,
            policy: json!({"maxActiveJobs": 1}),
            stats: Arc::new(|| json!({"stepsTrained": 42})),
            paused: Some(switch.clone()),
        }),
    )
    .await;
    let own = format!("http://127.0.0.1:{port}");
    let (status, me) = call(port, &token, "GET", "/api/me", None);
    assert_eq!(status, 200);
    assert_eq!(me["role"], "provider");
    assert_eq!(me["paused"], false);
    assert_eq!(me["stats"]["stepsTrained"], 42);
    assert_eq!(
        me["address"].as_str().and_then(|a| a.parse().ok()),
        Some(who)
    );
    // Not without the token, not from another page.
    assert_eq!(call(port, "0", "POST", "/api/me/pause", Some(&own)).0, 401);
    let (status, _) = call(
        port,
        &token,
        "POST",
        "/api/me/pause",
        Some("http://evil.example"),
    );
    assert_eq!(status, 403);
    assert!(
        !switch.load(Ordering::Relaxed),
        "a refused request changed nothing"
    );
    let (status, body) = call(port, &token, "POST", "/api/me/pause", Some(&own));
    assert_eq!((status, body["paused"].as_bool()), (200, Some(true)));
    assert!(switch.load(Ordering::Relaxed));
    assert_eq!(call(port, &token, "GET", "/api/me", None).1["paused"], true);
    assert_eq!(
        call(port, &token, "POST", "/api/me/resume", Some(&own)).0,
        200
    );
    assert!(!switch.load(Ordering::Relaxed));

    // A validator's daemon has nothing to pause.
    let (port, token) = serve(
        &market,
        Some(Operator {
            role: Role::Validator,
            address: who,
            policy: json!({"samplesPerJob": 8}),
            stats: Arc::new(|| json!({"jobsChecked": 3})),
            paused: None,
        }),
    )
    .await;
    let own = format!("http://127.0.0.1:{port}");
    let (status, me) = call(port, &token, "GET", "/api/me", None);
    assert_eq!((status, me["role"].as_str()), (200, Some("validator")));
    assert_eq!(me["paused"], serde_json::Value::Null);
    assert_eq!(
        call(port, &token, "POST", "/api/me/pause", Some(&own)).0,
        409
    );

    // Explorer links: only a web address reaches the page; the devnet has none of its own.
    for (given, shown) in [
        (None, serde_json::Value::Null),
        (Some("javascript:alert(1)"), serde_json::Value::Null),
        (
            Some("https://explorer.example/"),
            json!("https://explorer.example"),
        ),
    ] {
        let (addr, token, _task) = pedals_ui::serve(
            market.clone(),
            Options {
                explorer: given.map(str::to_owned),
                ..Options::default()
            },
            "127.0.0.1:0".parse().expect("addr"),
            std::future::pending(),
        )
        .await
        .expect("serves");
        let (status, body) = call(addr.port(), &token, "GET", "/api/market", None);
        assert_eq!(status, 200);
        assert_eq!(body["explorer"], shown, "{given:?}");
    }
    assert_eq!(
        pedals_ui::explorer_for(84_532),
        Some("https://sepolia.basescan.org")
    );
    assert_eq!(pedals_ui::explorer_for(31_337), None);
}
