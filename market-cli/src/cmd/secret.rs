//! Passwords and keystore locations shared by the commands that sign.

use std::path::{Path, PathBuf};

use alloy::signers::local::PrivateKeySigner;
use eyre::Context;

/// Opens an encrypted keystore with its password (see [`password`]).
pub(crate) fn open_keystore(
    keystore: &Path,
    password_file: Option<&Path>,
) -> eyre::Result<PrivateKeySigner> {
    let password = password(password_file)?;
    PrivateKeySigner::decrypt_keystore(keystore, password).wrap_err_with(|| {
        format!(
            "cannot open the keystore {}: wrong password, or not a keystore file",
            keystore.display()
        )
    })
}

/// The default folder of keystores: the user's data folder, `pedals/keystores`.
pub(crate) fn default_keystore_dir() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("pedals")
        .join("keystores")
}

/// A password: the file (trailing newline dropped), `PEDALS_PASSWORD`, or a prompt on the
/// terminal. Never logged.
pub(crate) fn password(file: Option<&Path>) -> eyre::Result<String> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .wrap_err_with(|| format!("cannot read the password file {}", path.display()))?;
        return Ok(text.trim_end_matches(['\n', '\r']).to_string());
    }
    if let Ok(password) = std::env::var("PEDALS_PASSWORD") {
        return Ok(password);
    }
    rpassword::prompt_password("keystore password: ").wrap_err(
        "no password: pass --password-file, set PEDALS_PASSWORD, or run on a terminal to be asked",
    )
}

/// A new password: as [`password`], but a prompt asks twice.
pub(crate) fn new_password(file: Option<&Path>) -> eyre::Result<String> {
    if file.is_some() || std::env::var_os("PEDALS_PASSWORD").is_some() {
        return password(file);
    }
    let first = password(None)?;
    let again = rpassword::prompt_password("again: ").wrap_err("could not read the password")?;
    eyre::ensure!(first == again, "the passwords differ; nothing was written");
    Ok(first)
}
