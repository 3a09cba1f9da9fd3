//! Where the pinned Foundry toolchain and the contracts live on this machine.

use std::path::{Path, PathBuf};

use crate::ChainError;

/// The contracts folder and the Foundry binaries that `npm ci` installed inside it.
#[derive(Debug, Clone)]
pub struct Toolchain {
    contracts_dir: PathBuf,
}

impl Toolchain {
    /// The contracts folder named by `PEDALS_CONTRACTS_DIR`, else this source tree's `contracts/`.
    pub fn locate() -> Result<Self, ChainError> {
        let dir = std::env::var_os("PEDALS_CONTRACTS_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contracts"));
        Self::at(dir)
    }

    /// The toolchain of the contracts folder `dir`.
    pub fn at(dir: impl Into<PathBuf>) -> Result<Self, ChainError> {
        let dir = dir.into();
        if !dir.join("foundry.toml").is_file() {
            return Err(ChainError::ContractsDirMissing(dir));
        }
        let contracts_dir = dir.canonicalize().map_err(|source| ChainError::Io {
            path: dir.clone(),
            source,
        })?;
        Ok(Self { contracts_dir })
    }

    /// The Foundry project folder.
    pub fn contracts_dir(&self) -> &Path {
        &self.contracts_dir
    }

    /// Path of the native `tool` binary (`forge`, `anvil` or `cast`) that the npm package
    /// `@foundry-rs/<tool>` installed for this platform. The native binary is used rather than
    /// the package's node launcher so that stopping the process stops the tool itself.
    pub fn binary(&self, tool: &str) -> Result<PathBuf, ChainError> {
        let os = match std::env::consts::OS {
            "macos" => "darwin",
            other => other,
        };
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        let path = self
            .contracts_dir
            .join("node_modules/@foundry-rs")
            .join(format!("{tool}-{os}-{arch}"))
            .join("bin")
            .join(tool);
        if path.is_file() {
            Ok(path)
        } else {
            Err(ChainError::ToolMissing {
                tool: tool.to_owned(),
                path,
            })
        }
    }
}
