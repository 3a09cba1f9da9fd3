//! Live progress of one job, for `pedals job watch` and the demo: a bar on a terminal (steps
//! trained, from the worker's signed progress announcements, then the challenge window), one
//! line per change otherwise, or one JSON object per change with `--json`.

use std::{
    io::{IsTerminal, Write},
    sync::LazyLock,
};

use alloy::primitives::Address;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use pedals_chain::JobStatus;
use pedals_p2p::{Announcement, NetEvent, Network};
use serde_json::{Value, json};

/// Every bar this process draws: log lines are written through it, so a bar is lifted out of
/// the way of a log line and redrawn under it.
static BARS: LazyLock<MultiProgress> = LazyLock::new(MultiProgress::new);

/// The log writer: one formatted event, written to stderr when dropped, above any bar.
#[derive(Debug, Default)]
pub(crate) struct LogWriter(Vec<u8>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            BARS.suspend(|| {
                let _ = std::io::stderr().write_all(&self.0);
            });
        }
    }
}

/// Hears the worker's progress announcements for one job over gossip.
pub(crate) struct ProgressFeed {
    network: Network,
    chain_id: u64,
    market: Address,
    job_id: u64,
    /// The furthest report heard, by worker: (steps done, steps).
    best: Vec<(Address, u64, u64)>,
}

impl ProgressFeed {
    pub(crate) fn new(network: Network, chain_id: u64, market: Address, job_id: u64) -> Self {
        Self {
            network,
            chain_id,
            market,
            job_id,
            best: Vec::new(),
        }
    }

    /// The furthest progress `worker` (the job's worker on-chain) has reported so far. Gossip
    /// has already checked that each report is signed by the account it names; reports for
    /// other jobs, chains or markets, or by anyone but `worker`, are ignored.
    pub(crate) fn poll(&mut self, worker: Address) -> Option<(u64, u64)> {
        // Every queued event: capacity and job announcements are skipped, not a reason to stop.
        while let Ok(event) = self.network.events.try_recv() {
            let NetEvent::Announced {
                announcement: Announcement::Progress(p),
                ..
            } = event
            else {
                continue;
            };
            if p.chain_id != self.chain_id || p.market != self.market || p.job_id != self.job_id {
                continue;
            }
            match self.best.iter_mut().find(|(w, _, _)| *w == p.worker) {
                Some(entry) if entry.1 < p.steps_done => {
                    *entry = (p.worker, p.steps_done, p.steps);
                }
                Some(_) => {}
                None => self.best.push((p.worker, p.steps_done, p.steps)),
            }
        }
        self.best
            .iter()
            .find(|(w, _, _)| *w == worker)
            .map(|&(_, done, steps)| (done, steps))
    }

    /// The node's client (its transfer counters, its addresses).
    pub(crate) fn client(&self) -> &pedals_p2p::Client {
        &self.network.client
    }

    /// Whether any peer is connected (else no report can arrive).
    pub(crate) async fn connected(&self) -> bool {
        self.network
            .client
            .peers()
            .await
            .is_ok_and(|p| !p.is_empty())
    }
}

/// What is known about the job at one moment.
pub(crate) struct Snapshot {
    pub(crate) status: JobStatus,
    pub(crate) worker: Address,
    /// Training progress heard from the worker: (steps done, steps).
    pub(crate) progress: Option<(u64, u64)>,
    /// Seconds left to claim it (while posted).
    pub(crate) claim_left: u64,
    /// The challenge window: (seconds left, its length), while submitted.
    pub(crate) window: Option<(u64, u64)>,
    /// The dispute, while disputed: a sentence and its JSON.
    pub(crate) dispute: Option<(String, Value)>,
    /// Whether progress can be heard at all (the watcher is on the network).
    pub(crate) listening: bool,
}

impl Snapshot {
    /// The job as read from the chain at chain time `now`; no progress or dispute yet.
    pub(crate) fn of(job: &pedals_chain::IJobMarket::Job, now: u64, listening: bool) -> Self {
        let status = JobStatus::try_from(job.status).unwrap_or(JobStatus::None);
        Self {
            status,
            worker: job.worker,
            progress: None,
            claim_left: job.claimDeadline.to::<u64>().saturating_sub(now),
            window: (status == JobStatus::Submitted).then(|| {
                (
                    job.windowEnd.to::<u64>().saturating_sub(now),
                    u64::from(job.challengeWindow),
                )
            }),
            dispute: None,
            listening,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    Bars,
    Lines,
    Json,
}

/// Renders snapshots of one job.
pub(crate) struct JobView {
    id: u64,
    output: Output,
    bar: Option<(String, ProgressBar)>,
    last_key: String,
}

impl JobView {
    /// A view printing JSON lines with `json`, else bars when both stdout and stderr are
    /// terminals, else plain lines.
    pub(crate) fn new(id: u64, json: bool) -> Self {
        let output = if json {
            Output::Json
        } else if std::io::stdout().is_terminal() && std::io::stderr().is_terminal() {
            Output::Bars
        } else {
            Output::Lines
        };
        Self {
            id,
            output,
            bar: None,
            last_key: String::new(),
        }
    }

    /// Whether it draws bars (a terminal, no `--json`).
    pub(crate) fn draws_bars(&self) -> bool {
        self.output == Output::Bars
    }

    /// Shows `s`: on a terminal it moves the bar; otherwise it prints a line or a JSON object
    /// when something worth a line changed (a state, a tenth of the steps, ten seconds of the
    /// window).
    pub(crate) fn show(&mut self, s: &Snapshot) {
        let id = self.id;
        let mut event = json!({ "jobId": id, "status": s.status.to_string() });
        let (key, line) = match s.status {
            JobStatus::Posted => (
                "posted".to_string(),
                format!(
                    "posted; waiting for a worker to claim it ({} s left)",
                    s.claim_left
                ),
            ),
            JobStatus::Claimed => match s.progress {
                Some((done, steps)) => (
                    format!("training {}", done * 10 / steps.max(1)),
                    format!("training: {done}/{steps} steps (worker {})", s.worker),
                ),
                None => (
                    "claimed".to_string(),
                    if s.listening {
                        format!("claimed by {}; training", s.worker)
                    } else {
                        format!(
                            "claimed by {}; training (pass --bootstrap to see its progress)",
                            s.worker
                        )
                    },
                ),
            },
            JobStatus::Submitted => {
                let (left, _) = s.window.unwrap_or_default();
                event["windowEndsIn"] = json!(left);
                (
                    format!("submitted {}", left / 10),
                    format!("submitted; challenge window ends in {left} s"),
                )
            }
            JobStatus::Disputed => {
                let (text, value) = s.dispute.clone().unwrap_or_default();
                event["dispute"] = value;
                (text.clone(), format!("disputed: {text}"))
            }
            other => (other.to_string(), other.to_string()),
        };
        if let Some((done, steps)) = s.progress {
            event["progress"] = json!({ "stepsDone": done, "steps": steps });
        }
        match self.output {
            Output::Json | Output::Lines => {
                if key != self.last_key {
                    if self.output == Output::Json {
                        println!("{event}");
                    } else {
                        println!("job {id}: {line}");
                    }
                    self.last_key = key;
                }
            }
            Output::Bars => self.draw(s, &line),
        }
    }

    fn draw(&mut self, s: &Snapshot, line: &str) {
        // One bar per stage; a new stage closes the last bar with its final line.
        let (stage, length, position) = match (s.status, s.progress, s.window) {
            (JobStatus::Claimed, Some((done, steps)), _) => ("train", Some(steps), done),
            (JobStatus::Submitted, _, Some((left, window))) => {
                ("window", Some(window), window.saturating_sub(left))
            }
            (status, _, _) => (status_stage(status), None, 0),
        };
        if self.bar.as_ref().is_none_or(|(name, _)| name != stage) {
            self.close();
            let bar = match length {
                Some(len) => {
                    let unit = if stage == "train" { "steps" } else { "s" };
                    let prefix = if stage == "train" {
                        "training"
                    } else {
                        "challenge window"
                    };
                    let bar = BARS.add(ProgressBar::new(len));
                    bar.set_style(
                        ProgressStyle::with_template(&format!(
                            "job {{prefix}} [{{bar:32.cyan/blue}}] {{pos}}/{{len}} {unit}  {{elapsed_precise}}"
                        ))
                        .expect("a valid template")
                        .progress_chars("=> "),
                    );
                    bar.set_prefix(format!("{}: {prefix}", self.id));
                    bar
                }
                None => {
                    let bar = BARS.add(ProgressBar::new_spinner());
                    bar.set_style(
                        ProgressStyle::with_template("{spinner} job {msg}")
                            .expect("a valid template"),
                    );
                    bar.enable_steady_tick(std::time::Duration::from_millis(120));
                    bar
                }
            };
            self.bar = Some((stage.to_string(), bar));
        }
        if let Some((_, bar)) = &self.bar {
            if length.is_some() {
                bar.set_position(position);
            } else {
                bar.set_message(format!("{}: {line}", self.id));
            }
        }
    }

    fn close(&mut self) {
        if let Some((_, bar)) = self.bar.take() {
            bar.finish();
            BARS.remove(&bar);
        }
    }

    /// Ends the view with the job's final state.
    pub(crate) fn finish(&mut self, s: &Snapshot) {
        if self.output == Output::Bars {
            self.close();
            println!("job {}: {}", self.id, s.status);
        } else {
            self.show(s);
        }
    }
}

fn status_stage(status: JobStatus) -> &'static str {
    match status {
        JobStatus::Posted => "posted",
        JobStatus::Claimed => "claimed",
        JobStatus::Submitted => "submitted",
        JobStatus::Disputed => "disputed",
        _ => "done",
    }
}

/// A bar for a download, drawn with the others (log lines go above it): bytes done of the
/// total, rate and time left. Its length is set once the total is known.
pub(crate) fn transfer_bar(what: &str) -> ProgressBar {
    let bar = BARS.add(ProgressBar::new(0));
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:32.cyan/blue}] {bytes}/{total_bytes}  {binary_bytes_per_sec}  eta {eta}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(what.to_string());
    bar
}

/// Ends a bar from [`transfer_bar`], leaving its last state on screen.
pub(crate) fn close_bar(bar: &ProgressBar) {
    bar.finish();
    BARS.remove(bar);
}
