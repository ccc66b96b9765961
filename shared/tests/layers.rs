//! The layers as `docs/ARCHITECTURE.md` ("May import") says: every
//! `crate::…` path in the core crate's code (comments and test modules
//! aside) is checked against the table's "must not import" column, so an
//! import the table forbids fails here, and the table stays true.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// One row: the modules it covers (`aws`, `aws::websocket`) and the
/// top-level modules their code must not name (`*`: any other).
struct Row {
    modules: Vec<String>,
    forbidden: Vec<String>,
}

fn between_backticks(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

fn table() -> Vec<Row> {
    let doc = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/ARCHITECTURE.md"),
    )
    .unwrap();
    let start = doc.find("### May import").expect("the section");
    let rows: Vec<Row> = doc[start..]
        .lines()
        .skip_while(|l| !l.starts_with("| module |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split(" | ").collect();
            let modules = between_backticks(cells.first()?);
            let forbidden = between_backticks(cells.get(2)?);
            (!modules.is_empty()).then_some(Row { modules, forbidden })
        })
        .collect();
    assert!(
        rows.len() > 15,
        "the table was not read: {} rows",
        rows.len()
    );
    rows
}

/// `aws/websocket.rs` → `aws::websocket`; `services/ingress/log.rs` →
/// `services::ingress::log`; `lib.rs` → `lib`.
fn module_path(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .filter(|p| p != "mod")
        .collect();
    parts.join("::")
}

/// The row for a module: the one naming the longest prefix of its path.
fn row_for<'a>(rows: &'a [Row], module: &str) -> Option<&'a Row> {
    rows.iter()
        .filter_map(|r| {
            r.modules
                .iter()
                .filter(|m| module == m.as_str() || module.starts_with(&format!("{m}::")))
                .map(|m| m.len())
                .max()
                .map(|len| (len, r))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, r)| r)
}

/// The top-level modules a file's code names (`crate::x…`), outside
/// comments and its `#[cfg(test)] mod tests`.
fn imports(file: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = BTreeSet::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim();
        if trimmed.starts_with("#[cfg(test)]")
            && lines
                .get(i + 1)
                .is_some_and(|n| n.trim().starts_with("mod tests"))
        {
            break;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_module_names_what_the_may_import_table_forbids() {
    let rows = table();
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in &files {
        let module = module_path(&src, file);
        let Some(row) = row_for(&rows, &module) else {
            continue;
        };
        checked += 1;
        let own = module.split("::").next().unwrap();
        for name in imports(file) {
            let forbidden = name != own && row.forbidden.iter().any(|f| f == "*" || f == &name);
            if forbidden {
                broken.push(format!("{module} names crate::{name}"));
            }
        }
    }
    assert!(checked > 50, "only {checked} files were checked");
    assert!(
        broken.is_empty(),
        "imports the \"May import\" table of docs/ARCHITECTURE.md forbids:\n{}",
        broken.join("\n")
    );
}

#[test]
fn the_reader_finds_what_it_looks_for() {
    let rows = table();
    assert!(row_for(&rows, "aws::websocket")
        .unwrap()
        .modules
        .contains(&"aws::websocket".to_owned()));
    assert!(row_for(&rows, "aws::dynamo")
        .unwrap()
        .modules
        .contains(&"aws".to_owned()));
    assert!(row_for(&rows, "services::ingress::log")
        .unwrap()
        .forbidden
        .contains(&"http".to_owned()));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.rs");
    std::fs::write(
        &file,
        "use crate::repo::Repo;\n// crate::http in a comment\nfn f() { crate::live::x(); }\n#[cfg(test)]\nmod tests {\n    use crate::sqlite;\n}\n",
    )
    .unwrap();
    assert_eq!(
        imports(&file).into_iter().collect::<Vec<_>>(),
        ["live", "repo"]
    );
}
