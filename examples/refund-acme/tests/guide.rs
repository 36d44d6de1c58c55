//! `docs/writing-a-provider.md` checked against this crate, block by block: ```` ```rust ````
//! blocks run as doc tests (`src/lib.rs` includes the guide under `cfg(doctest)`); quoted
//! source (```` ```rust,ignore ````, first line `// <path>`) must appear verbatim in that file,
//! each part between `// …` lines; the ```` ```toml ```` block declares exactly this crate's
//! features and dependencies; ```` ```sh ```` commands name packages, examples and tests that
//! exist; the ```` ```text ```` report lists every scenario, in order, passed. The table of line
//! counts is recounted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use refund_testkit::conformance::Scenario;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn guide() -> String {
    read(&repo().join("docs/writing-a-provider.md"))
}

/// The fenced blocks of `text`: (info string, body).
fn blocks(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some(info) = line.strip_prefix("```") {
            let body: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
            out.push((info.to_owned(), body.join("\n")));
        }
    }
    out
}

fn blocks_of(kind: &str) -> Vec<String> {
    let all = blocks(&guide());
    all.into_iter()
        .filter(|(i, _)| i == kind)
        .map(|(_, b)| b)
        .collect()
}

#[test]
fn every_code_block_is_of_a_kind_this_test_checks() {
    for (info, body) in blocks(&guide()) {
        let checked = ["rust", "rust,ignore", "toml", "sh", "text"];
        assert!(checked.contains(&info.as_str()), "```{info}:\n{body}");
    }
}

#[test]
fn quoted_source_is_verbatim() {
    let quotes = blocks_of("rust,ignore");
    assert!(quotes.len() > 10, "{}", quotes.len());
    for quote in quotes {
        let (first, rest) = quote.split_once('\n').unwrap();
        let path = first
            .strip_prefix("// ")
            .expect("a quote starts with `// <path>`");
        let source = read(&repo().join(path));
        for part in rest.split("\n// …\n") {
            assert!(source.contains(part), "not in {path}:\n{part}");
        }
    }
}

/// The lines of `[table]` in a TOML text, comments and blank lines left out.
fn table<'a>(toml: &'a str, name: &str) -> Vec<&'a str> {
    let header = format!("[{name}]");
    toml.lines()
        .skip_while(|l| l.trim() != header)
        .skip(1)
        .take_while(|l| !l.starts_with('['))
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .collect()
}

fn keys(lines: &[&str]) -> BTreeSet<String> {
    let key = |l: &&str| {
        l.split(['=', '.'])
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    lines.iter().map(key).collect()
}

#[test]
fn the_dependency_list_is_this_crates() {
    let tomls = blocks_of("toml");
    assert_eq!(tomls.len(), 1);
    let manifest = read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"));
    assert_eq!(table(&tomls[0], "features"), table(&manifest, "features"));
    for name in ["dependencies", "dev-dependencies"] {
        let (shown, real) = (table(&tomls[0], name), table(&manifest, name));
        assert_eq!(keys(&shown), keys(&real), "[{name}]");
    }
}

/// Workspace packages by name, with their directories.
fn packages() -> BTreeMap<String, PathBuf> {
    let root = read(&repo().join("Cargo.toml"));
    let members = root.lines().skip_while(|l| !l.starts_with("members"));
    let mut out = BTreeMap::from([("refunds".to_owned(), repo())]);
    for member in members.skip(1).take_while(|l| !l.starts_with(']')) {
        let dir = repo().join(member.trim().trim_matches([',', '"']));
        let manifest = read(&dir.join("Cargo.toml"));
        let name = manifest
            .lines()
            .find_map(|l| l.strip_prefix("name = "))
            .unwrap();
        out.insert(name.trim_matches('"').to_owned(), dir);
    }
    out
}

#[test]
fn the_commands_name_what_exists() {
    let packages = packages();
    let commands = blocks_of("sh");
    assert!(!commands.is_empty());
    for line in commands.iter().flat_map(|b| b.lines()) {
        let words: Vec<&str> = line.split('#').next().unwrap().split_whitespace().collect();
        assert_eq!(words.first(), Some(&"cargo"), "{line}");
        let arg = |flag: &str| words.iter().position(|w| *w == flag).map(|i| words[i + 1]);
        let dir = &packages[arg("-p").expect("every command names its package")];
        if let Some(example) = arg("--example") {
            assert!(
                dir.join(format!("examples/{example}.rs")).exists(),
                "{line}"
            );
        }
        if let Some(test) = arg("--test") {
            assert!(dir.join(format!("tests/{test}.rs")).exists(), "{line}");
        }
    }
}

#[test]
fn the_report_shows_every_scenario_passed_in_order() {
    let reports = blocks_of("text");
    assert_eq!(reports.len(), 1);
    let mut lines = reports[0].lines();
    let all = Scenario::ALL.len();
    let header = format!("conformance: acme — {all} passed, 0 failed, 0 skipped");
    assert_eq!(lines.next(), Some(header.as_str()));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    assert!(rows.iter().all(|w| w[0] == "passed"), "{rows:?}");
    let names: Vec<&str> = rows.iter().map(|w| w[1]).collect();
    let expected: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
    assert_eq!(names, expected);
}

/// (lines, code lines): code is neither blank nor a comment.
fn count(text: &str) -> (usize, usize) {
    let code = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim().starts_with("//"));
    (text.lines().count(), code.count())
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rs_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_line_counts_are_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let guide = guide();
    let mut counted = BTreeMap::new();
    for line in guide.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() == 6 && cells[1].starts_with('`') && cells[1].ends_with(".rs`") {
            let path = cells[1].trim_matches('`');
            let (lines, code) = count(&read(&dir.join(path)));
            let shown = (cells[3].parse().unwrap(), cells[4].parse().unwrap());
            assert_eq!(
                shown,
                (lines, code),
                "{path}: update docs/writing-a-provider.md"
            );
            counted.insert(path.to_owned(), (lines, code));
        }
    }
    let mut files = Vec::new();
    for sub in ["src", "tests", "examples"] {
        rs_files(&dir.join(sub), &mut files);
    }
    assert_eq!(
        counted.len(),
        files.len(),
        "every file of the crate is in the table"
    );
    let sum = |paths: &[&str]| {
        let each = paths.iter().map(|p| counted[*p]);
        each.fold((0, 0), |(l, c), (pl, pc)| (l + pl, c + pc))
    };
    let provider = [
        "src/lib.rs",
        "src/config.rs",
        "src/signature.rs",
        "src/wire.rs",
    ];
    let provider = sum(&[&provider[..], &["src/client.rs"]].concat());
    let fake = sum(&["src/testing.rs"]);
    let harness = sum(&["src/testing/harness.rs"]);
    let both = (provider.0 + fake.0, provider.1 + fake.1);
    for (what, (lines, code)) in [("provider is", provider), ("fake", fake)]
        .into_iter()
        .chain([("together", both), ("harness adds", harness)])
    {
        let text = format!("{what} {lines} lines ({code} of code)");
        assert!(guide.contains(&text), "the guide should say “{text}”");
    }
}
