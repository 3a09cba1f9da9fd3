//! Range reads of stored blobs: what a peer downloading a large blob in chunks is served
//! from, without reading (and hashing) the whole file for every chunk.

use std::{
    fs,
    io::{Read, Seek, SeekFrom},
};

use cid::Cid;

use super::{Store, io};
use crate::StoreError;

impl Store {
    /// The size of blob `cid` in bytes, if it is stored (from the blob index).
    pub fn blob_size(&self, cid: &Cid) -> Result<Option<u64>, StoreError> {
        use redb::ReadableDatabase;
        let tx = self.db.begin_read().map_err(StoreError::db)?;
        let index = tx.open_table(super::BLOBS).map_err(StoreError::db)?;
        let size = index
            .get(cid.to_bytes().as_slice())
            .map_err(StoreError::db)?
            .map(|v| v.value());
        Ok(size)
    }

    /// Up to `len` bytes of blob `cid` from `offset` (fewer at its end, none past it) and the
    /// blob's size; `None` if it is not stored. Only the range is read, and it is **not**
    /// checked against the CID: the reader checks it (a chunked download checks every chunk
    /// against the blob's manifest, which the serving node builds from the whole file and
    /// checks against the CID first). A file whose size differs from the index is an error.
    pub fn blob_range(
        &self,
        cid: &Cid,
        offset: u64,
        len: u32,
    ) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        let Some(size) = self.blob_size(cid)? else {
            return Ok(None);
        };
        let path = self.blob_path(cid);
        let mut file = fs::File::open(&path).map_err(io(&path))?;
        let on_disk = file.metadata().map_err(io(&path))?.len();
        if on_disk != size {
            return Err(StoreError::Blob {
                cid: cid.to_string(),
                reason: format!(
                    "the file {} has {on_disk} bytes instead of {size}: delete it and fetch \
                     the blob again",
                    path.display()
                ),
            });
        }
        let start = offset.min(size);
        let take = (size - start).min(u64::from(len));
        file.seek(SeekFrom::Start(start)).map_err(io(&path))?;
        // take ≤ len, a u32.
        let mut bytes = vec![0u8; take as usize];
        file.read_exact(&mut bytes).map_err(io(&path))?;
        Ok(Some((size, bytes)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_read_from_the_file_and_clamped_to_the_blob() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 253) as u8).collect();
        let cid = store.put_blob(&data).expect("put");
        assert_eq!(store.blob_size(&cid).expect("size"), Some(10_000));
        let range = |o, l| store.blob_range(&cid, o, l).expect("range");
        assert_eq!(range(100, 50), Some((10_000, data[100..150].to_vec())));
        assert_eq!(range(9_990, 4096), Some((10_000, data[9_990..].to_vec())));
        assert_eq!(range(20_000, 10), Some((10_000, Vec::new())));
        let absent = pedals_core::cid_of(b"absent");
        assert_eq!(store.blob_range(&absent, 0, 10).expect("absent"), None);
        // A truncated file is reported, not served short.
        fs::write(store.blob_path(&cid), &data[..10]).expect("truncate");
        let err = store.blob_range(&cid, 0, 10).expect_err("damaged");
        assert!(err.to_string().contains("instead of 10000"), "{err}");
    }
}
