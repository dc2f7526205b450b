//! Policy packs as the CLI, the server and the simulator load them: files and directories,
//! or the shipped pack (`writ_types::pack`) by default.

use writ_types::pack::{ENTITIES, POLICIES, SCHEMA};

use std::path::{Path, PathBuf};

/// A policy pack as loaded: policy text (files joined), schema, entities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pack {
    pub policies: String,
    pub schema: Option<String>,
    pub entities: Option<String>,
}

impl Pack {
    /// The shipped pack (`policies/`), with its schema and entities.
    pub fn shipped() -> Pack {
        Pack { policies: POLICIES.to_string(), schema: Some(SCHEMA.to_string()), entities: Some(ENTITIES.to_string()) }
    }

    /// Policies from files or directories (every `*.cedar` file of a directory, in name
    /// order), with an optional schema and entities file. No paths: the shipped pack, its
    /// schema and entities unless others are given. Errors name the file.
    pub fn load(paths: &[PathBuf], schema: Option<&Path>, entities: Option<&Path>) -> Result<Pack, String> {
        if paths.is_empty() {
            let shipped = Pack::shipped();
            return Ok(Pack {
                policies: shipped.policies,
                schema: Some(schema.map(text).transpose()?.unwrap_or(SCHEMA.to_string())),
                entities: Some(entities.map(text).transpose()?.unwrap_or(ENTITIES.to_string())),
            });
        }
        let mut texts = Vec::new();
        for path in paths {
            for f in cedar_files(path)? {
                texts.push(text(&f)?);
            }
        }
        Ok(Pack {
            policies: texts.join("\n"),
            schema: schema.map(text).transpose()?,
            entities: entities.map(text).transpose()?,
        })
    }
}

fn text(p: &Path) -> Result<String, String> {
    let bytes = std::fs::read(p).map_err(|e| format!("cannot read `{}`: {e}", p.display()))?;
    String::from_utf8(bytes).map_err(|_| format!("`{}` is not UTF-8", p.display()))
}

/// The `*.cedar` files of `path` in name order, or `path` itself.
fn cedar_files(path: &Path) -> Result<Vec<PathBuf>, String> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "cedar"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("no `*.cedar` file in `{}`", path.display()));
    }
    Ok(files)
}
