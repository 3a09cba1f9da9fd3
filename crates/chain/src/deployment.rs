//! The deployment file that `contracts/script/Deploy.s.sol` writes and every component reads.

use std::path::Path;

use alloy::primitives::Address;
use serde::{Deserialize, Serialize};

use crate::ChainError;

/// Where the contracts of one network live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// Chain id of the network.
    pub chain_id: u64,
    /// A block at or before the first deployment transaction: where indexers start.
    pub deployment_block: u64,
    /// The account that sent the deployment transactions.
    pub deployer: Address,
    /// Holder of the admin role of both contracts.
    pub admin: Address,
    /// Holder of the market's pauser role.
    pub pauser: Address,
    /// Receiver of protocol fees.
    pub fee_recipient: Address,
    /// The StakeManager contract.
    pub stake_manager: Address,
    /// The GameRouter contract, the market's resolver: it sends each dispute to the game that
    /// admitted the job's spec, and the games' verdicts back to the market.
    pub game_router: Address,
    /// The DisputeGame contract, behind the router: MLP training jobs.
    pub dispute_game: Address,
    /// The LmDisputeGame contract, behind the router: language-model fine-tuning jobs.
    pub lm_dispute_game: Address,
    /// The fine-tuning game's program referee (its `program()`): a LoRA step's program.
    pub lm_program_referee: Address,
    /// The fine-tuning game's full program referee (its `fullProgram()`): a full fine-tune's
    /// step program.
    pub lm_full_program_referee: Address,
    /// The fine-tuning game's element referee (its `elements()`): one element recomputed.
    pub lm_element_referee: Address,
    /// The Referee contract the game recomputes elements with.
    pub referee: Address,
    /// The DataAvailability contract, the market's publisher: where a demanded state is
    /// published and checked (docs/protocol.md §7).
    pub data_availability: Address,
    /// The AuditPool contract, the market's auditor: where validators that re-executed a
    /// finalized job's steps are paid (docs/economics.md).
    pub audit_pool: Address,
    /// The SpanPayments contract: split inference's deposits and vouchers
    /// (docs/split-inference.md, "Payment").
    pub span_payments: Address,
    /// The SpanDisputeGame contract: disputes of span servers' receipts, slashed through the
    /// stake manager, whose only slasher it is (docs/split-inference.md, "Disputes").
    pub span_dispute_game: Address,
    /// The span game's program referee (its `spans()`): a span's forward pass.
    pub lm_span_referee: Address,
    /// The JobMarket contract.
    pub job_market: Address,
}

impl Deployment {
    /// Reads a deployment file.
    pub fn load(path: &Path) -> Result<Self, ChainError> {
        let text = std::fs::read_to_string(path).map_err(|source| ChainError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| ChainError::DeploymentFile {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Writes the deployment file, pretty-printed.
    pub fn save(&self, path: &Path) -> Result<(), ChainError> {
        let text =
            serde_json::to_string_pretty(self).map_err(|source| ChainError::DeploymentFile {
                path: path.to_path_buf(),
                source,
            })?;
        std::fs::write(path, text + "\n").map_err(|source| ChainError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_file_the_deploy_script_writes() {
        let json = r#"{
  "admin": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
  "auditPool": "0xA51c1fc2f0D1a1b8494Ed1FE312d7C3a78Ed91C0",
  "chainId": 31337,
  "dataAvailability": "0x0165878A594ca255338adfa4d48449f69242Eb8F",
  "deployer": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
  "deploymentBlock": 1,
  "disputeGame": "0xDc64a140Aa3E981100a9becA4E685f962f0cF6C9",
  "gameRouter": "0x2279B7A0a67DB372996a5FaB50D91eAA73d2eBe6",
  "lmDisputeGame": "0x8A791620dd6260079BF849Dc5567aDC3F2FdC318",
  "lmElementReferee": "0xB7f8BC63BbcaD18155201308C8f3540b07f84F5e",
  "lmProgramReferee": "0xa513E6E4b8f2a923D98304ec87F64353C4D5C853",
  "lmFullProgramReferee": "0x9A9f2CCfdE556A7E9Ff0848998Aa4a0CFD8863AE",
  "feeRecipient": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
  "jobMarket": "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512",
  "pauser": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
  "referee": "0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9",
  "spanPayments": "0xc6e7DF5E7b4f2A278906862b61205850344D4e7d",
  "spanDisputeGame": "0x59b670e9fA9D0A427751Af201D676719a970857b",
  "lmSpanReferee": "0x322813Fd9A801c5507c9de605d63CEA4f2CE6c44",
  "stakeManager": "0x5FbDB2315678afecb367f032d93F642f64180aa3"
}"#;
        let d: Deployment = serde_json::from_str(json).expect("valid deployment");
        assert_eq!(d.chain_id, 31337);
        assert_eq!(d.deployment_block, 1);
        assert_eq!(
            d.job_market,
            "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
                .parse::<Address>()
                .expect("address")
        );
        let round: Deployment =
            serde_json::from_str(&serde_json::to_string(&d).expect("serialize")).expect("parse");
        assert_eq!(round, d);
    }

    #[test]
    fn a_missing_field_is_an_error_that_names_the_file() {
        let dir = std::env::temp_dir().join(format!("pedals-deployment-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("broken.json");
        std::fs::write(&path, r#"{"chainId": 1}"#).expect("write");
        let err = Deployment::load(&path).expect_err("incomplete file");
        assert!(err.to_string().contains("broken.json"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
