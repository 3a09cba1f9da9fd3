//! Groth16 over BN254: keys per shape, proofs per statement, and their bytes.

use std::sync::OnceLock;

use ark_bn254::Bn254;
use ark_ff::{PrimeField, UniformRand};
use ark_groth16::Groth16;
use ark_relations::gr1cs::{
    ConstraintSynthesizer, ConstraintSystem, Matrix, OptimizationGoal, R1CS_PREDICATE_LABEL,
    SynthesisError, SynthesisMode,
};
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize};
use ark_snark::SNARK;
use pedals_ml::exact::Mat;

use crate::{
    Fr, ZkError,
    circuit::{InferenceCircuit, Witness},
    commit::{Commitments, Shape, ZkModel, commit_inputs, commit_outputs, forward},
};

/// A shape's proving and verifying keys.
#[derive(Debug, Clone)]
pub struct Keys {
    /// The shape they prove.
    pub shape: Shape,
    /// The proving key (the worker's).
    pub proving: ark_groth16::ProvingKey<Bn254>,
    /// The verifying key (the verifier contract's constants).
    pub verifying: ark_groth16::VerifyingKey<Bn254>,
    /// The shape's constraint matrices, built on the first proof and reused, so that each
    /// proof only computes its witness.
    r1cs: OnceLock<R1cs>,
}

impl PartialEq for Keys {
    fn eq(&self, other: &Self) -> bool {
        self.shape == other.shape
            && self.proving == other.proving
            && self.verifying == other.verifying
    }
}

/// The constraint matrices A, B, C of a shape and their dimensions.
#[derive(Debug, Clone)]
struct R1cs {
    matrices: Vec<Matrix<Fr>>,
    num_inputs: usize,
    num_constraints: usize,
}

impl R1cs {
    /// Synthesizes `shape` as the Groth16 setup does (same optimization goal, same inlining),
    /// so the matrices are the ones the keys were made for.
    fn of(shape: &Shape) -> Result<Self, ZkError> {
        let cs = ConstraintSystem::<Fr>::new_ref();
        cs.set_optimization_goal(OptimizationGoal::Constraints);
        cs.set_mode(SynthesisMode::Setup);
        InferenceCircuit::shape_only(shape.clone()).generate_constraints(cs.clone())?;
        cs.finalize();
        let matrices = cs
            .to_matrices()?
            .remove(R1CS_PREDICATE_LABEL)
            .ok_or(SynthesisError::Unsatisfiable)?;
        Ok(Self {
            matrices,
            num_inputs: cs.num_instance_variables(),
            num_constraints: cs.num_constraints(),
        })
    }
}

impl Keys {
    /// The keys' bytes: the shape, then both keys, compressed (CanonicalSerialize). Stored and
    /// fetched by the CID of these bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ZkError> {
        let mut out = Vec::new();
        let layers: Vec<u64> = self.shape.layers.iter().map(|&n| n as u64).collect();
        layers.serialize_compressed(&mut out)?;
        (self.shape.batch as u64).serialize_compressed(&mut out)?;
        self.proving.serialize_compressed(&mut out)?;
        Ok(out)
    }

    /// Reads [`Keys::to_bytes`], checking every point.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ZkError> {
        let mut r = bytes;
        let layers = Vec::<u64>::deserialize_compressed(&mut r)?;
        let batch = u64::deserialize_compressed(&mut r)?;
        let proving = ark_groth16::ProvingKey::<Bn254>::deserialize_compressed(&mut r)?;
        let shape = Shape {
            layers: layers.into_iter().map(|n| n as usize).collect(),
            batch: batch as usize,
        };
        shape.validate()?;
        Ok(Self {
            shape,
            verifying: proving.vk.clone(),
            proving,
            r1cs: OnceLock::new(),
        })
    }
}

/// A proof: the points A, B, C.
pub type Proof = ark_groth16::Proof<Bn254>;

/// What a proof is bound to: the chain, the market and the job it is submitted for, and the
/// account that alone can submit it. A proof for one job is worthless for any other job,
/// market or chain, even with the same commitments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    /// The chain id (`block.chainid`).
    pub chain_id: u64,
    /// The job market's address.
    pub market: [u8; 20],
    /// The job's id in that market.
    pub job_id: u64,
    /// The account that submits the proof.
    pub worker: [u8; 20],
}

impl Binding {
    /// The public input: the top 248 bits of
    /// `keccak256(abi.encode(chainId, market, jobId, worker))`, as the market computes it.
    pub fn input(&self) -> Fr {
        let mut words = [0u8; 128];
        words[24..32].copy_from_slice(&self.chain_id.to_be_bytes());
        words[44..64].copy_from_slice(&self.market);
        words[88..96].copy_from_slice(&self.job_id.to_be_bytes());
        words[108..128].copy_from_slice(&self.worker);
        let h = alloy_primitives::keccak256(words);
        Fr::from_be_bytes_mod_order(&h[..31])
    }
}

/// What a proof is about: the commitments and what it is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Statement {
    /// `c_w`, `c_x`, `c_out`.
    pub commitments: Commitments,
    /// The chain, market, job and account the proof is bound to.
    pub binding: Binding,
}

impl Statement {
    /// The public inputs, in the circuit's order: `c_job`, `c_out`, the binding.
    pub fn public_inputs(&self) -> [Fr; 3] {
        [
            self.commitments.job(),
            self.commitments.outputs,
            self.binding.input(),
        ]
    }
}

/// Makes keys for `shape` with randomness from the OS. Whoever runs it could forge proofs for
/// these keys: a single-party setup, for a devnet (docs/zk.md).
pub fn setup(shape: Shape) -> Result<Keys, ZkError> {
    setup_with(shape, &mut rand::rngs::OsRng)
}

/// Makes keys for `shape` from a public seed: the same seed gives the same keys, so a devnet's
/// verifier contract can be committed and regenerated. Anyone who knows the seed can forge
/// proofs for these keys: never use them where value is at stake.
pub fn setup_seeded(shape: Shape, seed: [u8; 32]) -> Result<Keys, ZkError> {
    use rand::SeedableRng;
    setup_with(shape, &mut rand::rngs::StdRng::from_seed(seed))
}

fn setup_with<R: rand::RngCore + rand::CryptoRng>(
    shape: Shape,
    rng: &mut R,
) -> Result<Keys, ZkError> {
    shape.validate()?;
    let (proving, verifying) =
        Groth16::<Bn254>::circuit_specific_setup(InferenceCircuit::shape_only(shape.clone()), rng)?;
    Ok(Keys {
        shape,
        proving,
        verifying,
        r1cs: OnceLock::new(),
    })
}

/// Runs `model` on `inputs` and proves it, bound to `binding` (the chain, market, job and
/// worker): the logits, the statement and the proof.
pub fn prove(
    keys: &Keys,
    model: &ZkModel,
    inputs: &Mat,
    binding: Binding,
) -> Result<(Mat, Statement, Proof), ZkError> {
    if model.layers != keys.shape.layers || inputs.rows != keys.shape.batch {
        return Err(ZkError::Shape(format!(
            "the keys prove {:?} at batch {}, not {:?} at batch {}",
            keys.shape.layers, keys.shape.batch, model.layers, inputs.rows
        )));
    }
    let fwd = forward(model, inputs)?;
    let statement = Statement {
        commitments: Commitments {
            weights: model.commitment(),
            inputs: commit_inputs(inputs)?,
            outputs: commit_outputs(&fwd.logits)?,
        },
        binding,
    };
    let logits = fwd.logits.clone();
    let circuit = InferenceCircuit {
        shape: keys.shape.clone(),
        public: Some(statement.public_inputs()),
        witness: Some(Witness {
            model: model.clone(),
            inputs: inputs.data.iter().map(|&v| i64::from(v)).collect(),
            forward: fwd,
        }),
    };
    let r1cs = match keys.r1cs.get() {
        Some(r1cs) => r1cs,
        None => {
            let built = R1cs::of(&keys.shape)?;
            keys.r1cs.get_or_init(|| built)
        }
    };
    // The witness alone: no constraint is built, no linear combination inlined.
    let cs = ConstraintSystem::<Fr>::new_ref();
    cs.set_optimization_goal(OptimizationGoal::Constraints);
    cs.set_mode(SynthesisMode::Prove {
        construct_matrices: false,
        generate_lc_assignments: false,
    });
    circuit.generate_constraints(cs.clone())?;
    let assignment = {
        let inner = cs.borrow().ok_or(SynthesisError::MissingCS)?;
        let mut full = inner.instance_assignment()?.to_vec();
        full.extend_from_slice(inner.witness_assignment()?);
        full
    };
    let mut rng = rand::rngs::OsRng;
    let proof = Groth16::<Bn254>::create_proof_with_reduction_and_matrices(
        &keys.proving,
        Fr::rand(&mut rng),
        Fr::rand(&mut rng),
        &r1cs.matrices,
        r1cs.num_inputs,
        r1cs.num_constraints,
        &assignment,
    )?;
    Ok((logits, statement, proof))
}

/// Whether `proof` proves `statement` under `verifying`.
pub fn verify(
    verifying: &ark_groth16::VerifyingKey<Bn254>,
    statement: &Statement,
    proof: &Proof,
) -> Result<bool, ZkError> {
    Ok(Groth16::<Bn254>::verify(
        verifying,
        &statement.public_inputs(),
        proof,
    )?)
}
