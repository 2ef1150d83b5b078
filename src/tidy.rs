//! The layer order of `ARCHITECTURE.md`, enforced: each module of `src/`
//! uses (through `crate::` paths) only modules listed before it in the
//! table there, never one of another group of its own layer.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Each module's place: (layer, group within the layer, position).
type Places = BTreeMap<String, (usize, usize, usize)>;

/// Reads the table: lines `L<n>  a b | c d` in the fenced block after the
/// "## Layers" heading.
fn places() -> Places {
    let doc = std::fs::read_to_string(Path::new(ROOT).join("ARCHITECTURE.md"))
        .expect("ARCHITECTURE.md at the crate root");
    let mut places = Places::new();
    let mut position = 0;
    for line in doc.lines() {
        let Some((layer, modules)) = line.split_once(char::is_whitespace) else {
            continue;
        };
        let Some(layer) = layer.strip_prefix('L').and_then(|n| n.parse().ok()) else {
            continue;
        };
        for (group, names) in modules.split('|').enumerate() {
            for name in names.split_whitespace() {
                position += 1;
                places.insert(name.to_owned(), (layer, group, position));
            }
        }
    }
    assert!(
        places.len() > 10,
        "no layer table found in ARCHITECTURE.md: {places:?}"
    );
    places
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/").flatten() {
        let path = entry.path();
        if path.is_dir() {
            // The command-line tool is a crate of its own.
            if path.file_name().is_some_and(|n| n != "bin") {
                sources(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs")
            // Unit tests (in `tests.rs` beside a big module) may use anything.
            && path
                .file_name()
                .is_some_and(|n| n != "tidy.rs" && n != "tests.rs")
        {
            out.push(path);
        }
    }
}

/// The top-level module a file of `src/` belongs to.
fn module_of(path: &Path) -> String {
    let rel = path
        .strip_prefix(Path::new(ROOT).join("src"))
        .expect("under src/");
    let first = rel
        .components()
        .next()
        .expect("a file")
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    let name = first.strip_suffix(".rs").unwrap_or(&first);
    let name = name.strip_suffix("_fallback").unwrap_or(name);
    name.to_owned()
}

/// The code of a file without comments and without its unit tests (which
/// may use anything).
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("//") {
            rest = after.find('\n').map_or("", |i| &after[i..]);
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.find("*/").map_or("", |i| &after[i + 2..]);
        } else {
            let c = rest.chars().next().expect("not empty");
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// The first segment of each `crate::` path in `code`, with groups
/// (`crate::{a, b::c}`) taken apart.
fn crate_uses(code: &str) -> Vec<String> {
    let mut uses = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let macro_crate = rest[..i].ends_with('$');
        rest = &rest[i + "crate::".len()..];
        if macro_crate {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                if depth == 0 || (depth == 1 && c == ',') {
                    uses.push(ident(item.trim()));
                    item.clear();
                    if depth == 0 {
                        break;
                    }
                } else {
                    item.push(c);
                }
            }
        } else {
            uses.push(ident(rest));
        }
    }
    uses.retain(|u| !u.is_empty());
    uses
}

fn ident(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

#[test]
fn every_module_uses_only_the_layers_below_it() {
    let places = places();
    let mut files = Vec::new();
    sources(&Path::new(ROOT).join("src"), &mut files);
    let mut broken = Vec::new();
    for file in &files {
        let module = module_of(file);
        let Some(&(layer, group, position)) = places.get(&module) else {
            broken.push(format!(
                "{}: module `{module}` is not in ARCHITECTURE.md's layer table",
                file.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(file).expect("a source file");
        let mut code = code(&text);
        // In a file at the top of `src/`, `super::` is the crate root.
        if file.parent() == Some(&Path::new(ROOT).join("src")) {
            code = code.replace("super::", "crate::");
        }
        for used in crate_uses(&code) {
            // Items of the crate root (`crate::flush`, or a type re-exported
            // there, which hides the module it comes from): only the facade
            // may use them.
            let Some(&(used_layer, used_group, used_position)) = places.get(&used) else {
                if layer < 5 {
                    broken.push(format!(
                        "{}: `{module}` uses `crate::{used}`, which is the facade's",
                        file.display()
                    ));
                }
                continue;
            };
            if used == module {
                continue;
            }
            let other_group = used_layer == layer && used_group != group;
            if used_position > position || other_group {
                broken.push(format!(
                    "{}: `{module}` (L{layer}) uses `{used}` (L{used_layer}), which is not below it",
                    file.display()
                ));
            }
        }
    }
    assert!(broken.is_empty(), "layering broken:\n{}", broken.join("\n"));
}

#[test]
fn crate_paths_are_found_in_groups_and_comments_are_not_code() {
    let uses = crate_uses(&code(
        "use crate::{a::{b, c}, d};\n// crate::e\nlet x = crate::f::g(); $crate::h",
    ));
    assert_eq!(uses, ["a", "d", "f"]);
}
