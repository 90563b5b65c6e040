//! The parser on 100,000 seeded random and mutated-corpus inputs: no panic, a refused request
//! still gets an answer built without a panic, and whatever parses survives a round trip.
//! (services/sip/fuzz holds the coverage-guided version of this.)
use holdfast_sip::wire::{self, StreamDecoder};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

mod common;
use std::time::{Duration, Instant};

const INPUTS: usize = 100_000;
const TIME_LIMIT: Duration = Duration::from_secs(180);

fn corpus() -> Vec<Vec<u8>> {
    let mut out: Vec<_> = common::KINDS.iter().flat_map(|kind| common::messages(kind)).map(|(_, bytes)| bytes).collect();
    out.sort();
    assert_eq!(out.len(), 50);
    out
}

/// Bytes that matter to the grammar, so that random input reaches past the start line.
const INTERESTING: &[u8] =
    b"\r\n\r\n \t:;,<>\"\\%@[]=/?SIP/2.0 0123456789INVITE sip:tel:v:l:m:Via:Content-Length:\0\xff";

fn random_input(rng: &mut StdRng) -> Vec<u8> {
    let len = rng.random_range(0..600);
    (0..len)
        .map(|_| if rng.random_bool(0.7) { INTERESTING[rng.random_range(0..INTERESTING.len())] } else { rng.random() })
        .collect()
}

fn mutate(rng: &mut StdRng, seed: &[u8], corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut out = seed.to_vec();
    for _ in 0..rng.random_range(1..4) {
        let at = rng.random_range(0..=out.len());
        match rng.random_range(0..7) {
            0 if at < out.len() => out[at] = rng.random(),
            1 if at < out.len() => out[at] = INTERESTING[rng.random_range(0..INTERESTING.len())],
            2 => out.insert(at, INTERESTING[rng.random_range(0..INTERESTING.len())]),
            3 if at < out.len() => {
                let end = rng.random_range(at..=out.len().min(at + 40));
                out.drain(at..end);
            }
            4 => out.truncate(at),
            5 => {
                let other = &corpus[rng.random_range(0..corpus.len())];
                let from = rng.random_range(0..=other.len());
                let to = rng.random_range(from..=other.len().min(from + 80));
                out.splice(at..at, other[from..to].iter().copied());
            }
            _ => {
                // Duplicate a line: repeated headers, folded continuations.
                let start = out[..at].iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
                let end = out[at..].iter().position(|&b| b == b'\n').map_or(out.len(), |p| at + p + 1);
                let line = out[start..end].to_vec();
                out.splice(start..start, line);
            }
        }
    }
    out
}

/// Returns whether `input` parsed.
fn check(input: &[u8], rng: &mut StdRng) -> bool {
    let parsed = match wire::parse(input) {
        Ok(m) => {
            let bytes = m.to_bytes().unwrap_or_else(|e| panic!("{e}: {m:?}"));
            assert_eq!(wire::parse(&bytes).as_ref(), Ok(&m), "round trip of {:?}", String::from_utf8_lossy(input));
            true
        }
        Err(e) => {
            assert!(!e.reason().contains(['\r', '\n']), "reason must fit a status line: {e:?}");
            if let Some(answer) = wire::error_response(input, &e) {
                assert!(answer.status == 400 || answer.status == 505 || answer.status == 513);
                let _ = answer.to_bytes();
            }
            false
        }
    };
    let mut decoder = StreamDecoder::with_max_message(4096);
    let mut rest = input;
    let mut items = 0;
    while !rest.is_empty() {
        let n = rng.random_range(1..=rest.len().min(64));
        decoder.push(&rest[..n]);
        rest = &rest[n..];
        while let Some(item) = decoder.next() {
            items += 1;
            assert!(items <= input.len() + 1, "the decoder yields more items than there are bytes");
            if let Err(e) = item {
                let _ = wire::error_response(decoder.last_rejected(), &e);
            }
        }
    }
    assert!(decoder.buffered() <= 4096 + 64, "decoder buffered {}", decoder.buffered());
    parsed
}

#[test]
fn hundred_thousand_random_and_mutated_inputs_without_panic() {
    let corpus = corpus();
    let mut rng = StdRng::seed_from_u64(0x5eed_4475);
    let started = Instant::now();
    let mut parsed = 0usize;
    let mut done = 0usize;
    while done < INPUTS && started.elapsed() < TIME_LIMIT {
        let input = if done.is_multiple_of(4) {
            random_input(&mut rng)
        } else {
            let seed = &corpus[rng.random_range(0..corpus.len())];
            mutate(&mut rng, seed, &corpus)
        };
        parsed += usize::from(check(&input, &mut rng));
        done += 1;
    }
    eprintln!("{parsed} of {done} inputs parsed, {:?}", started.elapsed());
    // The time bound is for a machine under heavy load; a normal run does all of them.
    assert!(done >= INPUTS / 10, "only {done} inputs in {TIME_LIMIT:?}");
    // The mutations must leave a good share parseable, or the test only exercises rejection.
    assert!(parsed > done / 20, "only {parsed} inputs parsed");
}
