//! The files of a download in progress: `<dest>.part` (the blob, chunks written at their
//! offsets as they are verified) and `<dest>.part.manifest` (the manifest the chunks are
//! checked against, JSON), so that a download stopped halfway resumes from what it has.

use std::{
    fs::{self, File, OpenOptions},
    io::{Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError},
};

use pedals_core::{B256, Cid, cid_from_digest};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::BlobManifest;
use crate::P2pError;

/// The sidecar: the manifest, the blob it is for, and who sent it.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Sidecar {
    cid: String,
    from: Option<String>,
    manifest: BlobManifest,
}

/// The `.part` file of one download and its sidecar.
#[derive(Debug, Clone)]
pub(super) struct Part {
    /// `<dest>.part`.
    pub(super) path: PathBuf,
    sidecar: PathBuf,
    dest: PathBuf,
}

fn io_error(path: &Path, e: impl std::fmt::Display) -> P2pError {
    P2pError::PartFile {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// The sha2-256 of `bytes`.
pub(super) fn sha256(bytes: &[u8]) -> B256 {
    B256::from(<[u8; 32]>::from(Sha256::digest(bytes)))
}

impl Part {
    pub(super) fn new(dest: &Path) -> Self {
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "blob".into());
        Self {
            path: dest.with_file_name(format!("{name}.part")),
            sidecar: dest.with_file_name(format!("{name}.part.manifest")),
            dest: dest.to_path_buf(),
        }
    }

    /// The manifest saved by an earlier run for `cid` in chunks of `chunk_size`, with the
    /// peer that sent it; `None` if there is none, it is for something else, or unreadable.
    pub(super) fn load_manifest(
        &self,
        cid: &Cid,
        chunk_size: u32,
    ) -> Option<(BlobManifest, Option<String>)> {
        let bytes = fs::read(&self.sidecar).ok()?;
        let sidecar: Sidecar = serde_json::from_slice(&bytes).ok()?;
        let fits = sidecar.cid == cid.to_string()
            && sidecar.manifest.chunk_size == chunk_size
            && sidecar.manifest.check(u64::MAX).is_ok();
        fits.then_some((sidecar.manifest, sidecar.from))
    }

    /// Saves the manifest next to the `.part` file.
    pub(super) fn save_manifest(
        &self,
        cid: &Cid,
        manifest: &BlobManifest,
        from: Option<String>,
    ) -> Result<(), P2pError> {
        let sidecar = Sidecar {
            cid: cid.to_string(),
            from,
            manifest: manifest.clone(),
        };
        let json = serde_json::to_vec(&sidecar).map_err(|e| io_error(&self.sidecar, e))?;
        let tmp = self.sidecar.with_extension("manifest.tmp");
        fs::write(&tmp, json).map_err(|e| io_error(&tmp, e))?;
        fs::rename(&tmp, &self.sidecar).map_err(|e| io_error(&self.sidecar, e))
    }

    /// Opens (or creates) the `.part` file at the blob's size; says whether it existed (else
    /// there is nothing in it to verify).
    pub(super) fn open(&self, size: u64) -> Result<(PartFile, bool), P2pError> {
        let existed = self.path.exists();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.path)
            .map_err(|e| io_error(&self.path, e))?;
        let len = file.metadata().map_err(|e| io_error(&self.path, e))?.len();
        if len != size {
            file.set_len(size).map_err(|e| io_error(&self.path, e))?;
        }
        let part = PartFile {
            file: Arc::new(Mutex::new(file)),
            path: self.path.clone(),
        };
        Ok((part, existed))
    }

    /// Removes the `.part` file and its sidecar (a manifest found to lie).
    pub(super) fn discard(&self) {
        let _ = fs::remove_file(&self.path);
        let _ = fs::remove_file(&self.sidecar);
    }

    /// Renames the finished `.part` file to its destination and removes the sidecar.
    pub(super) fn finish(&self) -> Result<(), P2pError> {
        fs::rename(&self.path, &self.dest).map_err(|e| io_error(&self.dest, e))?;
        let _ = fs::remove_file(&self.sidecar);
        Ok(())
    }
}

/// The open `.part` file, shared by the chunk requests in flight.
#[derive(Debug, Clone)]
pub(super) struct PartFile {
    file: Arc<Mutex<File>>,
    path: PathBuf,
}

impl PartFile {
    fn with<T>(&self, f: impl FnOnce(&mut File) -> std::io::Result<T>) -> Result<T, P2pError> {
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut file).map_err(|e| io_error(&self.path, e))
    }

    /// Writes a verified chunk at `offset` (blocking).
    pub(super) fn write_at(&self, offset: u64, bytes: &[u8]) -> Result<(), P2pError> {
        self.with(|f| {
            f.seek(SeekFrom::Start(offset))?;
            f.write_all(bytes)
        })
    }

    /// The chunks already in the file that match the manifest (blocking: reads it all).
    pub(super) fn verified_chunks(&self, manifest: &BlobManifest) -> Result<Vec<bool>, P2pError> {
        let mut buf = vec![0u8; manifest.chunk_size as usize];
        let mut done = Vec::with_capacity(manifest.chunks.len());
        for (index, hash) in manifest.chunks.iter().enumerate() {
            let (offset, len) = manifest.chunk(index);
            let chunk = &mut buf[..len as usize];
            self.with(|f| {
                f.seek(SeekFrom::Start(offset))?;
                f.read_exact(chunk)
            })?;
            done.push(sha256(chunk) == *hash);
        }
        Ok(done)
    }

    /// Flushes the file to disk and checks it against `cid` (blocking: reads it all).
    pub(super) fn matches(&self, cid: &Cid) -> Result<bool, P2pError> {
        self.with(|f| {
            f.sync_all()?;
            f.seek(SeekFrom::Start(0))?;
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
            }
            let digest = B256::from(<[u8; 32]>::from(hasher.finalize()));
            Ok(cid_from_digest(&digest) == *cid)
        })
    }
}
