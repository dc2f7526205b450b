//! The shipped policy pack (`policies/`), read from the repository.

use std::path::PathBuf;

pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../policies")
}

/// Every `*.cedar` file of the pack, in name order, concatenated.
pub fn policies() -> String {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cedar"))
        .collect();
    files.sort();
    files.iter().map(|f| std::fs::read_to_string(f).unwrap()).collect::<Vec<_>>().join("\n")
}

pub fn schema() -> String {
    std::fs::read_to_string(dir().join("writ.cedarschema")).unwrap()
}

pub fn entities() -> String {
    std::fs::read_to_string(dir().join("entities.json")).unwrap()
}

/// An identity for `spiffe_id` as attestation would produce it, expiring at `expires_at`.
pub fn identity(spiffe_id: &str, expires_at: u64) -> writ_core::Identity {
    let td = spiffe_id.trim_start_matches("spiffe://").split('/').next().unwrap_or("").to_string();
    writ_core::Identity {
        spiffe_id: spiffe_id.into(),
        trust_domain: td,
        expires_at,
        thumbprint: "test-thumbprint".into(),
        proof: writ_core::Proof::X509Svid,
        claims: Default::default(),
    }
}

pub fn intent(action: &str, resource: &str, task: &str, context: &str) -> writ_core::Intent {
    writ_core::Intent {
        action: action.into(),
        resource: resource.into(),
        task_id: task.into(),
        context: context.into(),
        input: String::new(),
    }
}
