//! Language-model batch inference: chunks commit to their completions; the result blob gives
//! back the same trace; any chunk re-runs to the same bytes, and a changed completion is seen.

use pedals_lm::batch::{chunk_count, parse_prompts, result_trace, run, run_chunk};
use pedals_lm::{GenParams, LmError, Sampling, Tokenizer, quantize};

use crate::fixtures::checkpoint;

const PROMPTS: &str = r#"{"prompt": "The world is"}
{"prompt_ids": [70, 71, 72]}

{"prompt": "What is the difference between"}
{"prompt": "Never"}
{"prompt": "A"}
"#;

#[test]
fn chunks_commit_and_re_run_to_the_same_bytes() {
    let ck = checkpoint("llama-tiny");
    let tok = Tokenizer::from_bytes(ck.tokenizer.as_deref().expect("tokenizer")).expect("loads");
    let model = quantize(&ck, 8).expect("quantizes");
    let prompts = parse_prompts(PROMPTS.as_bytes(), Some(&tok)).expect("parses");
    assert_eq!(prompts.len(), 5);
    let params = GenParams {
        max_tokens: 6,
        sampling: Sampling::new(0.8, 20, 0.95, 42).expect("valid"),
        stop: vec![],
    };
    let (hashes, chunks) = run(&model, Some(&tok), &prompts, &params, 2).expect("runs");
    assert_eq!(chunks.len(), chunk_count(5, 2));
    let result = chunks.concat();
    let model_bytes = model.to_bytes().expect("bytes");
    assert_eq!(
        result_trace(&result, &model_bytes, 5, 2).expect("splits"),
        hashes
    );
    // A validator re-runs chunk 1 alone and gets the same bytes.
    assert_eq!(
        run_chunk(&model, Some(&tok), &prompts, &params, 2, 1).expect("runs"),
        chunks[1]
    );
    // Prompts draw from their own seeds: the two identical prompt texts would still differ.
    let text = String::from_utf8(result.clone()).expect("utf-8");
    assert_eq!(text.lines().count(), 5);
    // A worker that changes one completion changes that chunk's hash and nothing else.
    let forged = text.replacen("\"index\":3,\"tokens\":[", "\"index\":3,\"tokens\":[1,", 1);
    let forged_trace = result_trace(forged.as_bytes(), &model_bytes, 5, 2).expect("splits");
    let differ: Vec<usize> = (0..hashes.len())
        .filter(|&i| hashes[i] != forged_trace[i])
        .collect();
    assert_eq!(differ, vec![2]);
    assert!(result_trace(&result[..result.len() - 1], &model_bytes, 5, 2).is_err());
}

#[test]
fn bad_prompt_files_name_the_line() {
    let bad = |text: &str| {
        parse_prompts(text.as_bytes(), None)
            .expect_err("refused")
            .to_string()
    };
    assert!(bad("").contains("no prompts"));
    assert!(bad("{\"prompt_ids\": [1]}\n{\"prompt\": 5}\n").contains("line 2"));
    assert!(bad("{\"prompt\": \"x\"}").contains("tokenizer"));
    assert!(bad("{\"prompt_ids\": []}").contains("empty"));
    assert!(bad("{\"prompt_ids\": [1], \"prompt\": \"x\"}").contains("exactly one"));
    assert!(bad("{\"prompt_ids\": [1], \"max\": 3}").contains("unknown field"));
    assert!(matches!(
        parse_prompts(&[0xff, 0xfe], None),
        Err(LmError::Format(_))
    ));
}
