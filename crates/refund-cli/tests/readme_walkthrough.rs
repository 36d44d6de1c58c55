//! The README's `refund` walk-through runs as written (issue 23): the shell block under "The
//! `refund` command" is taken from README.md, the sandbox is started as its second line says,
//! and every other line (the `refund` lines, the here-doc that makes `refunds.csv`, the
//! `mkdir -p` before the completions) is run in order by `sh` in a fresh directory with a fresh
//! home directory, the sandbox's variables loaded as the README loads them and the binary
//! this test harness built first on `PATH`. Each must exit 0.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_refund");

/// The first ```sh block after the "The `refund` command" heading.
fn walkthrough() -> String {
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let text = std::fs::read_to_string(&readme).unwrap();
    let section = text
        .split_once("## The `refund` command")
        .expect("README has a section \"The `refund` command\"")
        .1;
    let block = section.split_once("```sh\n").expect("a sh block").1;
    block
        .split_once("\n```")
        .expect("the block ends")
        .0
        .to_owned()
}

/// The block's commands, in order: one per line, a here-doc with its body and terminator.
fn commands(block: &str) -> Vec<String> {
    let mut commands = Vec::new();
    let mut lines = block.lines();
    while let Some(line) = lines.next() {
        if line.trim().is_empty() {
            continue;
        }
        let mut command = line.to_owned();
        if let Some((_, tail)) = line.split_once("<<") {
            let word = tail.trim().trim_matches(['\'', '"']).to_owned();
            for body in lines.by_ref() {
                command.push('\n');
                command.push_str(body);
                if body == word {
                    break;
                }
            }
        }
        commands.push(command);
    }
    commands
}

/// A fresh directory of this test's own.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("refund-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `PATH` with the harness's binary first, so `refund` is the one under test.
fn path() -> String {
    let bin_dir = Path::new(BIN).parent().unwrap().display().to_string();
    match std::env::var("PATH") {
        Ok(rest) => format!("{bin_dir}:{rest}"),
        Err(_) => bin_dir,
    }
}

/// Stops the sandbox however the test ends.
struct Sandbox(Child);

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn every_refund_line_of_the_readme_walkthrough_exits_0_when_run_in_order() {
    let commands = commands(&walkthrough());
    let dir = scratch("readme");
    let home = dir.join("home");
    std::fs::create_dir(&home).unwrap();
    let env = |cmd: &mut Command| {
        cmd.env_clear()
            .env("PATH", path())
            .env("HOME", &home)
            .current_dir(&dir)
            .stdin(Stdio::null());
    };

    let mut sandbox = None;
    let mut prelude = String::new();
    let mut refund_lines = 0;
    for command in &commands {
        let line = command.trim();
        if line.starts_with("cargo install") {
            assert!(
                line.contains("--locked"),
                "{line}: cargo install without --locked"
            );
            continue;
        }
        if line.starts_with("refund sandbox") {
            // Started as written, without the shell's `&` and the comment.
            let words: Vec<&str> = line
                .split_once('#')
                .map_or(line, |(code, _)| code)
                .trim()
                .trim_end_matches('&')
                .split_whitespace()
                .skip(1)
                .collect();
            let mut cmd = Command::new(BIN);
            env(&mut cmd);
            cmd.args(&words).stdout(Stdio::null()).stderr(Stdio::null());
            sandbox = Some(Sandbox(cmd.spawn().unwrap()));
            continue;
        }
        if line.starts_with("until ") {
            // The README's wait for the env file, with a deadline.
            let file = dir.join("sandbox.env");
            let deadline = Instant::now() + Duration::from_secs(30);
            while !file.exists() {
                assert!(Instant::now() < deadline, "no sandbox.env within 30 s");
                std::thread::sleep(Duration::from_millis(50));
            }
            continue;
        }
        if line.starts_with(". ") || line.starts_with("eval ") {
            // Loading the variables: every later line runs in a shell that did this first.
            prelude.push_str(line);
            prelude.push('\n');
            continue;
        }
        if line.starts_with("kill %") {
            continue; // the test stops its sandbox itself
        }
        assert!(sandbox.is_some(), "{line}: run before the sandbox started");
        if line.starts_with("refund ") {
            refund_lines += 1;
        }
        let mut cmd = Command::new("sh");
        env(&mut cmd);
        let output = cmd
            .args(["-c", &format!("{prelude}{command}")])
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(0),
            "README line exits {:?}:\n{command}\nstdout:\n{}\nstderr:\n{}",
            output.status.code(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
    }
    assert!(sandbox.is_some(), "the walk-through starts no sandbox");
    assert!(refund_lines >= 10, "only {refund_lines} refund lines found");

    // What the lines said they made: the batch's input, its report, the completions.
    let report = std::fs::read_to_string(dir.join("report.csv")).unwrap();
    assert_eq!(report.matches(",refunded,").count(), 3, "{report}");
    let completions = home.join(".local/share/bash-completion/completions/refund");
    assert!(std::fs::metadata(&completions).unwrap().len() > 0);
    drop(sandbox);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_walkthrough_is_split_into_its_lines_and_here_docs() {
    let block = "refund a\ncat > f.csv <<'EOF'\nx,y\nEOF\n\nrefund b # c\n";
    assert_eq!(
        commands(block),
        ["refund a", "cat > f.csv <<'EOF'\nx,y\nEOF", "refund b # c"]
    );
}
