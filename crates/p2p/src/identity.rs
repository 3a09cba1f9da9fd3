//! The node's libp2p identity, kept in its data folder so that its peer id survives restarts.

use std::{fs, io::Write, path::Path};

use libp2p::identity::Keypair;

use crate::P2pError;

/// Loads the ed25519 identity at `path`, or creates one there (readable by the owner only).
pub fn load_or_create_identity(path: &Path) -> Result<Keypair, P2pError> {
    let err = |what: &str, e: &dyn std::fmt::Display| {
        P2pError::Identity(format!("{what} {}: {e}", path.display()))
    };
    match fs::read(path) {
        Ok(bytes) => Keypair::from_protobuf_encoding(&bytes).map_err(|e| {
            err(
                "cannot decode the node identity (delete it to make a new one)",
                &e,
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let keypair = Keypair::generate_ed25519();
            let bytes = keypair
                .to_protobuf_encoding()
                .map_err(|e| err("cannot encode the node identity for", &e))?;
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir).map_err(|e| err("cannot create the folder of", &e))?;
            }
            let mut options = fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options
                .open(path)
                .map_err(|e| err("cannot create the node identity", &e))?;
            file.write_all(&bytes)
                .and_then(|()| file.sync_all())
                .map_err(|e| err("cannot write the node identity", &e))?;
            Ok(keypair)
        }
        Err(e) => Err(err("cannot read the node identity", &e)),
    }
}
