//! The workspace's layering (services/README.md): no crate depends on one of its own layer or
//! above (the edges `cargo metadata` reports), and within each crate no two files import each
//! other (the `use` and `crate::`/`super::` paths of its sources). A module's own `mod.rs` or
//! crate root declares its files and re-exports what they show: it is the module, so an edge
//! between a file and a module that contains it is no import between two files.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The table of services/README.md: crate name -> layer.
fn layers(readme: &str) -> BTreeMap<String, u32> {
    let block = readme.split("```layers\n").nth(1).and_then(|rest| rest.split("```").next());
    let block = block.expect("services/README.md has a ```layers block");
    let mut layers = BTreeMap::new();
    for line in block.lines().filter(|l| !l.trim().is_empty()) {
        let mut words = line.split_whitespace();
        let layer: u32 = words.next().and_then(|w| w.parse().ok()).unwrap_or_else(|| panic!("layer number in {line:?}"));
        for name in words {
            assert!(layers.insert(name.to_string(), layer).is_none(), "{name} stands in two rows");
        }
    }
    layers
}

struct Package {
    name: String,
    /// Workspace crates it depends on (normal, build and dev dependencies).
    depends_on: Vec<String>,
    /// The root file of each of its targets (lib, bins, tests, examples, benches).
    roots: Vec<PathBuf>,
}

fn packages() -> Vec<Package> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(workspace())
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&out.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("cargo metadata's JSON");
    let members: BTreeSet<&str> = meta["workspace_members"].as_array().unwrap().iter().filter_map(|m| m.as_str()).collect();
    let all = meta["packages"].as_array().expect("packages");
    let names: BTreeSet<&str> = all.iter().filter_map(|p| p["name"].as_str()).collect();
    all.iter()
        .filter(|p| p["id"].as_str().is_some_and(|id| members.contains(id)))
        .map(|p| Package {
            name: p["name"].as_str().unwrap().to_string(),
            depends_on: p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["path"].is_string())
                .filter_map(|d| d["name"].as_str())
                .filter(|n| names.contains(n))
                .map(str::to_string)
                .collect(),
            roots: p["targets"].as_array().unwrap().iter().filter_map(|t| t["src_path"].as_str()).map(PathBuf::from).collect(),
        })
        .collect()
}

#[test]
fn no_crate_depends_on_one_of_its_layer_or_above() {
    let readme = std::fs::read_to_string(workspace().join("services/README.md")).expect("services/README.md");
    let layers = layers(&readme);
    let packages = packages();
    assert!(packages.len() >= 12, "cargo metadata found the workspace's crates: {}", packages.len());
    let mut wrong = Vec::new();
    for p in &packages {
        let Some(&mine) = layers.get(&p.name) else {
            wrong.push(format!("{} is in no layer of services/README.md", p.name));
            continue;
        };
        for d in &p.depends_on {
            match layers.get(d) {
                Some(&theirs) if theirs < mine => {}
                Some(&theirs) => wrong.push(format!("{} (layer {mine}) depends on {d} (layer {theirs})", p.name)),
                None => wrong.push(format!("{} depends on {d}, which is in no layer", p.name)),
            }
        }
    }
    for name in layers.keys() {
        if !packages.iter().any(|p| &p.name == name) {
            wrong.push(format!("services/README.md names {name}, which is no workspace crate"));
        }
    }
    assert!(wrong.is_empty(), "layering broken:\n{}", wrong.join("\n"));
}

/// A module path inside one crate target (`[]`: the root).
type ModPath = Vec<String>;

/// The files of the target rooted at `root`, by module path, following its `mod NAME;` lines.
fn modules(root: &Path) -> BTreeMap<ModPath, PathBuf> {
    let mut found = BTreeMap::new();
    let mut todo = vec![(Vec::new(), root.to_path_buf())];
    while let Some((path, file)) = todo.pop() {
        let Ok(text) = std::fs::read_to_string(&file) else { continue };
        // Children of a root or a mod.rs sit beside it; those of a.rs in a/.
        let dir = match file.file_name().and_then(|n| n.to_str()) {
            Some("mod.rs") | Some("lib.rs") | Some("main.rs") => file.parent().unwrap().to_path_buf(),
            _ if path.is_empty() => file.parent().unwrap().to_path_buf(),
            _ => file.with_extension(""),
        };
        for child in declared_modules(&code(&text)) {
            let candidates = [dir.join(format!("{child}.rs")), dir.join(&child).join("mod.rs")];
            if let Some(f) = candidates.into_iter().find(|f| f.is_file()) {
                let mut p = path.clone();
                p.push(child);
                todo.push((p, f));
            }
        }
        found.insert(path, file);
    }
    found
}

/// The text without comments (a `//` inside a string cuts the line short: only names are lost).
fn code(text: &str) -> String {
    text.lines().map(|l| l.find("//").map_or(l, |i| &l[..i])).collect::<Vec<_>>().join("\n")
}

/// `mod name;` declarations (not inline `mod name { ... }`).
fn declared_modules(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    for stmt in code.split(';') {
        let words: Vec<&str> = stmt.split_whitespace().filter(|w| !w.starts_with("#[") && !w.starts_with("pub")).collect();
        if let [.., "mod", name] = words.as_slice() {
            if is_ident(name) {
                out.push(name.to_string());
            }
        }
    }
    out
}

fn is_ident(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !s.starts_with(|c: char| c.is_ascii_digit())
}

/// The paths `code` names, each as segments as written (`crate`, `super`, `self` or a name
/// first): every path of every `use` tree, and every `crate::`/`super::`/`self::` path.
fn named_paths(code: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    for stmt in code.split(';') {
        if let Some(i) = find_word(stmt, "use") {
            expand_use(&mut Vec::new(), stmt[i + 3..].trim(), &mut paths);
        }
    }
    let bytes = code.as_bytes();
    for start in ["crate::", "super::", "self::"] {
        for (i, _) in code.match_indices(start) {
            if i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_' || bytes[i - 1] == b':') {
                continue;
            }
            let end = code[i..].find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')).map_or(code.len(), |e| i + e);
            paths.push(code[i..end].split("::").filter(|s| !s.is_empty()).map(str::to_string).collect());
        }
    }
    paths
}

/// Where `word` stands as a whole word.
fn find_word(s: &str, word: &str) -> Option<usize> {
    let b = s.as_bytes();
    s.match_indices(word).map(|(i, _)| i).find(|&i| {
        let before = i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
        let after = b.get(i + word.len()).is_none_or(|c| c.is_ascii_whitespace());
        before && after
    })
}

/// Every path of a use tree (`a::b::{c, d::{e, f}}`), `prefix` before it.
fn expand_use(prefix: &mut Vec<String>, tree: &str, out: &mut Vec<Vec<String>>) {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let head: Vec<String> = tree[..open].split("::").map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect();
        let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        let n = prefix.len();
        prefix.extend(head);
        for part in split_top(inner) {
            expand_use(prefix, part, out);
        }
        prefix.truncate(n);
    } else {
        let simple = tree.split(" as ").next().unwrap_or("").trim();
        let mut p = prefix.clone();
        p.extend(simple.split("::").map(str::trim).filter(|s| !s.is_empty() && *s != "*").map(str::to_string));
        if !p.is_empty() {
            out.push(p);
        }
    }
}

/// The comma-separated parts of a use group, outside nested braces.
fn split_top(s: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// The modules of one target that `module` (its file's text in `code`) imports.
fn imports(module: &ModPath, code: &str, files: &BTreeMap<ModPath, PathBuf>) -> BTreeSet<ModPath> {
    let mut out = BTreeSet::new();
    for path in named_paths(code) {
        let mut at: ModPath = match path[0].as_str() {
            "crate" => Vec::new(),
            "self" | "super" => module.clone(),
            // A child module named without `self::` (edition 2018 paths).
            first if files.contains_key(&[module.as_slice(), &[first.to_string()]].concat()) => module.clone(),
            _ => continue,
        };
        let rest = if path[0] == "crate" || path[0] == "self" { &path[1..] } else { &path[..] };
        for seg in rest {
            if seg == "super" {
                at.pop();
            } else {
                at.push(seg.clone());
            }
        }
        // The file that holds the item: the longest prefix that is a module with a file.
        while !at.is_empty() && !files.contains_key(&at) {
            at.pop();
        }
        if &at != module {
            out.insert(at);
        }
    }
    out
}

/// Pairs of files of the target rooted at `root` that import each other.
fn mutual_imports(root: &Path) -> Vec<String> {
    let files = modules(root);
    let edges: BTreeMap<&ModPath, BTreeSet<ModPath>> = files
        .iter()
        .map(|(m, f)| (m, imports(m, &code(&std::fs::read_to_string(f).unwrap_or_default()), &files)))
        .collect();
    let mut pairs = Vec::new();
    for (a, targets) in &edges {
        for b in targets {
            let related = b.starts_with(a.as_slice()) || a.starts_with(b.as_slice());
            if !related && *a < b && edges.get(b).is_some_and(|t| t.contains(*a)) {
                pairs.push(format!("{} <-> {}", files[*a].display(), files[b].display()));
            }
        }
    }
    pairs
}

#[test]
fn no_two_files_of_a_crate_import_each_other() {
    let packages = packages();
    let mut roots: Vec<&PathBuf> = packages.iter().flat_map(|p| &p.roots).collect();
    roots.sort();
    roots.dedup();
    let mut checked = 0;
    let mut pairs = Vec::new();
    for root in roots {
        checked += modules(root).len();
        pairs.extend(mutual_imports(root));
    }
    assert!(checked > 200, "the crates' files were found: {checked}");
    assert!(pairs.is_empty(), "files that import each other:\n{}", pairs.join("\n"));
}

/// The check itself finds what it is for: two sibling files importing each other, whether by a
/// `use` group, a `super::` path or a `crate::` path in code, and not a file and its module.
#[test]
fn the_check_finds_two_files_that_import_each_other() {
    let dir = holdfast_tests::scratch::Scratch::new("layering");
    let src = dir.path.join("src");
    std::fs::create_dir_all(src.join("net")).unwrap();
    let write = |name: &str, text: &str| std::fs::write(src.join(name), text).unwrap();
    write("lib.rs", "pub mod net;\nmod plain;\npub use net::Socket;\n");
    write("net/mod.rs", "mod socket;\nmod addr;\npub use socket::Socket;\npub use addr::Addr;\n");
    write("net/socket.rs", "use super::{addr::{Addr, parse}, Other};\npub struct Socket(Addr);\n");
    write("net/addr.rs", "pub struct Addr;\npub fn parse() -> Option<crate::net::socket::Socket> { None } // crate::plain::X\n");
    write("plain.rs", "use crate::net::Socket;\n");
    let pairs = mutual_imports(&src.join("lib.rs"));
    assert_eq!(pairs.len(), 1, "{pairs:?}");
    assert!(pairs[0].contains("net/addr.rs") && pairs[0].contains("net/socket.rs"), "{pairs:?}");
    write("net/addr.rs", "pub struct Addr;\npub fn parse() {}\n");
    assert!(mutual_imports(&src.join("lib.rs")).is_empty(), "a file and the module that declares it are not a pair");
}
