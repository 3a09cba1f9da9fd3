//! The R1CS of exact-mode MLP inference (docs/zk.md, "The circuit").
//!
//! Public inputs, in this order: `c_job = H(4, c_w, c_x)`, `c_out`, the binding (the top 248
//! bits of the keccak of the chain id, market, job id and worker, `Binding`). Private: the
//! forward weights, the biases, the input batch, `c_w`, `c_x` and every intermediate value. Per weight, bias, input and
//! output value: one boolean constraint per bit, which is what makes the packed Poseidon
//! commitments binding. Per product: one constraint. Per neuron: a requantization in
//! 12 + 12 + K bits and 2 constraints, and a ReLU in 1.

use ark_crypto_primitives::sponge::{
    constraints::CryptographicSpongeVar, poseidon::constraints::PoseidonSpongeVar,
};
use ark_ff::{AdditiveGroup, Field};
use ark_r1cs_std::{
    eq::EqGadget,
    fields::fp::{AllocatedFp, FpVar},
};
use ark_relations::gr1cs::{
    ConstraintSynthesizer, ConstraintSystemRef, LinearCombination, SynthesisError, Variable,
};

use crate::{
    Fr,
    commit::{
        A_BITS, A_OFFSET, B_BITS, B_OFFSET, Forward, Shape, TAG_JOB, TAG_OUT, TAG_X, W_BITS,
        W_OFFSET, ZkModel, bits_of, field, per_element, poseidon_config, weights_header,
    },
};

type Lc = LinearCombination<Fr>;

/// What the prover knows: the model, the input batch, the forward pass, and the account the
/// proof is bound to.
#[derive(Debug, Clone)]
pub(crate) struct Witness {
    pub(crate) model: ZkModel,
    pub(crate) inputs: Vec<i64>,
    pub(crate) forward: Forward,
}

/// The statement "the model committed in `c_w`, run on the batch committed in `c_x`, gives the
/// logits committed in `c_out`", bound to the chain, market, job and worker (`Binding`).
/// Without a witness it only fixes the shape (for the setup).
#[derive(Debug, Clone)]
pub struct InferenceCircuit {
    pub(crate) shape: Shape,
    pub(crate) public: Option<[Fr; 3]>,
    pub(crate) witness: Option<Witness>,
}

impl InferenceCircuit {
    /// The shape alone, for the key setup.
    pub fn shape_only(shape: Shape) -> Self {
        Self {
            shape,
            public: None,
            witness: None,
        }
    }
}

/// Builds the constraints; `value` reads a witness value when there is one.
struct Builder<'a> {
    cs: ConstraintSystemRef<Fr>,
    witness: Option<&'a Witness>,
}

impl Builder<'_> {
    fn var(&self, value: Option<Fr>) -> Result<Variable, SynthesisError> {
        self.cs
            .new_witness_variable(|| value.ok_or(SynthesisError::AssignmentMissing))
    }

    /// `k` boolean witness bits of `value`, little-endian; returns them and `Σ 2^i b_i`.
    fn uint(&self, value: Option<u64>, k: u32) -> Result<(Vec<Variable>, Lc), SynthesisError> {
        let bits = value.map(|v| bits_of(v, k));
        let mut vars = Vec::with_capacity(k as usize);
        let mut lc = Lc::new();
        let mut scale = Fr::ONE;
        for i in 0..k as usize {
            let b = self.var(bits.as_ref().map(|b| Fr::from(b[i])))?;
            self.cs.enforce_r1cs_constraint(
                || Lc::from(b),
                || Lc::from(Variable::One) - b,
                Lc::new,
            )?;
            lc += (scale, b);
            scale.double_in_place();
            vars.push(b);
        }
        Ok((vars, lc))
    }

    /// Values stored as `v + offset` in `bits` bits: their boolean-checked unsigned LCs, and
    /// the field elements packing them (as the native commitment packs them).
    fn packed(
        &self,
        values: Option<Vec<i64>>,
        count: usize,
        offset: i64,
        bits: u32,
    ) -> Result<(Vec<Lc>, Vec<FpVar<Fr>>), SynthesisError> {
        let mut uints = Vec::with_capacity(count);
        for i in 0..count {
            let v = values.as_ref().map(|v| (v[i] + offset) as u64);
            uints.push(self.uint(v, bits)?.1);
        }
        let elements = self.pack(&uints, values.as_deref(), offset, bits)?;
        Ok((uints, elements))
    }

    /// Field elements packing `uints` (each `bits` wide), `per_element(bits)` to an element.
    fn pack(
        &self,
        uints: &[Lc],
        values: Option<&[i64]>,
        offset: i64,
        bits: u32,
    ) -> Result<Vec<FpVar<Fr>>, SynthesisError> {
        let per = per_element(bits);
        let step = Fr::from(2u64).pow([u64::from(bits)]);
        let mut out = Vec::with_capacity(uints.len().div_ceil(per));
        for (c, chunk) in uints.chunks(per).enumerate() {
            let mut lc = Lc::new();
            let mut scale = Fr::ONE;
            let mut value = Fr::ZERO;
            for (i, u) in chunk.iter().enumerate() {
                lc = lc + &(u * scale);
                if let Some(v) = values {
                    value += scale * Fr::from((v[c * per + i] + offset) as u64);
                }
                scale *= step;
            }
            let var = self.cs.new_lc(|| lc)?;
            out.push(FpVar::Var(AllocatedFp::new(
                values.map(|_| value),
                var,
                self.cs.clone(),
            )));
        }
        Ok(out)
    }

    /// `Poseidon(header ‖ body)`.
    fn commitment(&self, header: &[u64], body: &[FpVar<Fr>]) -> Result<FpVar<Fr>, SynthesisError> {
        let mut sponge = PoseidonSpongeVar::new(self.cs.clone(), poseidon_config());
        let header: Vec<FpVar<Fr>> = header
            .iter()
            .map(|&h| FpVar::Constant(Fr::from(h)))
            .collect();
        sponge.absorb(&header)?;
        sponge.absorb(&body.to_vec())?;
        let mut out = sponge.squeeze_field_elements(1)?;
        out.pop().ok_or(SynthesisError::Unsatisfiable)
    }
}

fn offset_lc(uint: &Lc, offset: i64) -> Lc {
    uint.clone() - (field(offset), Variable::One)
}

impl ConstraintSynthesizer<Fr> for InferenceCircuit {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> Result<(), SynthesisError> {
        let shape = &self.shape;
        let depth = shape.layers.len() - 1;
        let batch = shape.batch;
        let b = Builder {
            cs: cs.clone(),
            witness: self.witness.as_ref(),
        };
        let w = b.witness;
        // Public inputs first, in the verifier's order.
        let mut public = Vec::with_capacity(3);
        for i in 0..3 {
            let value = self.public.map(|p| p[i]);
            let var = cs.new_input_variable(|| value.ok_or(SynthesisError::AssignmentMissing))?;
            public.push(FpVar::Var(AllocatedFp::new(value, var, cs.clone())));
        }
        let [c_job, c_out, binding] =
            <[FpVar<Fr>; 3]>::try_from(public).map_err(|_| SynthesisError::Unsatisfiable)?;

        // The model: forward weights and biases, range-checked, packed and committed.
        let mut weights: Vec<Vec<Lc>> = Vec::with_capacity(depth);
        let mut biases: Vec<Vec<Lc>> = Vec::with_capacity(depth);
        let mut body = Vec::new();
        for l in 0..depth {
            let (n_in, n_out) = (shape.layers[l], shape.layers[l + 1]);
            let wv = w.map(|w| w.model.wq[l].iter().map(|&v| i64::from(v)).collect());
            let (wu, we) = b.packed(wv, n_in * n_out, W_OFFSET, W_BITS)?;
            let bv = w.map(|w| w.model.b[l].iter().map(|&v| i64::from(v)).collect());
            let (bu, be) = b.packed(bv, n_out, B_OFFSET, B_BITS)?;
            weights.push(wu.iter().map(|u| offset_lc(u, W_OFFSET)).collect());
            biases.push(bu.iter().map(|u| offset_lc(u, B_OFFSET)).collect());
            body.extend(we);
            body.extend(be);
        }
        let c_w = b.commitment(&weights_header(&shape.layers), &body)?;

        // The input batch, range-checked, packed and committed.
        let n0 = shape.layers[0];
        let (xu, xe) = b.packed(w.map(|w| w.inputs.clone()), batch * n0, A_OFFSET, A_BITS)?;
        let c_x = b.commitment(&[TAG_X, batch as u64, n0 as u64], &xe)?;
        b.commitment(&[TAG_JOB], &[c_w, c_x])?
            .enforce_equal(&c_job)?;

        // Layer by layer, sample by sample.
        let inv4 = Fr::from(4u64).inverse().expect("4 is invertible");
        let mut logits_u: Vec<Lc> = Vec::with_capacity(batch * shape.classes());
        for s in 0..batch {
            let mut acts: Vec<Lc> = xu[s * n0..(s + 1) * n0]
                .iter()
                .map(|u| offset_lc(u, A_OFFSET))
                .collect();
            for l in 0..depth {
                let (n_in, n_out) = (shape.layers[l], shape.layers[l + 1]);
                let k_bits = shape.excess_bits(l);
                let mut next = Vec::with_capacity(n_out);
                for j in 0..n_out {
                    // t = Σ_k a_k·w_kj + 16·b_j + 2048, one constraint per product.
                    let mut t =
                        &biases[l][j] * Fr::from(16u64) + (Fr::from(2048u64), Variable::One);
                    for k in 0..n_in {
                        let p = b.var(w.map(|w| {
                            field(w.forward.acts[l][s][k] * i64::from(w.model.wq[l][k * n_out + j]))
                        }))?;
                        cs.enforce_r1cs_constraint(
                            || acts[k].clone(),
                            || weights[l][k * n_out + j].clone(),
                            || Lc::from(p),
                        )?;
                        t += (Fr::ONE, p);
                    }
                    let neuron = w.map(|w| w.forward.neurons[l][s][j]);
                    let (_, r) = b.uint(neuron.map(|n| n.r), 12)?;
                    let (v_bits, v) = b.uint(neuron.map(|n| (n.y + A_OFFSET) as u64), 12)?;
                    let (_, f) = b.uint(neuron.map(|n| n.f), k_bits)?;
                    // low = v without its top bit; (v_11 + f)·low = 0 bounds v to [0, 2048] and
                    // forces y = ±1024 whenever f > 0.
                    let low = v.clone() - (Fr::from(2048u64), v_bits[11]);
                    cs.enforce_r1cs_constraint(
                        || f.clone() + (Fr::ONE, v_bits[11]),
                        || low,
                        Lc::new,
                    )?;
                    // y·(1024 + f) = (t - r)/4: with t - r = 4096·q this is y = clamp(q, 1024).
                    let y = offset_lc(&v, A_OFFSET);
                    cs.enforce_r1cs_constraint(
                        || y.clone(),
                        || f.clone() + (Fr::from(1024u64), Variable::One),
                        || (t - &r) * inv4,
                    )?;
                    if l + 1 < depth {
                        // ReLU: s = v_10 + v_11 is [y ≥ 0]; a = s·y.
                        let a = b.var(neuron.map(|n| field(n.y.max(0))))?;
                        cs.enforce_r1cs_constraint(
                            || Lc::from(v_bits[10]) + (Fr::ONE, v_bits[11]),
                            || y.clone(),
                            || Lc::from(a),
                        )?;
                        next.push(Lc::from(a));
                    } else {
                        logits_u.push(v);
                    }
                }
                if l + 1 < depth {
                    acts = next;
                }
            }
        }
        // The logits' v = y + 1024 are the 12-bit fields c_out packs.
        let out_values: Option<Vec<i64>> = w.map(|w| {
            w.forward
                .logits
                .data
                .iter()
                .map(|&v| i64::from(v))
                .collect()
        });
        let out = b.pack(&logits_u, out_values.as_deref(), A_OFFSET, A_BITS)?;
        b.commitment(&[TAG_OUT, batch as u64, shape.classes() as u64], &out)?
            .enforce_equal(&c_out)?;
        // The binding takes part in one constraint, so the proof binds it like the other inputs.
        let _ = &binding * &binding;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use ark_relations::gr1cs::ConstraintSystem;
    use pedals_ml::exact::Mat;

    use super::*;
    use crate::commit::{commit_inputs, commit_job, commit_outputs, forward};

    fn model(layers: &[usize], seed: u64) -> ZkModel {
        // A small LCG: weights over the whole ±2048 range, biases over ±2^18, so clamps and
        // saturation happen.
        let mut x = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut next = |m: i64| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((x >> 33) as i64 % (2 * m + 1)) - m
        };
        let depth = layers.len() - 1;
        ZkModel {
            layers: layers.to_vec(),
            wq: (0..depth)
                .map(|l| {
                    (0..layers[l] * layers[l + 1])
                        .map(|_| next(2048) as i32)
                        .collect()
                })
                .collect(),
            b: (0..depth)
                .map(|l| (0..layers[l + 1]).map(|_| next(1 << 18) as i32).collect())
                .collect(),
        }
    }

    fn inputs(batch: usize, n: usize, seed: i64) -> Mat {
        Mat::new(
            batch,
            n,
            (0..batch * n)
                .map(|i| ((i as i64 * 7919 + seed * 104_729) % 2049 - 1024) as i32)
                .collect(),
        )
    }

    /// Builds the circuit for `model` on `x` with public inputs `public` and the witness
    /// `witness` (both possibly altered), and says whether it is satisfied.
    fn satisfied(shape: &Shape, public: [Fr; 3], witness: Witness) -> bool {
        let cs = ConstraintSystem::<Fr>::new_ref();
        InferenceCircuit {
            shape: shape.clone(),
            public: Some(public),
            witness: Some(witness),
        }
        .generate_constraints(cs.clone())
        .expect("synthesizes");
        cs.finalize();
        cs.is_satisfied().expect("checks")
    }

    fn honest(layers: &[usize], batch: usize) -> (Shape, [Fr; 3], Witness) {
        let m = model(layers, 7);
        let x = inputs(batch, layers[0], 3);
        let fwd = forward(&m, &x).expect("forward");
        let public = [
            commit_job(m.commitment(), commit_inputs(&x).expect("inputs")),
            commit_outputs(&fwd.logits).expect("outputs"),
            Fr::from(0x11u64),
        ];
        let witness = Witness {
            model: m,
            inputs: x.data.iter().map(|&v| i64::from(v)).collect(),
            forward: fwd,
        };
        (
            Shape {
                layers: layers.to_vec(),
                batch,
            },
            public,
            witness,
        )
    }

    #[test]
    fn the_honest_witness_satisfies_the_circuit() {
        let (shape, public, witness) = honest(&[6, 5, 3], 2);
        // The random model saturates: some neurons clamp at ±1024 with f > 0.
        assert!(
            witness
                .forward
                .neurons
                .iter()
                .flatten()
                .flatten()
                .any(|n| n.f > 0)
        );
        assert!(satisfied(&shape, public, witness));
    }

    #[test]
    fn a_changed_logit_weight_input_or_commitment_is_unsatisfiable() {
        let (shape, public, witness) = honest(&[6, 5, 3], 2);
        // Another output commitment.
        let mut p = public;
        p[1] += Fr::ONE;
        assert!(!satisfied(&shape, p, witness.clone()));
        // Another job commitment (another model or input batch than the committed ones).
        let mut p = public;
        p[0] += Fr::ONE;
        assert!(!satisfied(&shape, p, witness.clone()));
        // Another input batch in the witness than the committed one.
        let mut w = witness.clone();
        w.inputs[0] = if w.inputs[0] < 1024 {
            w.inputs[0] + 1
        } else {
            0
        };
        assert!(!satisfied(&shape, public, w));
        // A logit off by one in the witness (and the output commitment made to match it).
        let mut w = witness.clone();
        let n = &mut w.forward.neurons[1][0][0];
        n.y = if n.y < 1024 { n.y + 1 } else { n.y - 1 };
        n.f = 0;
        w.forward.logits.data[0] = n.y as i32;
        let mut p = public;
        p[1] = commit_outputs(&w.forward.logits).expect("outputs");
        assert!(!satisfied(&shape, p, w));
        // A weight changed in the witness but not in the commitment.
        let mut w = witness.clone();
        w.model.wq[0][0] = if w.model.wq[0][0] < 2048 {
            w.model.wq[0][0] + 1
        } else {
            0
        };
        assert!(!satisfied(&shape, public, w));
    }
}
