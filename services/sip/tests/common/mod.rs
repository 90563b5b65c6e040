//! The RFC 4475 torture messages kept beside these tests (tests/rfc4475, published test data).
// Each test binary compiles this module and uses a part of it.
#![allow(dead_code)]
use std::path::{Path, PathBuf};

/// The folders of the corpus, one per RFC 4475 section kind (see tests/rfc4475/README.md).
pub const KINDS: [&str; 4] = ["valid", "invalid", "semantic", "extra"];

pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rfc4475")
}

/// Every message of one kind, by name (the file stem), sorted.
pub fn messages(kind: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir().join(kind);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "dat"))
        .map(|p| (p.file_stem().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    out.sort();
    out
}

pub fn message(kind: &str, name: &str) -> Vec<u8> {
    std::fs::read(corpus_dir().join(kind).join(format!("{name}.dat"))).unwrap()
}
