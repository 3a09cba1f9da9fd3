//! Chunked downloads over `/pedals/blob-range/1`: many chunks from two providers, a lying
//! provider, a download stopped halfway and resumed from its `.part` file, bad requests.

use std::{
    path::Path,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use pedals_core::{Cid, cid_of};
use pedals_p2p::{
    BlobRange, CheckpointOpening, ContentSource, DownloadOptions, MemorySource, P2pError, Progress,
};

use crate::{bytes, node, tcp_addr, wait_for_peers, within};

const MB: usize = 1 << 20;
const CHUNK: u32 = 256 << 10;

fn test_options() -> DownloadOptions {
    DownloadOptions {
        chunk_size: CHUNK,
        request_timeout: Duration::from_secs(20),
        attempts: 4,
        backoff: Duration::from_millis(20),
        ..DownloadOptions::default()
    }
}

fn part_files(dest: &Path) -> (bool, bool) {
    let name = dest.file_name().expect("name").to_string_lossy();
    (
        dest.with_file_name(format!("{name}.part")).exists(),
        dest.with_file_name(format!("{name}.part.manifest"))
            .exists(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_of_many_chunks_comes_from_two_providers_verified_with_progress() {
    let blob = bytes(24 * MB, 11);
    let (a_source, b_source) = (
        Arc::new(MemorySource::default()),
        Arc::new(MemorySource::default()),
    );
    let cid = a_source.insert_blob(blob.clone());
    b_source.insert_blob(blob.clone());
    let a = node(a_source, &[]).await;
    let hub = tcp_addr(&a.client).await;
    let b = node(b_source, std::slice::from_ref(&hub)).await;
    let fetcher = node(Arc::new(MemorySource::default()), &[hub]).await;
    wait_for_peers(&fetcher.client, 1).await;
    fetcher
        .client
        .dial(tcp_addr(&b.client).await)
        .await
        .expect("dial");
    wait_for_peers(&fetcher.client, 2).await;

    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("blob.bin");
    let seen = Arc::new(Mutex::new(Vec::<Progress>::new()));
    let record = seen.clone();
    let options = DownloadOptions {
        progress: Some(Arc::new(move |p| record.lock().expect("lock").push(p))),
        ..test_options()
    };
    let providers = [a.client.peer_id(), b.client.peer_id()];
    let done = within(
        120,
        fetcher
            .client
            .download_blob_from(&providers, cid, &dest, &options),
    )
    .await
    .expect("downloaded");
    assert!(
        std::fs::read(&dest).expect("read") == blob,
        "the bytes differ"
    );
    assert_eq!(part_files(&dest), (false, false), "no .part file left");
    assert_eq!(
        (done.size, done.resumed, done.fetched),
        (24 << 20, 0, 24 << 20)
    );
    assert_eq!(done.manifest_from, Some(a.client.peer_id()));
    assert_eq!(done.providers.len(), 2, "both providers served chunks");

    let (sa, sb) = (a.client.stats().snapshot(), b.client.stats().snapshot());
    assert_eq!(
        sa.chunks_served + sb.chunks_served,
        96,
        "24 MiB in 256 KiB chunks"
    );
    assert_eq!(sa.bytes_served + sb.bytes_served, blob.len() as u64);
    assert!(sa.chunks_served > 0 && sb.chunks_served > 0);
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.first().map(|p| p.done), Some(0));
    assert_eq!(
        seen.last().map(|p| (p.done, p.total)),
        Some((24 << 20, 24 << 20))
    );
    assert!(
        seen.windows(2).all(|w| w[0].done < w[1].done),
        "progress only grows"
    );

    // Through the DHT too: the providers announce it, the fetcher finds them.
    a.client.provide(cid).await.expect("provide");
    b.client.provide(cid).await.expect("provide");
    let again = dir.path().join("again.bin");
    within(60, async {
        loop {
            match fetcher
                .client
                .download_blob(cid, &again, &test_options())
                .await
            {
                Ok(done) => break done,
                Err(P2pError::NoProviders { .. }) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("download through the DHT: {e}"),
            }
        }
    })
    .await;
    assert!(std::fs::read(&again).expect("read") == blob);
}

/// Serves the right manifest's blob but corrupts every range it is asked for: a provider that
/// lies about chunks. (It cannot even build a manifest: that checks the CID.)
struct CorruptRanges(MemorySource);

impl ContentSource for CorruptRanges {
    fn blob(&self, cid: &Cid) -> Result<Option<Vec<u8>>, String> {
        self.0.blob(cid)
    }

    fn blob_range(&self, cid: &Cid, offset: u64, len: u32) -> Result<Option<BlobRange>, String> {
        Ok(self.0.blob_range(cid, offset, len)?.map(|mut r| {
            if let Some(b) = r.bytes.first_mut() {
                *b ^= 0xff;
            }
            r
        }))
    }

    fn checkpoint(&self, _: u64, _: u64) -> Result<Option<CheckpointOpening>, String> {
        Ok(None)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_chunk_is_refused_and_fetched_from_an_honest_provider() {
    let blob = bytes(4 * MB, 12);
    let liar_source = MemorySource::default();
    let cid = liar_source.insert_blob(blob.clone());
    let honest_source = Arc::new(MemorySource::default());
    honest_source.insert_blob(blob.clone());
    let liar = node(Arc::new(CorruptRanges(liar_source)), &[]).await;
    let honest = node(honest_source, &[]).await;
    let fetcher = node(
        Arc::new(MemorySource::default()),
        &[tcp_addr(&liar.client).await, tcp_addr(&honest.client).await],
    )
    .await;
    wait_for_peers(&fetcher.client, 2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("blob.bin");
    // The liar first: its manifest request fails (its bytes do not lead to the CID), and the
    // chunks it is asked for do not match the honest manifest.
    let providers = [liar.client.peer_id(), honest.client.peer_id()];
    let done = within(
        60,
        fetcher
            .client
            .download_blob_from(&providers, cid, &dest, &test_options()),
    )
    .await
    .expect("the honest provider delivers");
    assert!(std::fs::read(&dest).expect("read") == blob);
    assert_eq!(done.manifest_from, Some(honest.client.peer_id()));
    assert_eq!(done.providers, vec![honest.client.peer_id()]);
    assert!(
        liar.client.stats().snapshot().chunks_served >= 1,
        "the liar was asked"
    );
    assert!(
        fetcher.client.stats().snapshot().bad_content >= 1,
        "its chunk was refused"
    );

    // With only the liar, the download fails and says who failed.
    let err = within(
        60,
        fetcher.client.download_blob_from(
            &[liar.client.peer_id()],
            cid,
            &dir.path().join("x"),
            &test_options(),
        ),
    )
    .await
    .expect_err("nobody honest");
    let text = err.to_string();
    assert!(text.contains(&liar.client.peer_id().to_string()), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_stopped_halfway_resumes_from_its_part_file() {
    let blob = bytes(24 * MB, 13);
    let first_source = Arc::new(MemorySource::default());
    let cid = first_source.insert_blob(blob.clone());
    let first = node(first_source, &[]).await;
    let fetcher = node(
        Arc::new(MemorySource::default()),
        &[tcp_addr(&first.client).await],
    )
    .await;
    wait_for_peers(&fetcher.client, 1).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("blob.bin");

    // Stop the download (drop its future, as Ctrl-C does) once half is verified.
    let (half_tx, half_rx) = tokio::sync::oneshot::channel::<()>();
    let half_tx = Mutex::new(Some(half_tx));
    let options = DownloadOptions {
        progress: Some(Arc::new(move |p: Progress| {
            if p.done * 2 >= p.total
                && let Some(tx) = half_tx.lock().expect("lock").take()
            {
                let _ = tx.send(());
            }
        })),
        ..test_options()
    };
    let providers = [first.client.peer_id()];
    tokio::select! {
        r = fetcher.client.download_blob_from(&providers, cid, &dest, &options) => {
            panic!("finished before it was stopped: {r:?}")
        }
        _ = half_rx => {}
    }
    assert_eq!(
        part_files(&dest),
        (true, true),
        "the .part file and its manifest stay"
    );
    assert!(!dest.exists());
    first.client.shutdown().await;

    // The provider is gone: the chunks cannot be had, and the error says so and what to do.
    let err = within(
        60,
        fetcher
            .client
            .download_blob_from(&providers, cid, &dest, &test_options()),
    )
    .await
    .expect_err("the provider is gone");
    let text = err.to_string();
    assert!(matches!(err, P2pError::ChunkFailed { .. }), "{text}");
    assert!(text.contains(&providers[0].to_string()), "{text}");
    assert!(text.contains("run the command again"), "{text}");

    // Another provider finishes it, serving only what is missing.
    let second_source = Arc::new(MemorySource::default());
    second_source.insert_blob(blob.clone());
    let second = node(second_source, &[]).await;
    fetcher
        .client
        .dial(tcp_addr(&second.client).await)
        .await
        .expect("dial");
    let resumed_at = Arc::new(AtomicU64::new(0));
    let seen = resumed_at.clone();
    let options = DownloadOptions {
        progress: Some(Arc::new(move |p: Progress| {
            seen.store(p.resumed, Ordering::Relaxed);
        })),
        ..test_options()
    };
    let done = within(
        60,
        fetcher
            .client
            .download_blob_from(&[second.client.peer_id()], cid, &dest, &options),
    )
    .await
    .expect("resumed");
    assert!(std::fs::read(&dest).expect("read") == blob);
    assert!(
        done.resumed >= 12 << 20,
        "resumed from {} bytes",
        done.resumed
    );
    assert_eq!(done.resumed, resumed_at.load(Ordering::Relaxed));
    assert_eq!(done.resumed + done.fetched, blob.len() as u64);
    assert_eq!(
        done.manifest_from,
        Some(providers[0]),
        "the manifest came from the sidecar, recorded with its sender"
    );
    let served = second.client.stats().snapshot();
    assert_eq!(
        served.bytes_served, done.fetched,
        "only the missing chunks were served"
    );
    assert_eq!(served.chunks_served, done.fetched / u64::from(CHUNK));
    assert_eq!(part_files(&dest), (false, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_range_requests_are_answered_with_an_error() {
    let source = Arc::new(MemorySource::default());
    let blob = bytes(MB, 14);
    let cid = source.insert_blob(blob.clone());
    let holder = node(source, &[]).await;
    let fetcher = node(
        Arc::new(MemorySource::default()),
        &[tcp_addr(&holder.client).await],
    )
    .await;
    wait_for_peers(&fetcher.client, 1).await;
    let peer = holder.client.peer_id();
    let client = &fetcher.client;

    let err = within(20, client.blob_range(peer, cid, 2 * MB as u64, 10))
        .await
        .expect_err("beyond the end");
    assert!(
        matches!(&err, P2pError::Refused { reason, .. } if reason.contains("beyond")),
        "{err}"
    );
    let err = within(20, client.blob_range(peer, cid, 0, u32::MAX))
        .await
        .expect_err("too long");
    assert!(
        matches!(&err, P2pError::Refused { reason, .. } if reason.contains("at most")),
        "{err}"
    );
    let err = within(20, client.blob_manifest(peer, cid, 1))
        .await
        .expect_err("chunks too small");
    assert!(matches!(err, P2pError::Refused { .. }), "{err}");
    let err = within(20, client.blob_range(peer, cid_of(b"absent"), 0, 10))
        .await
        .expect_err("absent");
    assert!(matches!(err, P2pError::NotFound { .. }), "{err}");

    // The holder is unharmed and serves good requests.
    let range = within(20, client.blob_range(peer, cid, (MB - 5) as u64, 100))
        .await
        .expect("the tail");
    assert_eq!(
        (range.size, range.bytes),
        (MB as u64, blob[MB - 5..].to_vec())
    );
    let manifest = within(20, client.blob_manifest(peer, cid, CHUNK))
        .await
        .expect("manifest");
    assert_eq!(manifest.chunks.len(), 4);
}
